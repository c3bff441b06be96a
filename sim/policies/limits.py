"""Content limits: how far from the enrolled grade a student's content may go on a day.

Each limit gives a floor and a ceiling in years relative to the enrolled
grade for a day: ``FloorCeiling`` (fixed), ``GradualFloor`` (rising to grade
level by the test), ``TestPrepWindow`` (grade level only in the last weeks
before the test). In a regime the tightest limit wins (``tightest``);
``skill_bounds`` turns the years into a skill-id range. The leaders'
responses that change limits (``raise_floor``, ``with_window``, ``with_gradual_floor``)
live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

UNLIMITED = math.inf
DEFAULT_FLOOR = 3.0  # the floor a school without one is given (years below grade)


@dataclass(frozen=True)
class FloorCeiling:
    """Content stays within [grade - floor, grade + ceiling] years."""

    floor: float = UNLIMITED
    ceiling: float = UNLIMITED

    def limits(self, day: int) -> tuple[float, float]:
        return self.floor, self.ceiling


@dataclass(frozen=True)
class GradualFloor:
    """The floor rises from ``start_floor`` years below grade to grade level.

    Linear between ``start_day`` and ``grade_level_day`` (days), or in
    ``steps`` equal steps; at grade level from ``grade_level_day`` until the
    state test; after the test personalization resumes at ``start_floor``.
    """

    start_floor: float
    start_day: int
    grade_level_day: int
    state_test_day: int
    steps: int = 0

    def floor_on(self, day: int) -> float:
        if day >= max(self.grade_level_day, self.state_test_day):
            return self.start_floor  # the test is over: personalization resumes
        if day >= self.grade_level_day:
            return 0.0
        if day < self.start_day:
            return self.start_floor
        frac = (day - self.start_day) / (self.grade_level_day - self.start_day)
        if self.steps:
            frac = math.floor(frac * self.steps) / self.steps
        return self.start_floor * (1.0 - frac)

    def limits(self, day: int) -> tuple[float, float]:
        return self.floor_on(day), UNLIMITED


@dataclass(frozen=True)
class TestPrepWindow:
    """The last ``days`` instructional days before the state test are grade-level only."""

    days: int
    state_test_day: int

    def active(self, day: int) -> bool:
        return self.state_test_day - self.days <= day < self.state_test_day

    def limits(self, day: int) -> tuple[float, float]:
        return (0.0, 0.0) if self.active(day) else (UNLIMITED, UNLIMITED)



def tightest(limits, day: int) -> tuple[float, float]:
    """(floor, ceiling) in years relative to grade on ``day``; the tightest limit wins."""
    floor, ceiling = UNLIMITED, UNLIMITED
    for limit in limits:
        f, c = limit.limits(day)
        floor, ceiling = min(floor, f), min(ceiling, c)
    return floor, ceiling


def skill_bounds(curriculum, grade: np.ndarray, floor: float, ceiling: float):
    """Skill-id range [lo, hi] for students of ``grade`` from limits in years."""
    cur = curriculum
    spg = cur.skills_per_grade
    g = grade.astype(np.int64) - cur.lowest_grade
    lo = np.zeros(g.size, np.int64) if math.isinf(floor) else np.clip(
        np.round((g - floor) * spg).astype(np.int64), 0, cur.n_skills - 1)
    hi = np.full(g.size, cur.n_skills - 1, np.int64) if math.isinf(ceiling) else np.clip(
        np.round((g + 1 + ceiling) * spg).astype(np.int64) - 1, 0, cur.n_skills - 1)
    return lo, hi


def current_floor(limits) -> float:
    """The lowest fixed floor among ``limits`` (years below grade; inf if none)."""
    return min((x.floor for x in limits if isinstance(x, FloorCeiling)), default=UNLIMITED)


def current_ceiling(limits) -> float:
    return min((x.ceiling for x in limits if isinstance(x, FloorCeiling)), default=UNLIMITED)


def window_days(limits) -> int:
    """Days of the test-prep window among ``limits`` (0 if none)."""
    return max((x.days for x in limits if isinstance(x, TestPrepWindow)), default=0)


def raise_floor(limits, step: float) -> list:
    """``limits`` with the fixed floor moved ``step`` years towards grade level
    (a regime without a floor gets one of ``DEFAULT_FLOOR`` years)."""
    floor = current_floor(limits)
    new = DEFAULT_FLOOR if math.isinf(floor) else max(0.0, floor - step)
    kept = [x for x in limits if not isinstance(x, FloorCeiling)]
    return [*kept, FloorCeiling(new, current_ceiling(limits))]


def with_window(limits, days: int, state_test_day: int) -> list:
    """``limits`` with the test-prep window set to ``days`` before the test."""
    kept = [x for x in limits if not isinstance(x, TestPrepWindow)]
    return [*kept, TestPrepWindow(days, state_test_day)]


def with_gradual_floor(limits, grade_level_day: int, state_test_day: int) -> list:
    """``limits`` with a gradual floor instead of a test-prep window: the floor rises from
    the fixed floor in force (``DEFAULT_FLOOR`` years without one) at the start of the year
    to grade level on ``grade_level_day`` (days), avoiding the window's abrupt switch; any
    earlier gradual floor is replaced."""
    floor = current_floor(limits)
    start = DEFAULT_FLOOR if math.isinf(floor) else floor
    kept = [x for x in limits if not isinstance(x, TestPrepWindow | GradualFloor)]
    return [*kept, GradualFloor(start, 0, grade_level_day, state_test_day)]


def without_window(limits) -> list:
    """``limits`` without their test-prep window."""
    return [x for x in limits if not isinstance(x, TestPrepWindow)]


def has_gradual_floor(limits) -> bool:
    return any(isinstance(x, GradualFloor) for x in limits)
