"""Teachers: Mesa agents holding their effectiveness, capacity and students.

A teacher is tied to one classroom line of one grade in one school. Under
traditional pacing they are their students' teacher of record; in a
personalized room they are one member of the room's team. The daily cycle
reads teacher attributes through arrays the district keeps in step with the
agents (``District.teacher_effect``, ``District.teacher_capacity``), never
through per-student calls.
"""

from __future__ import annotations

import numpy as np
from mesa import Agent


class Teacher(Agent):
    """One math teacher.

    Attributes:
        index: position in the district's teacher arrays.
        school, grade, line: the classroom this teacher holds.
        effect: true effectiveness (student SD of annual growth; mean 0).
        capacity: distinct paces (content units) run well at once.
        experience: years of experience.
        room: personalized room this teacher is a team member of (-1 none).
        load: students this teacher is responsible for this year (a room's
            students are shared equally by its team).
    """

    def __init__(self, model, index: int, school: int, grade: int, line: int,
                 effect: float, capacity: float, experience: int):
        super().__init__(model)
        self.index = index
        self.school, self.grade, self.line = school, grade, line
        self.effect = float(effect)
        self.capacity = float(capacity)
        self.experience = int(experience)
        self.room = -1
        self.load = 0.0

    @property
    def stress(self) -> float:
        """Stress from evaluation pressure (0-1), after the last evaluation."""
        return float(self.model.accountability.stress[self.index])

    @property
    def trust(self) -> float:
        """Trust in the team (0-1)."""
        return float(self.model.accountability.trust[self.index])

    @property
    def drift(self) -> float:
        """Share of supervised student-days swapped to grade-level content this year."""
        return float(self.model.accountability.drift[self.index])

    def students(self) -> np.ndarray:
        """Slots of the students this teacher is teacher of record for this year."""
        return np.flatnonzero(self.model.students.teacher == self.index)


def draw_teachers(model, rng: np.random.Generator, params, schools: int,
                  grades: list[int], lines: int) -> list[Teacher]:
    """One teacher per (school, grade, line), in that order."""
    out = []
    for s in range(schools):
        for g in grades:
            for line in range(lines):
                out.append(Teacher(
                    model, len(out), s, g, line,
                    effect=rng.normal(0.0, params.effect_sd),
                    capacity=max(1.0, rng.normal(params.capacity_mean, params.capacity_sd)),
                    experience=int(rng.integers(0, 30))))
    return out
