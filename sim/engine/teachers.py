"""Teachers: their state as arrays (one owner), and Mesa agents as views over it.

A teacher is tied to one classroom line of one grade in one school. Under
traditional pacing they are their students' teacher of record; in a
personalized room they are one member of the room's team. Everything a
teacher has lives in ``TeacherState`` (arrays indexed by teacher), which the
daily cycle and the year-end processes read and write whole; a ``Teacher``
agent only reads and writes its own row, so no copy can fall out of step.
"""

from __future__ import annotations

import numpy as np
from mesa import Agent

TRUST_SD = 0.1  # spread of teachers' trust around their team's mean


class TeacherState:
    """Every teacher's state (arrays of length ``n``, indexed by teacher).

    Attributes:
        school, grade, line: the classroom each teacher holds.
        effect: true effectiveness (student SD of annual growth; mean 0).
        capacity: distinct paces (content units) run well at once.
        capacity_eff: this year's effective capacity (paces), after load and structures.
        experience: years of experience.
        room: personalized room the teacher is a team member of (-1 none).
        load: students the teacher is responsible for this year (a room's
            students shared equally by its team).
        trust: trust in the team (0-1).
        stress: stress from evaluation pressure (0-1), after the last evaluation.
        drift: share of supervised student-days swapped to grade-level content.
        novice: replaced a leaver this year.
        person: id of the person holding the post (new for each replacement).
    """

    def __init__(self, school, grade, line, effect, capacity, experience, trust):
        self.n = len(school)
        self.school = np.asarray(school, np.int64)
        self.grade = np.asarray(grade, np.int64)
        self.line = np.asarray(line, np.int64)
        self.effect = np.asarray(effect, float)
        self.capacity = np.asarray(capacity, float)
        self.capacity_eff = self.capacity.copy()
        self.experience = np.asarray(experience, np.int64)
        self.room = np.full(self.n, -1, np.int64)
        self.load = np.zeros(self.n)
        self.trust = np.asarray(trust, float)
        self.stress = np.zeros(self.n)
        self.drift = np.zeros(self.n)
        self.novice = np.zeros(self.n, bool)
        self.person = np.arange(self.n)
        self.next_person = self.n


def draw_teachers(rng: np.random.Generator, trust_rng: np.random.Generator, params,
                  schools: int, grades: list[int], lines: int, trust: float) -> TeacherState:
    """One teacher per (school, grade, line), in that order.

    Effects, capacities and experience come from ``rng`` (drawn per teacher in
    that order); trust from ``trust_rng`` around the arm's mean ``trust``.
    """
    rows = [(s, g, line) for s in range(schools) for g in grades for line in range(lines)]
    effect, capacity, experience = [], [], []
    for _ in rows:
        effect.append(rng.normal(0.0, params.effect_sd))
        capacity.append(max(1.0, rng.normal(params.capacity_mean, params.capacity_sd)))
        experience.append(int(rng.integers(0, 30)))
    school, grade, line = (np.array(c) for c in zip(*rows, strict=True))
    trust_of = np.clip(trust + TRUST_SD * trust_rng.standard_normal(len(rows)), 0, 1)
    return TeacherState(school, grade, line, effect, capacity, experience, trust_of)


def _column(name: str, kind: type, doc: str) -> property:
    """A property reading and writing this agent's row of ``TeacherState.<name>``."""
    def get(self):
        return kind(getattr(self.model.staff, name)[self.index])

    def set_(self, value):
        getattr(self.model.staff, name)[self.index] = value

    return property(get, set_, doc=doc)


class Teacher(Agent):
    """One math teacher: a view of row ``index`` of the district's ``TeacherState``."""

    school = _column("school", int, "school index")
    grade = _column("grade", int, "grade taught")
    line = _column("line", int, "classroom line within the grade")
    effect = _column("effect", float, "true effectiveness (student SD of annual growth)")
    capacity = _column("capacity", float, "distinct paces run well at once")
    experience = _column("experience", int, "years of experience")
    room = _column("room", int, "personalized room of the teacher's team (-1 none)")
    load = _column("load", float, "students this teacher is responsible for this year")
    trust = _column("trust", float, "trust in the team (0-1)")
    stress = _column("stress", float, "stress from evaluation pressure (0-1)")
    drift = _column("drift", float, "share of supervised student-days swapped to grade level")

    def __init__(self, model, index: int):
        super().__init__(model)
        self.index = index

    def students(self) -> np.ndarray:
        """Slots of the students this teacher is teacher of record for this year."""
        return np.flatnonzero(self.model.students.teacher == self.index)
