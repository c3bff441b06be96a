"""The affect phase: engagement and test anxiety respond to the day's work.

Engagement drifts back to each student's baseline (``recovery`` per day) and
falls with boredom (content already mastered), frustration (content whose
prerequisites are missing, in proportion to the share missing) and on/off
switches. A *switch* is a move between below-grade and grade-level (or
higher) content that jumps at least ``switch_min_jump_years``; its cost
grows with the size of the jump in grade-years. Test anxiety drifts back to
baseline and rises with switches and with days on grade-level content the
student is not ready for ("I've never seen this, Miss!").
"""

from __future__ import annotations

import numpy as np


def detect_switches(below: np.ndarray, position: np.ndarray, prev_below: np.ndarray,
                    prev_position: np.ndarray, min_jump: float) -> tuple[np.ndarray, np.ndarray]:
    """Which students switched today, and how far (grade-years).

    ``prev_below`` is -1 where there is no previous day this year.
    """
    jump = np.abs(position - prev_position)
    switched = (prev_below >= 0) & (below != (prev_below == 1)) & (jump >= min_jump)
    return switched, np.where(switched, jump, 0.0).astype(np.float32)


def update_affect(state, slots: np.ndarray, already: np.ndarray, readiness: np.ndarray,
                  at_grade: np.ndarray, jump: np.ndarray, p) -> None:
    """Move engagement and anxiety of ``slots`` after one day (``p``: AffectParams)."""
    e, e0 = state.engagement[slots], state.engagement_base[slots]
    e = (e + p.recovery * (e0 - e) - p.boredom * already
         - p.frustration * (1.0 - readiness) - p.switch_engagement * jump)
    state.engagement[slots] = np.clip(e, p.min_engagement, 1.0)
    a, a0 = state.anxiety[slots], state.anxiety_base[slots]
    a = (a + p.recovery * (a0 - a) + p.switch_anxiety * jump
         + p.unfamiliar_anxiety * (at_grade & (readiness < 1.0)))
    state.anxiety[slots] = np.clip(a, 0.0, 1.0)
