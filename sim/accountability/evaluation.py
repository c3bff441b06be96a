"""Teacher evaluation: value added on the state test, an observation, a rating band.

Value added: within each tested grade, this year's state score is regressed
on last year's (ordinary least squares over the district's students with
both); a teacher's estimate is the mean residual of their linked students,
in SD of the grade's scores. With a *teacher of record* the linked students
are the teacher's own class; under *shared* (team) evaluation every member
of a personalized room's team gets the estimate of all the room's students.

Observation: the true effect in SD of true effects plus normal error.

Composite and rating, as real evaluation systems set them (Kraft & Gilmour
2017): each measure is put on one points scale, 1 to 4, and the rating comes
from fixed cuts on that scale, not from a teacher's rank. The observation
scores ``observation_mean + observation_sd x observation / sqrt(1 +
observation_noise_sd^2)`` points (an evaluator's rubric score: its mean is
the evaluators' leniency, ``observation_sd`` its spread between teachers);
value added, normed as real value-added measures are, scores ``va_mean +
va_sd x z(value added)`` (z across the district's teachers with an
estimate). Both are clipped to 1-4. The composite is ``va_weight x value-added
points + (1 - va_weight) x observation points`` (observation points alone
where too few students are linked); under shared evaluation the team's
members share the team's composite, so they share a rating. Ratings: 0
ineffective, 1 developing, 2 effective, 3 highly effective, by the
composite's position against ``rating_cuts`` (points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATINGS = ("ineffective", "developing", "effective", "highly effective")


@dataclass
class Evaluation:
    """One year's estimates for every teacher (arrays indexed by teacher)."""

    va_estimate: np.ndarray   # SD of state scores; NaN where too few students
    observation: np.ndarray   # z (true effect z plus error)
    composite: np.ndarray     # points, 1-4
    rating: np.ndarray        # 0..3
    linked: np.ndarray        # students behind each estimate


def residuals(current: np.ndarray, prior: np.ndarray, grade: np.ndarray) -> np.ndarray:
    """Residuals of current on prior score within each grade, in SD of the grade's scores."""
    out = np.full(current.size, np.nan)
    ok = np.isfinite(current) & np.isfinite(prior)
    for g in np.unique(grade[ok]):
        sel = ok & (grade == g)
        if sel.sum() < 3 or np.ptp(prior[sel]) == 0:
            continue
        slope, intercept = _line_fit(prior[sel], current[sel])
        r = current[sel] - (intercept + slope * prior[sel])
        out[sel] = r / max(current[sel].std(), 1e-9)
    return out


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of ``y`` on ``x`` (what ``np.polyfit(x, y, 1)``
    gives), in closed form from sums: LAPACK's solver, which polyfit calls, adds in an
    order that depends on the CPU, and its last bits with it."""
    x_mean, y_mean = x.mean(), y.mean()
    dx = x - x_mean
    slope = float((dx * (y - y_mean)).sum() / (dx * dx).sum())
    return slope, float(y_mean - slope * x_mean)


def group_means(values: np.ndarray, group: np.ndarray, n_groups: int):
    """Mean of finite ``values`` per group id (>= 0) and the count behind it."""
    ok = np.isfinite(values) & (group >= 0)
    count = np.bincount(group[ok], minlength=n_groups)
    total = np.bincount(group[ok], weights=values[ok], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, count


def evaluate(resid: np.ndarray, student_teacher: np.ndarray, student_team: np.ndarray,
             teacher_team: np.ndarray, shared: bool, true_effect_z: np.ndarray,
             rng: np.random.Generator, params) -> Evaluation:
    """Estimates, composites and ratings of every teacher.

    Args:
        resid: per student residual (NaN if not linked).
        student_teacher: teacher of record per student.
        student_team: room (team) per student, -1 outside rooms.
        teacher_team: room (team) per teacher, -1 outside rooms.
        shared: shared (team) evaluation for teachers in teams.
        true_effect_z: true effects in SD of true effects.
        params: ``EvaluationParams``.
    """
    n_t = true_effect_z.size
    va, linked = group_means(resid, student_teacher, n_t)
    observation = true_effect_z + params.observation_noise_sd * rng.standard_normal(n_t)
    if shared:
        n_rooms = max(int(teacher_team.max()) + 1, int(student_team.max()) + 1, 1)
        team_va, team_n = group_means(resid, student_team, n_rooms)
        team_obs, _ = group_means(observation, teacher_team, n_rooms)
        in_team = teacher_team >= 0
        va = np.where(in_team, team_va[np.maximum(teacher_team, 0)], va)
        linked = np.where(in_team, team_n[np.maximum(teacher_team, 0)], linked)
        observation = np.where(in_team, team_obs[np.maximum(teacher_team, 0)], observation)
    va = np.where(linked >= params.min_students, va, np.nan)
    composite = composite_points(va_z(va), observation, params)
    return Evaluation(va, observation, composite, rating_of(composite, params.rating_cuts),
                      linked)


def va_z(va: np.ndarray) -> np.ndarray:
    """Value-added estimates standardised across the teachers with one (NaN elsewhere):
    value added is a relative measure, as in real systems (an average teacher's is 0)."""
    finite = np.isfinite(va)
    sd = va[finite].std() if finite.sum() > 1 else 1.0
    return (va - (va[finite].mean() if finite.any() else 0.0)) / max(sd, 1e-9)


def composite_points(va_zscore: np.ndarray, observation: np.ndarray, params,
                     observation_spread: float | None = None) -> np.ndarray:
    """Composite on the 1-4 points scale: weighted value-added and observation points
    (observation points alone where ``va_zscore`` is NaN).

    Args:
        va_zscore: value added, z across teachers (NaN: no estimate).
        observation: observation z (true effect z plus error).
        observation_spread: SD of ``observation`` between teachers, which
            ``observation_sd`` points stand for; default ``sqrt(1 + observation_noise_sd^2)``.
    """
    spread = (np.sqrt(1.0 + params.observation_noise_sd ** 2) if observation_spread is None
              else observation_spread)
    obs = np.clip(params.observation_mean + params.observation_sd * observation / spread,
                  1.0, 4.0)
    va = np.clip(params.va_mean + params.va_sd * va_zscore, 1.0, 4.0)
    return np.where(np.isfinite(va_zscore), params.va_weight * va + (1 - params.va_weight) * obs,
                    obs)


def true_points(true_z: np.ndarray, has_va: np.ndarray, params) -> np.ndarray:
    """The composite a teacher would get from error-free measures: both measures at the
    true effect's z (each with its spread between teachers), value added only where the
    teacher has an estimate. Its band is the teacher's *true rating*."""
    return composite_points(np.where(has_va, true_z, np.nan), true_z, params,
                            observation_spread=1.0)


def rating_of(points: np.ndarray, cuts) -> np.ndarray:
    """Rating band (0..3) of composites (points), against three ascending cuts (points)."""
    return np.searchsorted(np.asarray(cuts), points, side="right").astype(np.int8)


def run_metrics(teacher_years) -> dict:
    """How well ratings track true effectiveness, from a ``teacher_years`` table.

    Returns the correlation of estimates with true effects (teachers with an
    estimate), the year-to-year correlation of a teacher's estimates (the same
    person in consecutive years), and the share rated in a band other than
    their true effect's.
    """
    t = teacher_years.dropna(subset=["va_estimate"])
    corr = float(np.corrcoef(t.va_estimate, t.true_effect)[0, 1]) if len(t) > 2 else np.nan
    nxt = t.assign(year=t.year - 1)[["replicate", "person", "year", "va_estimate"]]
    pairs = t.merge(nxt, on=["replicate", "person", "year"], suffixes=("", "_next"))
    stab = (float(np.corrcoef(pairs.va_estimate, pairs.va_estimate_next)[0, 1])
            if len(pairs) > 2 else np.nan)
    mis = float((teacher_years.rating != teacher_years.true_rating).mean())
    return {"corr_estimate_true": corr, "year_to_year_corr": stab, "misclassified": mis,
            "teachers_with_estimate": int(len(t))}
