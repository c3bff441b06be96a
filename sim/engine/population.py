"""Synthetic population: who the students are when they enter the model.

Starting achievement (in grade-years on the vertical scale) is

    level = grade + sd(grade) * (mean_offset + sqrt(w_s) u_school
                                 + sqrt(w_t) u_class + sqrt(w_i) e_student)

with independent standard normal ``u`` and ``e`` and variance shares
``w_i + w_t + w_s = 1`` (within classrooms / between classrooms of a school /
between schools). ``sd(grade)`` grows with grade, as the spread of real
achievement does. Known schools (``district.cohort_offsets_sd``, from an imported
district) put a fixed offset per school and cohort in place of ``sqrt(w_s) u_school``.
A student's mastery of each skill is drawn from a logistic
profile around their level, which leaves gaps below it and islands above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config.parameters import DistrictParams, LearningParams, PopulationParams
from sim.engine import portable_math
from sim.engine.curriculum import Curriculum
from sim.engine.random_streams import uniform32
from sim.engine.students import MASTERED_BEFORE, StudentState

CHUNK_ROWS = 8192  # rows per chunk for (students x skills) random draws: bounds memory


def chunks(n: int, size: int = CHUNK_ROWS):
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def level_sd(grade: np.ndarray | int, pop: PopulationParams) -> np.ndarray | float:
    """SD of starting achievement at a grade, in grade-years."""
    return pop.sd_years_intercept + pop.sd_years_per_grade * np.asarray(grade)


@dataclass
class ClusterEffects:
    """Standard-normal effects of schools and of classroom lines within schools."""

    school: np.ndarray  # (schools,)
    line: np.ndarray    # (schools, lines)

    @classmethod
    def draw(cls, rng: np.random.Generator, schools: int, lines: int) -> ClusterEffects:
        """Draw; school effects are centred so the district's mean is the configured one.

        Centring keeps a nested ANOVA's estimate of the school variance unbiased
        (it uses S - 1 degrees of freedom); classroom effects are left as drawn.
        """
        school = rng.standard_normal(schools)
        line = rng.standard_normal((schools, lines))
        return cls(school - school.mean(), line)


def cohort_offsets(state: StudentState, slots: np.ndarray, district: DistrictParams,
                   year: int, burn_in_years: int) -> np.ndarray | None:
    """Known schools' offsets (SD) of the students in ``slots`` entering in ``year``.

    ``district.cohort_offsets_sd[school][k]`` belongs to the cohort in grade ``grades[k]``
    in reported year 1 (model year ``burn_in_years``): a student entering grade ``g`` in
    ``year`` belongs to the cohort of grade ``g + burn_in_years - year`` (clipped to the
    district's grades: later entrants take the lowest grade's offset). None when unset.
    """
    if not district.cohort_offsets_sd:
        return None
    grades = sorted(district.grades)
    table = np.asarray(district.cohort_offsets_sd, float)
    cohort = np.clip(state.grade[slots].astype(int) + burn_in_years - year,
                     grades[0], grades[-1]) - grades[0]
    return table[state.school[slots], cohort]


def school_term(slots, state: StudentState, effects: ClusterEffects, pop: PopulationParams,
                known: np.ndarray | None = None) -> np.ndarray:
    """The school's part of the starting achievement of the students in ``slots`` (SD of the
    level distribution): ``sqrt(w_s) u_school``, or the known-school offset in its place."""
    if known is not None:
        return known
    return np.sqrt(pop.share_between_schools) * effects.school[state.school[slots]]


def draw_levels(rng, slots, state: StudentState, effects: ClusterEffects,
                pop: PopulationParams, mean_offset_sd: float,
                known: np.ndarray | None = None) -> np.ndarray:
    """Starting achievement of the students in ``slots`` (grade-years).

    ``known``: each student's known-school offset (SD, ``cohort_offsets``); it takes the
    place of the random school term. The draws are the same either way.
    """
    school = school_term(slots, state, effects, pop, known)
    z = (school
         + np.sqrt(pop.share_between_teachers) * effects.line[state.school[slots],
                                                              state.line[slots]]
         + np.sqrt(pop.share_within_class) * rng.standard_normal(slots.size))
    grade = state.grade[slots]
    return grade + level_sd(grade, pop) * (mean_offset_sd + z)


def enrol(rng: np.random.Generator, state: StudentState, slots: np.ndarray,
          effects: ClusterEffects, cur: Curriculum, pop: PopulationParams,
          learn: LearningParams, mean_offset_sd: float,
          known: np.ndarray | None = None) -> None:
    """Fill ``slots`` (school, line and grade already set) with new students;
    ``known``: their known-school offsets (``cohort_offsets``), or None."""
    level = draw_levels(rng, slots, state, effects, pop, mean_offset_sd, known)
    _draw_knowledge(rng, state, slots, level, cur, pop, learn)
    z = (level - state.grade[slots]) / level_sd(state.grade[slots], pop)
    _draw_traits(rng, state, slots, pop, z)


def _draw_knowledge(rng, state, slots, level, cur, pop, learn) -> None:
    pos = cur.position_years()
    fam_full = min(255, int(round(learn.familiarity_saturation_days)))
    for part in chunks(slots.size):
        rows = slots[part]
        p = 1.0 / (1.0 + portable_math.exp(-(level[part, None] - pos[None, :])
                                          / pop.mastery_spread_years))
        mastered = uniform32(rng, p.shape) < p
        state.mastery[rows] = np.where(mastered, MASTERED_BEFORE, 0).astype(np.uint8)
        # Earlier grades' content was taught to them, mastered or not.
        taught = cur.skill_grade[None, :] < state.grade[rows, None]
        state.familiarity[rows] = np.where(mastered | taught, fam_full, 0).astype(np.uint8)


def _draw_traits(rng, state, slots, pop: PopulationParams, z: np.ndarray) -> None:
    """Traits; the learning rate correlates with starting achievement ``z`` (SD units)."""
    k = slots.size
    sd, rho = pop.learning_rate_sd, pop.learning_rate_achievement_corr
    e = rho * z + np.sqrt(1 - rho * rho) * rng.standard_normal(k)
    state.learning_rate[slots] = portable_math.exp(sd * e - sd * sd / 2)
    state.engagement_base[slots] = _beta(rng, pop.engagement_mean, pop.engagement_concentration, k)
    state.engagement[slots] = state.engagement_base[slots]
    state.anxiety_base[slots] = _beta(rng, pop.anxiety_mean, pop.anxiety_concentration, k)
    state.anxiety[slots] = state.anxiety_base[slots]
    if pop.attendance_mean >= 1:
        state.attendance[slots] = 1.0
    else:
        state.attendance[slots] = _beta(rng, pop.attendance_mean, pop.attendance_concentration, k)


def _beta(rng, mean: float, concentration: float, k: int) -> np.ndarray:
    return rng.beta(mean * concentration, (1 - mean) * concentration, k)


def layout_slots(state: StudentState, district: DistrictParams) -> None:
    """Place slots: school-major, then grade, then line, then seat."""
    grades = np.array(sorted(district.grades))
    per_class = district.class_size
    lines = district.classes_per_grade
    idx = np.arange(state.n)
    seat_block = per_class * lines * grades.size
    state.school[:] = idx // seat_block
    within = idx % seat_block
    state.grade[:] = grades[within // (per_class * lines)]
    state.line[:] = (within % (per_class * lines)) // per_class


def district_size(district: DistrictParams) -> int:
    """Number of student slots in a district."""
    return (district.schools * len(district.grades) * district.classes_per_grade
            * district.class_size)


def variance_split(values: np.ndarray, school: np.ndarray, classroom: np.ndarray) -> dict:
    """Shares of variance within classrooms, between classrooms of a school, between schools.

    Nested ANOVA with method-of-moments components for balanced groups.
    ``classroom`` must be unique across schools.
    """
    v = np.asarray(values, float)
    cls_mean = _group_mean(v, classroom)
    sch_mean = _group_mean(v, school)
    n_c = np.bincount(classroom).max()
    n_s = np.bincount(school).max()
    ms_within = np.var(v - cls_mean[classroom], ddof=0) * v.size / (v.size - cls_mean.size)
    k_cls_per_school = n_s / n_c
    cls_dev = cls_mean - sch_mean[_school_of(classroom, school, cls_mean.size)]
    ms_cls = n_c * np.sum(cls_dev ** 2) / (cls_mean.size - sch_mean.size)
    ms_sch = n_s * np.sum((sch_mean - v.mean()) ** 2) / (sch_mean.size - 1)
    var_w = ms_within
    var_c = max(0.0, (ms_cls - ms_within) / n_c)
    var_s = max(0.0, (ms_sch - ms_cls) / (n_c * k_cls_per_school))
    total = var_w + var_c + var_s
    return {"within_class": var_w / total, "between_teachers": var_c / total,
            "between_schools": var_s / total}


def _group_mean(v, g):
    return np.bincount(g, weights=v) / np.bincount(g)


def _school_of(classroom, school, n_classes):
    out = np.zeros(n_classes, int)
    out[classroom] = school
    return out
