"""Student state as numpy arrays, one row per enrolment slot.

A *slot* is a seat in one school's line of classrooms (school, class index).
Each year a slot's student moves up a grade with their classmates; a graduate
or a student who leaves is replaced by a newcomer in the same slot, so the
arrays keep their size. ``Student`` is a read-only view of one slot for
inspection; the daily cycle never uses it.

Mastery codes (``mastery``): 0 not mastered, 1 mastered before this school
year, 2 mastered this school year (fragile over the summer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

NOT_MASTERED, MASTERED_BEFORE, MASTERED_THIS_YEAR = 0, 1, 2
FAMILIARITY_MAX = 255  # days of exposure are counted up to this


def flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous (students x skills) array, for one-index gathers.

    Raises rather than returning a copy, so writes through it are never lost.
    """
    if not a.flags.c_contiguous:
        raise ValueError("student arrays must stay C-contiguous")
    return a.reshape(-1)


class StudentRows(NamedTuple):
    """The students' arrays the day's compiled rules read and write (``StudentState``'s,
    the same objects): a bundle numba accepts."""

    mastery: np.ndarray          # uint8 (n, S)
    familiarity: np.ndarray      # uint8 (n, S)
    grade: np.ndarray            # int16
    learning_rate: np.ndarray    # float32
    engagement: np.ndarray       # float32
    engagement_base: np.ndarray  # float32
    anxiety: np.ndarray          # float32
    anxiety_base: np.ndarray     # float32


@dataclass
class StudentState:
    """All students of one district as parallel arrays (n slots; S skills)."""

    n: int
    n_skills: int
    # identity and placement
    student_id: np.ndarray = field(init=False)       # int64, unique over the run
    school: np.ndarray = field(init=False)           # int32
    line: np.ndarray = field(init=False)             # int32, class index within a grade
    grade: np.ndarray = field(init=False)            # int16, enrolled grade
    teacher: np.ndarray = field(init=False)          # int32, teacher of record this year
    room: np.ndarray = field(init=False)             # int32, personalized room (-1 none)
    # knowledge
    mastery: np.ndarray = field(init=False)          # uint8 (n, S), codes above
    familiarity: np.ndarray = field(init=False)      # uint8 (n, S), days of exposure
    # traits and affect (0-1 unless stated)
    learning_rate: np.ndarray = field(init=False)    # float32, multiplier (statewide mean 1)
    engagement: np.ndarray = field(init=False)       # float32
    engagement_base: np.ndarray = field(init=False)  # float32
    anxiety: np.ndarray = field(init=False)          # float32, test anxiety
    anxiety_base: np.ndarray = field(init=False)     # float32
    attendance: np.ndarray = field(init=False)       # float32, P(present on a day)
    outside: np.ndarray = field(init=False)          # float32, out-of-school change per
    #                                                  summer (grade-years; persistent)
    baseline_offset: np.ndarray = field(init=False)  # float32, years vs grade at entry
    prior_state_score: np.ndarray = field(init=False)  # float32, last year's state score
    entry_year: np.ndarray = field(init=False)       # int16, first simulated year

    def __post_init__(self):
        n, s = self.n, self.n_skills
        self.student_id = np.zeros(n, np.int64)
        self.school = np.zeros(n, np.int32)
        self.line = np.zeros(n, np.int32)
        self.grade = np.zeros(n, np.int16)
        self.teacher = np.full(n, -1, np.int32)
        self.room = np.full(n, -1, np.int32)
        self.mastery = np.zeros((n, s), np.uint8)
        self.familiarity = np.zeros((n, s), np.uint8)
        for name in ("learning_rate", "engagement", "engagement_base", "anxiety",
                     "anxiety_base", "attendance", "outside", "baseline_offset"):
            setattr(self, name, np.zeros(n, np.float32))
        self.entry_year = np.zeros(n, np.int16)
        self.prior_state_score = np.full(n, np.nan, np.float32)

    def rows(self) -> StudentRows:
        """The arrays the day's compiled rules use, as one bundle."""
        return StudentRows(self.mastery, self.familiarity, self.grade, self.learning_rate,
                           self.engagement, self.engagement_base, self.anxiety,
                           self.anxiety_base)

    def view(self, slot: int) -> Student:
        """A read-only view of one student, for inspection and notebooks."""
        return Student(self, slot)

    def nbytes(self) -> int:
        """Bytes held by the arrays of this object."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


class Student:
    """Read-only view of one slot of a :class:`StudentState`."""

    def __init__(self, state: StudentState, slot: int):
        self._s, self.slot = state, slot

    def __getattr__(self, name):
        value = getattr(self._s, name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (self._s.n,):
            return value[self.slot].copy() if value.ndim > 1 else value[self.slot].item()
        raise AttributeError(name)

    @property
    def mastered_skills(self) -> np.ndarray:
        """Ids of the skills this student has mastered."""
        return np.flatnonzero(self._s.mastery[self.slot])

    def __repr__(self) -> str:
        s = self._s
        return (f"Student(id={s.student_id[self.slot]}, school={s.school[self.slot]}, "
                f"grade={s.grade[self.slot]}, mastered={self.mastered_skills.size}, "
                f"engagement={s.engagement[self.slot]:.2f})")
