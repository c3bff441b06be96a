"""Schools: Mesa agents holding their grades, rooms and the regime in force.

Personalized rooms merge consecutive classroom lines of one program grade
into rooms of at most ``room_size`` students; the teachers of those lines
form the room's team. With ``sections`` > 1 (secondary staffing) one teacher
teaches consecutive lines of a grade, one period each: the teacher of line
``l`` is the teacher of line ``l // sections x sections``.
"""

from __future__ import annotations

import numpy as np

from sim.engine.agents import Agent


class School(Agent):
    """One school.

    Attributes:
        index: position in the district's school list.
        grades: grades served.
        program_grades: grades where the arm's regime applies.
        regime: the regime in force in the program grades (a leader's responses
            replace it with a changed copy).
        program_active: whether the program still runs here.
    """

    def __init__(self, model, index: int, grades: list[int], program_grades: list[int], regime):
        super().__init__(model)
        self.index = index
        self.grades = list(grades)
        self.program_grades = list(program_grades)
        self.regime = regime
        self.program_active = True  # False once the district drops the program here
        self.next_response = 0      # the leader's place in their escalation list
        self.next_supplement = 0    # ... and in their list of supplements

    def students(self) -> np.ndarray:
        """Slots of the students enrolled in this school."""
        return np.flatnonzero(self.model.students.school == self.index)

    def teachers(self) -> list:
        """The teachers (agents) of this school."""
        staff = self.model.staff
        return [self.model.teachers[i] for i in np.flatnonzero(staff.school == self.index)]


def lines_per_room(class_size: int, room_size: int) -> int:
    """How many classroom lines a personalized room merges (at least one)."""
    return max(1, room_size // class_size)


def section_line(line: np.ndarray, sections: np.ndarray) -> np.ndarray:
    """The line whose teacher teaches ``line`` when teachers teach ``sections`` lines each."""
    return line // sections * sections


def sections_taught(line: np.ndarray, sections: np.ndarray, lines: int) -> np.ndarray:
    """Sections the teacher of each ``line`` teaches (0 where another teacher takes it)."""
    return np.where(line % sections == 0, np.minimum(sections, lines - line), 0)
