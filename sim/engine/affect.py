"""The affect phase: engagement and test anxiety respond to the day's work.

Engagement drifts back to each student's baseline (``recovery`` per day) and
falls with boredom (content already mastered), frustration (content whose
prerequisites are missing, in proportion to the share missing) and changes
of content level: each day's change of the student's *working level* (the
level of their content, smoothed over ``level_smoothing_days``), in
grade-years, costs in proportion to its size raised to ``change_exponent``
(1 by default: in proportion). So every change counts, small or large: a
one-day detour little (the working level hardly moves), a window that lifts
a student three grades overnight much ("turning it on and off"); with an
exponent above 1 a floor that rises step by step costs less than the same
rise at once. Test anxiety drifts back to baseline and rises
with the same changes and with days on grade-level content the student is
not ready for ("I've never seen this, Miss!").

``Tracks`` also counts *switches* for the tables (a sustained change of
track between below-grade and grade-level content); the count is reported,
not felt.
"""

from __future__ import annotations

import numpy as np

from sim.engine import kernels


class Tracks:
    """Each student's established track: below grade level, or at/above it.

    A switch is a *sustained* change of track: the day's content lies on the
    other side of grade level for ``persist_days`` days in a row, and the
    jump from the last position on the old track is at least ``min_jump``
    grade-years. A one-day remediation group inside a grade-level class, or
    the playlist's step from the last below-grade skill to the first
    grade-level one, is not a switch; a test-prep window that lifts a
    student three grades is.
    """

    def __init__(self, n: int, persist_days: int, min_jump: float, smoothing_days: float = 5.0):
        self.persist_days, self.min_jump = persist_days, min_jump
        self.alpha = np.float32(1.0 / max(smoothing_days, 1.0))
        self.level = np.full(n, np.nan, np.float32)  # working level (grade-years), smoothed
        self.below = np.full(n, -1, np.int8)        # -1: no track yet this year
        self.position = np.zeros(n, np.float32)     # last position on the track (years)
        self.other_days = np.zeros(n, np.int16)     # consecutive days off the track
        self.first_other = np.zeros(n, np.float32)  # position on the first day off it

    def update(self, slots: np.ndarray, below: np.ndarray, position: np.ndarray):
        """Record the day's content; return (switched, the working level's change in
        grade-years, >= 0). In numpy: the day's block runs this compiled and fused
        (``kernels.day_block``), which is tested against this."""
        level = self.level[slots]
        new = np.where(np.isnan(level), position, level + self.alpha * (position - level))
        change = np.abs(np.nan_to_num(new - level, nan=0.0))
        self.level[slots] = new
        track = self.below[slots]
        fresh = track < 0
        off = ~fresh & (below != (track == 1))
        days = np.where(off, self.other_days[slots] + 1, 0)
        first = np.where(off & (days == 1), position, self.first_other[slots])
        jump = np.abs(first - self.position[slots])
        moved = off & (days >= self.persist_days)
        switched = moved & (jump >= self.min_jump)
        settle = fresh | moved | ~off
        self.below[slots] = np.where(settle, below, track)
        self.position[slots] = np.where(settle, position, self.position[slots])
        self.other_days[slots] = np.where(moved, 0, days)
        self.first_other[slots] = first
        return switched, change.astype(np.float32)


def update_affect(state, slots: np.ndarray, already: np.ndarray, readiness: np.ndarray,
                  at_grade: np.ndarray, change: np.ndarray, p) -> None:
    """Move engagement and anxiety of ``slots`` after one day (``p``: AffectParams);
    ``change``: the working level's change today (grade-years). In numpy: the day's
    block runs this compiled and fused (``kernels.day_block``), which is tested
    against this. The power is ``kernels.power32_array``'s, as the kernel's (the same
    on every machine)."""
    felt = kernels.power32_array(np.ascontiguousarray(change, np.float32),
                                 np.float32(p.change_exponent))
    e, e0 = state.engagement[slots], state.engagement_base[slots]
    e = (e + p.recovery * (e0 - e) - p.boredom * already
         - p.frustration * (1.0 - readiness) - p.switch_engagement * felt)
    state.engagement[slots] = np.clip(e, p.min_engagement, 1.0)
    a, a0 = state.anxiety[slots], state.anxiety_base[slots]
    a = (a + p.recovery * (a0 - a) + p.switch_anxiety * felt
         + p.unfamiliar_anxiety * (at_grade & (readiness < 1.0)))
    state.anxiety[slots] = np.clip(a, 0.0, 1.0)
