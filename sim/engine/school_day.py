"""The day's block: each present student's learning, exit slip, record, tracks, affect
and log, composed from the rules of the modules that own them.

Run array by array, each step walked 100,000 students' rows again, long after
the last step had pushed them out of the caches; here every step of one student
runs before the next student's, and the rows of the student ``AHEAD`` places on
are asked of the memory early. Students' rows are independent, so only the
order of steps within a student matters. The rules are compiled per-student
functions inlined into this loop (a compiled call taking arrays would cost
reference counting on every call, about ten times a step's work):

1. ``learning.readiness`` and ``learning.learn_skill``: readiness, mastery gains,
   backfill of the first missing prerequisite, familiarity;
2. ``assessment.exit_slip``: the exit slip on the true mastery after learning;
3. ``records.exit_slip_update``: streaks, marks, send-backs in the record;
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
from sim.engine.records import RecordRules, exit_slip_update


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


def _compose(key: str):
    @njit(cache=True, nogil=True)
    def day_block(day, curriculum, students, record, tracks, log, rules):
        """The day's block, slot by slot (module docstring); returns whether each slot
        passed its exit slip."""
        key  # noqa: B018 -- the rules' sources (source_key): part of numba's cache key
        slots, skills = day.slots, day.skills
        prereqs = curriculum.prereqs
        k = slots.size
        passed_out = np.empty(k, np.bool_)
        for i in range(k):
            if i + AHEAD < k:
                ahead_row, ahead_skill = slots[i + AHEAD], skills[i + AHEAD]
                prefetch(students.mastery, ahead_row, max(prereqs[ahead_skill, 0], 0))
                prefetch(students.mastery, ahead_row, ahead_skill)
                prefetch(students.familiarity, ahead_row, ahead_skill)
                prefetch(record.bits, ahead_row, ahead_skill >> 3)
            r, s = np.uint64(slots[i]), skills[i]  # r, su: unsigned (compiled.ROW_INDEX)
            su = np.uint64(s)
            ready = readiness(students.mastery, r, s, prereqs)
            already, gained = learn_skill(students, r, su, day.rate[i], ready, day.u_learn[r],
                                          day.u_backfill[r], rules.learning)
            passed = exit_slip(day.u_exit[r], already or gained, rules.pass_mastered,
                               rules.pass_guess)
            passed_out[i] = passed
            exit_slip_update(record, r, s, passed, prereqs, day.move_on, rules.record)
            offset = np.int16(curriculum.skill_grade[su] - students.grade[r])
            switched, change = update_track(tracks, r, offset < 0, curriculum.positions[su],
                                            rules.tracks)
            engagement = update_affect(students, r, already, ready[0], offset, change,
                                       rules.affect)
            log_day(log, r, offset, already, switched, engagement)
        return passed_out

    return day_block


# numba checks a cached function against its own file only: the sources of the rules it
# inlines join its cache key, so a change in any of them rebuilds it
day_block = _compose(compiled.source_key(compiled, portable_math, learning, assessment,
                                         records, outcomes, affect))
