"""Outcomes: what each student-year leaves behind, accumulated during the year.

``YearLog`` holds per-slot accumulators for one school year, ``Tracks`` each
student's working level and track (below grade, or at/above it) for the
switches it counts; ``student_year_rows`` turns them into the ``student_years``
table (one row per student-year).

The day's rules are compiled per-student functions (``update_track``,
``log_day``) that the day's block runs (``school_day.day_block``); ``.py_func``
is each one's plain Python form.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numba import njit

BANDS = ("3+ below", "1-3 below", "on grade", "above")
BAND_EDGES = (-3.0, -1.0, 1.0)  # years relative to the enrolled grade


def start_band(offset_years: np.ndarray) -> np.ndarray:
    """Starting-achievement band from the entry level minus grade (years)."""
    return np.asarray(BANDS, dtype=object)[np.searchsorted(BAND_EDGES, offset_years,
                                                           side="right")]


class YearLog:
    """Per-slot accumulators for one school year (all arrays of length n)."""

    def __init__(self, n: int):
        self.n = n
        self.fall_score = np.full(n, np.nan)
        self.spring_score = np.full(n, np.nan)
        self.state_score = np.full(n, np.nan)
        self.days_present = np.zeros(n, np.int16)
        self.days_grade_level = np.zeros(n, np.int16)
        self.days_mastered = np.zeros(n, np.int16)
        self.lowest_offset = np.full(n, np.iinfo(np.int16).max, np.int16)
        self.switches = np.zeros(n, np.int16)
        self.engagement_sum = np.zeros(n, np.float64)
        self.tutored = np.zeros(n, bool)
        self.tutoring_sessions = np.zeros(n, np.int16)
        self.skills_gained = np.zeros(n, np.int32)
        self.days_off_pace = np.zeros(n, np.int16)
        self.advisory_sessions = np.zeros(n, np.int16)

    @property
    def day_arrays(self) -> LogArrays:
        """The accumulators the day's block adds to (the same objects), as one bundle."""
        return LogArrays(self.days_present, self.days_grade_level, self.days_mastered,
                         self.lowest_offset, self.switches, self.engagement_sum)


class LogArrays(NamedTuple):
    """``YearLog``'s daily accumulators, as the bundle ``log_day`` takes."""

    days_present: np.ndarray      # int16
    days_grade_level: np.ndarray  # int16: days on content of the enrolled grade
    days_mastered: np.ndarray     # int16: days on content already mastered
    lowest_offset: np.ndarray     # int16: the lowest content grade minus enrolled grade
    switches: np.ndarray          # int16
    engagement_sum: np.ndarray    # float64


@njit(cache=True, nogil=True, inline="always")
def log_day(days_present, days_grade_level, days_mastered, lowest_offset, switches,
            engagement_sum, row, offset, already, switched, engagement):
    """Add one instructional day of one student (``row``: an unsigned index) to
    ``LogArrays``' accumulators: ``offset`` the content's grade minus the enrolled grade
    (int16), ``already`` mastered before, ``switched`` a switch of track today,
    ``engagement`` after the day (float32). Rules take the arrays they touch
    (``learning.learn_skill``)."""
    days_present[row] += 1
    if offset == 0:
        days_grade_level[row] += 1
    if already:
        days_mastered[row] += 1
    if offset < lowest_offset[row]:
        lowest_offset[row] = offset
    if switched:
        switches[row] += 1
    engagement_sum[row] += np.float64(engagement)


@njit(cache=True, nogil=True)
def count_off_pace(days_off_pace, slots, skills, common):
    """``days_off_pace[slots] += skills != common`` (the year log's days off the class's
    pace), in place."""
    for i in range(slots.size):
        if skills[i] != common[i]:
            days_off_pace[slots[i]] += 1


class Tracks:
    """Each student's working level and established track: below grade level, or at/above it.

    The working level is the position of the day's content (grade-years), smoothed
    over ``smoothing_days``; its daily change is what affect feels
    (``sim.engine.affect``). A switch is a *sustained* change of track: the day's
    content lies on the other side of grade level for ``persist_days`` days in a
    row, and the jump from the last position on the old track is at least
    ``min_jump`` grade-years. A one-day remediation group inside a grade-level
    class, or the playlist's step from the last below-grade skill to the first
    grade-level one, is not a switch; a test-prep window that lifts a student three
    grades is. Switches are counted for the tables, not felt.
    """

    def __init__(self, n: int, persist_days: int, min_jump: float, smoothing_days: float = 5.0):
        self.persist_days, self.min_jump = persist_days, min_jump
        self.alpha = np.float32(1.0 / max(smoothing_days, 1.0))
        self.level = np.full(n, np.nan, np.float32)  # working level (grade-years), smoothed
        self.below = np.full(n, -1, np.int8)        # -1: no track yet this year
        self.position = np.zeros(n, np.float32)     # last position on the track (years)
        self.other_days = np.zeros(n, np.int16)     # consecutive days off the track
        self.first_other = np.zeros(n, np.float32)  # position on the first day off it

    @property
    def arrays(self) -> TrackArrays:
        """The tracks' arrays (the same objects), as the bundle ``update_track`` takes."""
        return TrackArrays(self.level, self.below, self.position, self.other_days,
                           self.first_other)

    @property
    def rules(self) -> TrackRules:
        """The rule's parameters, in the precisions it computes in."""
        return TrackRules(self.alpha, int(self.persist_days), np.float32(self.min_jump))


class TrackArrays(NamedTuple):
    """``Tracks``' arrays."""

    level: np.ndarray        # float32, NaN before the first day
    below: np.ndarray        # int8: 1 below grade, 0 at/above, -1 none yet
    position: np.ndarray     # float32
    other_days: np.ndarray   # int16
    first_other: np.ndarray  # float32


class TrackRules(NamedTuple):
    """``Tracks``' parameters."""

    alpha: np.float32      # the working level's smoothing weight
    persist_days: int
    min_jump: np.float32   # grade-years


@njit(cache=True, nogil=True, inline="always")
def update_track(level, track_below, track_position, other_days, first_other, row, below,
                 position, rules):
    """Record one student's day of content (``row``: an unsigned index; ``below``: the
    content is below the enrolled grade; ``position`` its grade-years, float32) in
    ``TrackArrays``' arrays. Returns (switched, the working level's change in
    grade-years, float32 >= 0)."""
    pos = position
    old = level[row]
    if np.isnan(old):
        new = pos
        change = np.float32(0.0)
    else:
        new = old + rules.alpha * (pos - old)
        change = abs(new - old)
    level[row] = new
    track = track_below[row]
    fresh = track < 0
    off = (not fresh) and (below != (track == 1))
    days_off = other_days[row] + 1 if off else 0
    first_pos = pos if (off and days_off == 1) else first_other[row]
    jump = abs(first_pos - track_position[row])
    moved = off and days_off >= rules.persist_days
    switched = moved and jump >= rules.min_jump
    if fresh or moved or not off:
        track_below[row] = 1 if below else 0
        track_position[row] = pos
    other_days[row] = 0 if moved else days_off
    first_other[row] = first_pos
    return switched, change


def student_year_rows(model, log: YearLog, cut: np.ndarray, fall_sd: np.ndarray) -> pd.DataFrame:
    """The student_years rows of the year just finished.

    Args:
        cut: state-test cut (percent correct) indexed by grade.
        fall_sd: reference SD of fall growth-test scores (scale points) by grade.
    """
    st = model.students
    g = st.grade.astype(int)
    days = np.maximum(log.days_present, 1)
    tested = ~np.isnan(log.state_score)
    proficient = pd.array(np.where(tested, log.state_score >= cut[g], False), dtype="boolean")
    proficient[~tested] = pd.NA
    lowest = np.where(log.days_present > 0, log.lowest_offset, 0)
    return pd.DataFrame({
        "arm": model.arm.label,
        "replicate": model.replicate,
        "year": model.reported_year,
        "school": st.school,
        "student": st.student_id,
        "grade": g,
        "in_program": model.in_program,
        "program_grade": np.isin(g, model.params.district.program_grades),
        "teacher": st.teacher,
        "room": st.room,
        "start_band": pd.Categorical(start_band(st.baseline_offset), categories=BANDS),
        "baseline_offset": st.baseline_offset.astype(float),
        "fall_score": log.fall_score,
        "spring_score": log.spring_score,
        "growth_sd": (log.spring_score - log.fall_score) / fall_sd[g],
        "state_score": log.state_score,
        "proficient": proficient,
        "grade_level_share": log.days_grade_level / days,
        "mastered_share": log.days_mastered / days,
        "lowest_offset": lowest.astype(np.int16),
        "switches": log.switches,
        "engagement": log.engagement_sum / days,
        "anxiety": st.anxiety.astype(float),
        "days_present": log.days_present,
        "skills_gained": log.skills_gained,
        "tutored": log.tutored,
        "tutoring_sessions": log.tutoring_sessions,
        "off_pace_share": log.days_off_pace / days,
        "advisory_sessions": log.advisory_sessions,
    })
