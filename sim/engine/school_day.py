"""The day's block: each present student's learning, exit slip, record, tracks, affect
and log, composed from the rules of the modules that own them.

Run array by array, each step walked 100,000 students' rows again, long after
the last step had pushed them out of the caches; here every step of one student
runs before the next student's, and the rows of the student ``AHEAD`` places on
are asked of the memory early. Students' rows are independent, so only the
order of steps within a student matters. The rules are compiled per-student
functions inlined into this loop (a compiled call taking arrays would cost
reference counting on every call, about ten times a step's work). The bundles'
arrays are taken out once, before the loop, and handed to the rules: numba counts
a reference for every array taken out of a tuple, so a rule reading its arrays
from a bundle would pay that for every student. The loop itself is compiled
without numba's reference counting (``_nrt=False``: it allocates nothing, and the
caller holds every array it touches): counting the references of the arrays each
inlined rule takes costs ten times the day's work (measured: 470-650 ns a student
against 37 without).

1. ``learning.readiness`` and ``learning.learn_skill``: readiness, mastery gains,
   backfill of the first missing prerequisite, familiarity;
2. ``assessment.exit_slip``: the exit slip on the true mastery after learning;
3. ``records.update_streak`` and ``records.mark_record``: streaks, marks,
   send-backs in the record;
4. ``outcomes.update_track``: the working level and the track;
5. ``affect.update_affect``: engagement and anxiety on the felt change;
6. ``outcomes.log_day``: the year log, with the engagement just updated.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine import affect, assessment, compiled, learning, outcomes, portable_math, records
from sim.engine.affect import AffectRules, update_affect
from sim.engine.assessment import exit_slip
from sim.engine.compiled import AHEAD, prefetch
from sim.engine.learning import LearningRules, learn_skill, readiness
from sim.engine.outcomes import TrackRules, log_day, update_track
from sim.engine.records import RecordRules, mark_record, update_streak

# numba checks a cached function against its own file only: this is the hash of compiled.py,
# whose utilities (exp32, prefetch) this module's compiled functions inline, so a change there
# must change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt
COMPILED_SOURCE = "d9bef96573878454"


class DayInputs(NamedTuple):
    """The day's block's inputs: per present slot ``slots`` (int64), ``skills`` (int64) and
    ``rate`` (per day, float32); per student the uniforms and move-on limits."""

    slots: np.ndarray
    skills: np.ndarray
    rate: np.ndarray
    u_learn: np.ndarray
    u_backfill: np.ndarray
    u_exit: np.ndarray
    move_on: np.ndarray  # int16, days on a skill before it is marked done (max: never)


class CurriculumTables(NamedTuple):
    """What the block reads of the curriculum, per skill."""

    prereqs: np.ndarray      # int16 (skills x width), padded with NO_SKILL
    skill_grade: np.ndarray  # the skill's grade
    positions: np.ndarray    # float32, grade-years


class DayRules(NamedTuple):
    """Every rule's parameters of the day's block."""

    learning: LearningRules
    pass_mastered: float  # P(passing an exit slip) on a mastered skill (1 - slip)
    pass_guess: float     # on one not mastered
    record: RecordRules
    tracks: TrackRules
    affect: AffectRules


def day_block(day: DayInputs, curriculum: CurriculumTables, students, record, tracks, log,
              rules: DayRules) -> np.ndarray:
    """The day's block for ``day.slots`` (module docstring): ``students``, ``record``,
    ``tracks`` and ``log`` are the ``StudentRows``, ``RecordArrays``, ``TrackArrays`` and
    ``LogArrays`` it updates. Returns whether each slot passed its exit slip."""
    passed = np.empty(day.slots.size, np.bool_)
    day_loop(day, curriculum, students, record, tracks, log, rules, passed)
    return passed


def _compose(key: str):
    @njit(cache=True, nogil=True, _nrt=False)
    def day_loop(day, curriculum, students, record, tracks, log, rules, passed_out):
        """``day_block``'s loop, slot by slot, writing whether each slot passed its exit
        slip into ``passed_out``."""
        key  # noqa: B018 -- the rules' sources (source_key): part of numba's cache key
        slots, skills, rate = day.slots, day.skills, day.rate
        u_learn, u_backfill, u_exit, move_on = day.u_learn, day.u_backfill, day.u_exit, day.move_on
        prereqs, skill_grade, positions = curriculum
        mastery, familiarity, grade, _, engagement, engagement_base, anxiety, anxiety_base = (
            students)
        bits, run, streak_skill, days_on, frontier, _, stale, advanced = record
        level, track_below, track_position, other_days, first_other = tracks
        (days_present, days_grade_level, days_mastered, lowest_offset, switches,
         engagement_sum) = log
        k = slots.size
        for i in range(k):
            if i + AHEAD < k:
                ahead_row, ahead_skill = slots[i + AHEAD], skills[i + AHEAD]
                prefetch(mastery, ahead_row, max(prereqs[ahead_skill, 0], 0))
                prefetch(mastery, ahead_row, ahead_skill)
                prefetch(familiarity, ahead_row, ahead_skill)
                prefetch(bits, ahead_row, ahead_skill >> 3)
            r, s = np.uint64(slots[i]), skills[i]  # r, su: unsigned (compiled.ROW_INDEX)
            su = np.uint64(s)
            ready = readiness(mastery, r, s, prereqs)
            already, gained = learn_skill(mastery, familiarity, r, su, rate[i], ready,
                                          u_learn[r], u_backfill[r], rules.learning)
            passed = exit_slip(u_exit[r], already or gained, rules.pass_mastered,
                               rules.pass_guess)
            passed_out[i] = passed
            verdict = update_streak(run, streak_skill, days_on, r, s, passed, move_on[r],
                                    rules.record)
            mark_record(bits, frontier, advanced, stale, r, s, verdict, prereqs)
            offset = np.int16(skill_grade[su] - grade[r])
            switched, change = update_track(level, track_below, track_position, other_days,
                                            first_other, r, offset < 0, positions[su],
                                            rules.tracks)
            e = update_affect(engagement, engagement_base, anxiety, anxiety_base, r, already,
                              ready[0], offset, change, rules.affect)
            log_day(days_present, days_grade_level, days_mastered, lowest_offset, switches,
                    engagement_sum, r, offset, already, switched, e)

    return day_loop


# numba checks a cached function against its own file only: the sources of the rules it
# inlines join its cache key, so a change in any of them rebuilds it
day_loop = _compose(compiled.source_key(compiled, portable_math, learning, assessment,
                                         records, outcomes, affect))
