"""The learning phase of the school day: readiness, mastery gains, familiarity.

A present student working on skill ``s`` masters it that day with
probability ``1 - exp(-rate * (readiness_floor + (1 - readiness_floor) * r))``,
where ``r`` is the share of the skill's prerequisites they truly master and
``rate`` (per day) combines the base rate, the skill's ease (later grades are
harder), the student's learning rate and engagement, the teacher's effect,
the modality and the teacher's capacity against the paces they run. Working
on a skill with a missing prerequisite also gives a chance of learning the
first missing prerequisite in context:
the same formula with ``backfill_rate x rate`` and that prerequisite's own
readiness (a chain of missing foundations is not bridged in one step).
Every day on a skill adds a day of familiarity, mastered or not.
"""

from __future__ import annotations

import numpy as np

from sim.engine import kernels
from sim.engine.curriculum import NO_SKILL
from sim.engine.students import FAMILIARITY_MAX, MASTERED_THIS_YEAR
from sim.engine.students import flat as flat_view


def prerequisite_status(mastery: np.ndarray, slots: np.ndarray, skills: np.ndarray,
                        prereqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readiness (share of prerequisites truly mastered, 1 if none) and the first missing one.

    Returns:
        readiness in [0, 1] (float32) and the first missing prerequisite's id (-1 if none).
        Compiled (``kernels.block_reads``, which also reads the first missing
        prerequisite's own readiness); ``prerequisite_status_numpy`` is the same in
        plain numpy.
    """
    readiness, first, _ = kernels.block_reads(mastery, np.asarray(slots, np.int64),
                                              np.asarray(skills, np.int64), prereqs)
    return readiness, first


def prerequisite_status_numpy(mastery: np.ndarray, slots: np.ndarray, skills: np.ndarray,
                              prereqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``prerequisite_status`` in plain numpy (the reference the kernel is tested against)."""
    base = slots * mastery.shape[1]
    flat = flat_view(mastery)
    have = np.zeros(slots.size, np.float32)
    count = np.zeros(slots.size, np.float32)
    first = np.full(slots.size, -1, np.int64)
    # Column by column: prerequisite lists are short, and 1-D passes beat 2-D reductions.
    for j in reversed(range(prereqs.shape[1])):
        pre = prereqs[skills, j].astype(np.int64)
        valid = pre != NO_SKILL
        ok = valid & (flat[base + np.where(valid, pre, 0)] > 0)
        count += valid
        have += ok
        first = np.where(valid & ~ok, pre, first)  # reversed: the lowest column wins
    readiness = np.where(count > 0, have / np.maximum(count, 1), 1.0).astype(np.float32)
    return readiness, first


def learn(state, slots: np.ndarray, skills: np.ndarray, rate: np.ndarray,
          readiness: np.ndarray, first_missing: np.ndarray, u_learn: np.ndarray,
          u_backfill: np.ndarray, readiness_floor: float, backfill_rate: float,
          prereqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one day of learning.

    Returns:
        which students had already mastered their skill, and which mastered it today.

    Args:
        rate: daily hazard of mastering a fully ready skill (per day).
        u_learn, u_backfill: uniform draws for these students.

    The probabilities are computed over the arrays (``p_master``, with the compiled
    float32 exponential ``kernels.exp32_array``); the reads and writes of the
    (students x skills) arrays in a compiled kernel (``kernels.learn_apply``).
    ``learn_numpy`` is the same in plain numpy.
    """
    p = p_master(rate, readiness, readiness_floor)
    # Backfill: the first missing prerequisite, at its own readiness (read before any write).
    has = np.flatnonzero(first_missing >= 0)
    back = has[:0]
    if has.size:
        pre = first_missing[has]
        pre_ready, _ = prerequisite_status(state.mastery, slots[has], pre, prereqs)
        p_back = p_master(rate[has] * backfill_rate, pre_ready, readiness_floor)
        back = has[u_backfill[has] < p_back]
    slots = np.asarray(slots, np.int64)
    return kernels.learn_apply(state.mastery, state.familiarity, slots,
                               np.asarray(skills, np.int64), p, u_learn, slots[back],
                               np.asarray(first_missing[back], np.int64), MASTERED_THIS_YEAR,
                               FAMILIARITY_MAX)


def learn_numpy(state, slots: np.ndarray, skills: np.ndarray, rate: np.ndarray,
                readiness: np.ndarray, first_missing: np.ndarray, u_learn: np.ndarray,
                u_backfill: np.ndarray, readiness_floor: float, backfill_rate: float,
                prereqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``learn`` in plain numpy (the reference the kernel is tested against).

    Returns:
        which students had already mastered their skill, and which mastered it today.

    Args:
        rate: daily hazard of mastering a fully ready skill (per day).
        u_learn, u_backfill: uniform draws for these students.
    """
    flat = slots * state.n_skills + skills  # one index into (student, skill) for all updates
    mastery = flat_view(state.mastery)
    already = mastery[flat] > 0
    gained = ~already & (u_learn < p_master(rate, readiness, readiness_floor))
    # Backfill: the first missing prerequisite, at its own readiness.
    has = np.flatnonzero(first_missing >= 0)
    if has.size:
        pre = first_missing[has]
        pre_ready, _ = prerequisite_status_numpy(state.mastery, slots[has], pre, prereqs)
        p_back = p_master(rate[has] * backfill_rate, pre_ready, readiness_floor)
        back = has[u_backfill[has] < p_back]
        mastery[slots[back] * state.n_skills + first_missing[back]] = MASTERED_THIS_YEAR
    mastery[flat[gained]] = MASTERED_THIS_YEAR
    expose(state, flat)
    return already, gained


def p_master(rate: np.ndarray, readiness: np.ndarray, readiness_floor: float) -> np.ndarray:
    """P(mastering a skill today) from the daily hazard (per day, float32) and readiness:
    float32, with the exponential the day's compiled block uses (``kernels.exp32``)."""
    x = -rate * (readiness_floor + (1.0 - readiness_floor) * readiness)
    return 1.0 - kernels.exp32_array(np.ascontiguousarray(x, np.float32).ravel()).reshape(
        np.shape(x))


def expose(state, flat: np.ndarray) -> None:
    """One more day of familiarity with the day's skill (``flat``: slot * S + skill)."""
    fam = flat_view(state.familiarity)
    fam[flat] = np.minimum(fam[flat], FAMILIARITY_MAX - 1) + 1
