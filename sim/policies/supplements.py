"""Supplements: grade-level time outside the block (tutoring, advisory).

``Tutoring`` targets a group chosen on the fall growth test; ``Advisory``
gives catch-up time to students behind the common pace. Sessions spread
evenly over the week (``sessions_on``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sessions_on(day: int, hours_per_week: float, session_hours: float, days_per_week: int):
    """Whether a session falls on ``day``: sessions spread evenly over the week
    (fractional rates accumulate)."""
    per_day = hours_per_week / session_hours / days_per_week
    return math.floor((day + 1) * per_day) > math.floor(day * per_day)


@dataclass
class Tutoring:
    """Supplemental grade-level sessions outside the block for a target group.

    The group is chosen on the fall growth test: ``near_cut`` takes the
    ``share`` of program students just below the score that predicts the
    state cut, ``furthest_behind`` the lowest ``share``, ``all`` everyone.
    """

    hours_per_week: float
    target: str = "near_cut"
    share: float = 0.25
    session_hours: float = 1.5
    effectiveness: float = 1.0
    days_per_week: int = 5

    def session_on(self, day: int) -> bool:
        return sessions_on(day, self.hours_per_week, self.session_hours, self.days_per_week)

    def select(self, fall_offset: np.ndarray, cut_offset: np.ndarray) -> np.ndarray:
        """Boolean mask of tutored students among candidates.

        Args:
            fall_offset: fall growth-test level minus enrolled grade (years).
            cut_offset: the same at the state cut's predicted level (years).
        """
        k = fall_offset.size
        if self.target == "all" or k == 0:
            return np.ones(k, bool)
        n_pick = int(round(self.share * k))
        if self.target == "furthest_behind":
            order = np.argsort(fall_offset, kind="stable")
        else:
            below = fall_offset < cut_offset
            gap = np.where(below, cut_offset - fall_offset, np.inf)
            order = np.argsort(gap, kind="stable")
            n_pick = min(n_pick, int(below.sum()))
        mask = np.zeros(k, bool)
        mask[order[:n_pick]] = True
        return mask


@dataclass
class Advisory:
    """Advisory or extended-day time: students whose record is behind the common
    pace work on their first missing grade-level skill (catch-up sessions)."""

    hours_per_week: float
    session_hours: float = 1.0
    days_per_week: int = 5

    def session_on(self, day: int) -> bool:
        return sessions_on(day, self.hours_per_week, self.session_hours, self.days_per_week)




def tutoring_hours(supplements) -> float:
    """Hours a week of grade-level tutoring among ``supplements``."""
    return float(sum(s.hours_per_week for s in supplements if isinstance(s, Tutoring)))
