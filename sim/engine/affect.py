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

The rule is a compiled per-student function (``update_affect``) that the day's
block runs (``school_day.day_block``); ``update_affect.py_func`` is its plain
Python form. The working level and its switches are tracked in
``sim.engine.outcomes`` (``Tracks``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine.portable_math import power64


class AffectRules(NamedTuple):
    """The affect rule's parameters, in the precisions it computes in: float32 where a
    float32 state meets them, float64 where they are added as a whole (the clip bounds,
    boredom, unfamiliar content)."""

    recovery: np.float32            # share of the gap to baseline closed a day
    boredom: float                  # engagement lost on mastered content
    frustration: np.float32         # engagement lost per share of prerequisites missing
    switch_engagement: np.float32   # engagement lost per felt change (grade-years)
    min_engagement: float
    switch_anxiety: np.float32      # anxiety gained per felt change
    unfamiliar_anxiety: float       # anxiety gained on grade-level content not ready for
    change_exponent: np.float32     # the felt change: change ** exponent


def affect_rules(af) -> AffectRules:
    """From ``AffectParams``."""
    f32 = np.float32
    return AffectRules(f32(af.recovery), float(af.boredom), f32(af.frustration),
                       f32(af.switch_engagement), float(af.min_engagement),
                       f32(af.switch_anxiety), float(af.unfamiliar_anxiety),
                       f32(af.change_exponent))


@njit(cache=True, nogil=True, inline="always")
def felt_change(change, exponent):
    """The felt change of the working level (grade-years, float32): ``change ** exponent``
    (``portable_math.power64`` rounded: the same on every machine)."""
    return change if exponent == 1.0 else np.float32(power64(change, exponent))


@njit(cache=True, nogil=True, inline="always")
def update_affect(engagement, engagement_base, anxiety, anxiety_base, row, already, readiness,
                  offset, change, rules):
    """One student's engagement and anxiety after the day (``row``: an unsigned index):
    ``already`` whether the day's skill was mastered before, ``readiness`` its share of
    prerequisites mastered (float32), ``offset`` its grade minus the enrolled grade,
    ``change`` the working level's change (grade-years, float32). Returns the new
    engagement (float32). Float32 where float32 values meet, float64 where a whole
    term is added, as numpy computed it."""
    one = np.float32(1.0)
    felt = felt_change(change, rules.change_exponent)
    e = engagement[row]
    e32 = e + rules.recovery * (engagement_base[row] - e)
    y = (np.float64(e32) - (rules.boredom if already else 0.0)
         - np.float64(rules.frustration * (one - readiness))
         - np.float64(rules.switch_engagement * felt))
    e_new = np.float32(min(max(y, rules.min_engagement), 1.0))
    engagement[row] = e_new
    an = anxiety[row]
    a32 = an + rules.recovery * (anxiety_base[row] - an) + rules.switch_anxiety * felt
    z = np.float64(a32) + (rules.unfamiliar_anxiety if (offset >= 0 and readiness < one)
                           else 0.0)
    anxiety[row] = np.float32(min(max(z, 0.0), 1.0))
    return e_new
