"""The learning phase of the school day: readiness, mastery gains, familiarity.

A present student working on skill ``s`` masters it that day with
probability ``1 - exp(-rate * (readiness_floor + (1 - readiness_floor) * r))``,
where ``r`` is the share of the skill's prerequisites they truly master and
``rate`` (per day) combines the base rate, the skill's ease (later grades are
harder), the student's learning rate and engagement, the teacher's effect,
the modality and the teacher's capacity against the paces they run. Working
on a skill not yet mastered with a missing prerequisite also gives a chance of
learning the first missing prerequisite in context (the skill needs it): the
same formula with ``backfill_rate x rate`` and that prerequisite's own readiness
(a chain of missing foundations is not bridged in one step). A day on a skill
already mastered repairs nothing beneath it: nothing in it calls for the
missing foundation, so a gap no current skill needs stays open.
Every day on a skill adds a day of familiarity, mastered or not.

The rules are compiled per-student functions (``readiness``, ``p_master``,
``learn_skill``, ``rate_of``): the day's block (``school_day.day_block``) and
the supplements' sessions (``learn``) run them; ``.py_func`` is each one's plain
Python form.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine import teachers
from sim.engine.compiled import AHEAD, NO_SKILL, exp32, prefetch, source_key
from sim.engine.students import FAMILIARITY_MAX, MASTERED_THIS_YEAR
from sim.engine.teachers import handoff_factor

# numba checks a cached function against its own file only: this is the hash of compiled.py,
# whose utilities (exp32, prefetch) this module's compiled functions inline, so a change there
# must change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt
COMPILED_SOURCE = "d9bef96573878454"


class LearningRules(NamedTuple):
    """The learning rule's parameters, in the precisions the rule computes in."""

    readiness_floor: np.float32
    readiness_rest: np.float32  # 1 - readiness_floor computed in float64, rounded
    backfill_rate: np.float32
    mastered_code: int          # the mastery code of a skill gained this year
    familiarity_max: int        # days of exposure are counted up to this


def learning_rules(lp) -> LearningRules:
    """From ``LearningParams``."""
    f32 = np.float32
    return LearningRules(f32(lp.readiness_floor), f32(1.0 - lp.readiness_floor),
                         f32(lp.backfill_rate), MASTERED_THIS_YEAR, FAMILIARITY_MAX)


@njit(cache=True, nogil=True, inline="always")
def readiness(mastery, row, skill, prereqs):
    """For one (row, skill): the share of the skill's prerequisites truly mastered (1 if
    none; float32), its first missing prerequisite (lowest column; -1 if none) and
    that prerequisite's own share (float32; 1 if none)."""
    width = prereqs.shape[1]
    one = np.float32(1.0)
    ready, first, pre_ready = one, -1, one
    target = skill
    for depth in range(2):  # the skill, then its first missing prerequisite
        have = 0
        count = 0
        f = -1
        for j in range(width):
            p = prereqs[target, j]
            if p == NO_SKILL:
                continue
            count += 1
            if mastery[row, p] > 0:
                have += 1
            elif f < 0:
                f = p
        share = np.float32(have) / np.float32(count) if count > 0 else one
        if depth == 1:
            pre_ready = share
            break
        ready, first = share, f
        if f < 0:
            break
        target = f
    return ready, first, pre_ready


@njit(cache=True, nogil=True, inline="always")
def p_master(rate, ready, rules):
    """P(mastering a skill today), float32: ``1 - exp32(-rate x (floor + rest x ready))``
    (``rate`` per day, float32)."""
    return np.float32(1.0) - exp32(-rate * (rules.readiness_floor
                                            + rules.readiness_rest * ready))


@njit(cache=True, nogil=True, inline="always")
def learn_skill(mastery, familiarity, row, skill, rate, ready, u_learn, u_backfill, rules):
    """One student's day of learning on ``skill`` (``row``, ``skill``: unsigned indices)
    at ``rate`` (per day), given ``readiness``'s triple ``ready``: the skill gained if
    not already mastered and ``u_learn`` < ``p_master``; the first missing prerequisite
    gained if ``u_backfill`` < ``p_master`` at ``backfill_rate`` x rate and its own
    readiness; a day of familiarity. Returns (already, gained).

    Rules take the arrays they touch and a bundle of scalars, not bundles of arrays:
    numba counts a reference for every array taken out of a tuple, which in the day's
    loop would cost more than the rule."""
    share, first, pre_ready = ready
    already = mastery[row, skill] > 0
    gained = (not already) and (u_learn < p_master(rate, share, rules))
    if ((not already) and first >= 0
            and u_backfill < p_master(rate * rules.backfill_rate, pre_ready, rules)):
        mastery[row, first] = rules.mastered_code
    if gained:
        mastery[row, skill] = rules.mastered_code
    top = rules.familiarity_max - 1
    f = familiarity[row, skill]
    familiarity[row, skill] = (f if f < top else top) + 1
    return already, gained


@njit(cache=True, nogil=True)
def readiness_of(mastery, slots, skills, prereqs):
    """``readiness`` of each (slot, skill): the shares (float32), first missing
    prerequisites (int64, -1 if none) and their own shares (float32)."""
    k = slots.size
    share = np.empty(k, np.float32)
    first = np.full(k, -1, np.int64)
    pre_ready = np.ones(k, np.float32)
    for i in range(k):
        if i + AHEAD < k:
            prefetch(mastery, slots[i + AHEAD], max(prereqs[skills[i + AHEAD], 0], 0))
        share[i], first[i], pre_ready[i] = readiness(mastery, slots[i], skills[i], prereqs)
    return share, first, pre_ready


def prerequisite_status(mastery: np.ndarray, slots: np.ndarray, skills: np.ndarray,
                        prereqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readiness (share of prerequisites truly mastered, 1 if none; float32) and the first
    missing prerequisite's id (-1 if none) of each (slot, skill)."""
    share, first, _ = readiness_of(mastery, np.asarray(slots, np.int64),
                                   np.asarray(skills, np.int64), prereqs)
    return share, first


@njit(cache=True, nogil=True)
def _learn_slots(students, slots, skills, rate, u_learn, u_backfill, prereqs, rules):
    mastery, familiarity = students.mastery, students.familiarity
    k = slots.size
    already = np.empty(k, np.bool_)
    gained = np.empty(k, np.bool_)
    for i in range(k):
        r, s = np.uint64(slots[i]), np.uint64(skills[i])
        ready = readiness(mastery, r, skills[i], prereqs)
        already[i], gained[i] = learn_skill(mastery, familiarity, r, s, rate[i], ready,
                                            u_learn[i], u_backfill[i], rules)
    return already, gained


def learn(state, slots: np.ndarray, skills: np.ndarray, rate: np.ndarray,
          draws: tuple[np.ndarray, np.ndarray], prereqs: np.ndarray,
          rules: LearningRules) -> tuple[np.ndarray, np.ndarray]:
    """One day of learning (``learn_skill``) for ``slots`` (distinct) on ``skills`` at
    ``rate`` (per day, float32), outside the day's block (the supplements' sessions).

    Args:
        draws: (u_learn, u_backfill), uniforms per slot.

    Returns:
        which students had already mastered their skill, and which mastered it today.
    """
    u_learn, u_backfill = draws
    return _learn_slots(state.rows(), np.asarray(slots, np.int64),
                        np.asarray(skills, np.int64), np.asarray(rate, np.float32),
                        np.asarray(u_learn, np.float32), np.asarray(u_backfill, np.float32),
                        prereqs, rules)


# --- the daily rate -------------------------------------------------------------------------
class RateRules(NamedTuple):
    """The daily rate's parameters (``District._learning_rate``)."""

    base_rate: float
    weight_unled: float  # the teacher's weight in a modality the teacher does not lead
    typical_sd: float    # teachers' typical growth SD (the effect's unit)
    handoff_loss: float
    led_a: int           # the two teacher-led modalities
    led_b: int
    transition_loss: float = 0.0  # the room's costs (``teachers.room_cost``)
    unled_loss: float = 0.0


class RateTables(NamedTuple):
    """The daily rate's tables: each skill's ease (a multiplier, float64) and each
    modality's factor (float32)."""

    ease: np.ndarray
    modality_factor: np.ndarray


class Supervision(NamedTuple):
    """Per present slot: the supervising teacher, the room (-1 none), the teacher of record
    and the room's team size (teachers; 0 outside rooms)."""

    teacher: np.ndarray
    room: np.ndarray
    own_teacher: np.ndarray
    team_size: np.ndarray


@njit(cache=True, nogil=True, inline="always")
def is_led(modality, rules):
    """Whether ``modality`` is teacher-led (whole class or small group)."""
    return (modality == rules.led_a) | (modality == rules.led_b)


@njit(cache=True, nogil=True, inline="always")
def teacher_multiplier(effect, modality, rules):
    """The supervising teacher's multiplier of the rate: ``max(0.1, 1 + weight x effect /
    typical_sd)`` (``effect``: the teacher's, student SD of growth), the weight 1 in a
    teacher-led modality, ``weight_unled`` otherwise."""
    weight = 1.0 if is_led(modality, rules) else rules.weight_unled
    return max(0.1, 1.0 + weight * effect / rules.typical_sd)


@njit(cache=True, nogil=True, inline="always")
def continuity_of(supervisor, own, room, team_size, modality, trust, rules):
    """The day's share kept by a room: the hand-off between team members
    (``teachers.handoff_factor``) x the room's costs (``teachers.room_cost``); 1 outside
    rooms."""
    handoff = handoff_factor(supervisor, own, room >= 0, trust, rules.handoff_loss)
    return handoff * teachers.room_cost(is_led(modality, rules), room >= 0, team_size,
                                        rules.transition_loss, rules.unled_loss)


@njit(cache=True, nogil=True, inline="always")
def rate_of(student_rate, engagement, ease, modality_factor, mult, continuity, factor, rules):
    """The daily hazard of mastering a ready skill (per day) of one student, in float64
    in numpy's order, rounded to float32: base rate x the skill's ``ease`` x the
    student's rate x engagement x the modality's factor x ``teacher_multiplier`` x
    ``continuity`` (``continuity_of``: hand-off, room costs) x capacity ``factor``."""
    x = (rules.base_rate * ease * np.float64(student_rate) * np.float64(engagement)
         * np.float64(modality_factor) * mult * continuity * factor)
    return np.float32(x)


def _compose_rate(key: str):
    @njit(cache=True, nogil=True)
    def learning_rate(slots, skills, modality, supervision, capacity, students, staff, tables,
                      rules):
        """``rate_of`` per present slot (float32): ``capacity`` is (factors, key), slot
        ``i``'s factor ``factors[key[i]]`` (``teachers.capacity_ratio``'s values to the
        elasticity); ``staff`` is (effect, trust) per teacher; ``tables``: ``RateTables``."""
        key  # noqa: B018 -- teachers' source (source_key): part of numba's cache key
        factors, at = capacity
        effect, trust = staff
        teacher, room, own, team_size = supervision
        student_rate, engagement = students.learning_rate, students.engagement
        ease, modality_factor = tables
        k = slots.size
        out = np.empty(k, np.float32)
        for i in range(k):
            r, t, m = slots[i], teacher[i], modality[i]
            mult = teacher_multiplier(effect[t], m, rules)
            continuity = continuity_of(t, own[i], room[i], team_size[i], m, trust, rules)
            out[i] = rate_of(student_rate[r], engagement[r], ease[skills[i]],
                             modality_factor[m], mult, continuity, factors[at[i]], rules)
        return out

    return learning_rate


# numba checks a cached function against its own file only: the inlined rule's file joins
# the cache key (compiled.source_key)
learning_rate = _compose_rate(source_key(teachers))
