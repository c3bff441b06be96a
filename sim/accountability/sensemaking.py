"""Teachers making sense of accountability: stress, drift, exits, development.

Once a year, after the evaluation:

* **stress** = ``stress_decay`` x last year's + ``pressure_stress`` x the
  school's shortfall from its target (as a share of the target) +
  ``low_rating_stress`` if rated ineffective or developing. Under shared
  evaluation a team member's stress is buffered by trust (times
  ``1 - trust_buffer x trust``) and raised by resentment where trust is low
  (``shared_resentment x (1 - trust)``). Clipped to [0, 1].
* **drift** = ``min(max_drift, drift_sensitivity x stress)``: next year, the
  share of the teacher's supervised student-days on which they swap the
  playlist's skill for the grade-level pacing skill (fidelity lost under
  pressure).
* **exit** with probability ``exit_base + exit_novice [experience <
  novice_exit_years] + exit_late [experience >= late_exit_years] +
  exit_low_rating [low rating] + exit_stress x stress``: turnover is U-shaped
  in experience (high for beginners, again near retirement), and higher after
  a low rating and under stress; the replacement is a novice (0 years of
  experience, so a lower effect (``sim.engine.teachers.effect_now``); lower
  capacity, little trust).
* **development**: targeted pacing PD adds ``pd_targeted_gain`` paces of
  capacity a year, generic PD ``pd_generic_gain``.
"""

from __future__ import annotations

import numpy as np

LOW_RATING = 1  # developing or below


def update_stress(stress, pressure, rating, trust, shared, p) -> np.ndarray:
    """Next year's stress (0-1) per teacher.

    Args:
        pressure: the teacher's school shortfall as a share of the target (0-1).
        rating: this year's rating (0..3).
        shared: whether the teacher is evaluated with a team.
    """
    s = (p.stress_decay * stress + p.pressure_stress * pressure
         + p.low_rating_stress * (rating <= LOW_RATING))
    s = np.where(shared, s * (1 - p.trust_buffer * trust) + p.shared_resentment * (1 - trust), s)
    return np.clip(s, 0.0, 1.0)


def drift_of(stress: np.ndarray, p) -> np.ndarray:
    """Share of supervised student-days swapped to grade-level content."""
    return np.minimum(p.max_drift, p.drift_sensitivity * stress)


def exit_probability(stress: np.ndarray, rating: np.ndarray, experience: np.ndarray,
                     p) -> np.ndarray:
    """Probability of leaving the position this year (0-1) per teacher.

    Args:
        stress: this year's stress (0-1).
        rating: this year's rating (0..3).
        experience: years of teaching experience (0 in the first year).
    """
    by_experience = (p.exit_base + p.exit_novice * (experience < p.novice_exit_years)
                     + p.exit_late * (experience >= p.late_exit_years))
    return np.clip(by_experience + p.exit_low_rating * (rating <= LOW_RATING)
                   + p.exit_stress * stress, 0.0, 1.0)


def experience_profile(p, years: int) -> np.ndarray:
    """The share of teachers with 0, 1, ... ``years - 1`` years of experience in the
    steady state of the exits: each year's cohort of novices survives year ``y`` with
    ``1 - h(y)``, ``h`` the exit probability of an unstressed teacher not rated low
    (``exit_probability``); the shares are the survivors, normalised. Where the model
    starts (``sim.engine.teachers.draw_teachers``), so that the workforce neither ages
    nor grows younger on its own over the first years."""
    y = np.arange(years)
    hazard = exit_probability(np.zeros(years), np.full(years, LOW_RATING + 1), y, p)
    survive = np.concatenate([[1.0], np.cumprod(1.0 - hazard)[:-1]])
    return survive / survive.sum()


def pd_gain(pd: str, p) -> float:
    """Capacity gained per year of professional development (paces)."""
    return {"targeted": p.pd_targeted_gain, "generic": p.pd_generic_gain}.get(pd, 0.0)


def effective_capacity(capacity: np.ndarray, project_based: bool, p) -> np.ndarray:
    """Distinct paces a teacher runs well this year, given structures (paces).

    Load is no factor here: it acts through the paces a teacher's students need,
    counted each day across all the teacher's sections (``District._capacity_factor``,
    ``limit_paces``).
    """
    return capacity * (1.0 + p.project_based_gain) if project_based else capacity.copy()
