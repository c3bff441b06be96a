"""What a day's assignment reads: the day context the district hands the regimes.

The district builds one ``DayContext`` a day (``District._day_context``) and
passes it to ``sim.policies.regimes.assign_day``; pacing rules, limits,
teachers' drift and pace limits read only what it holds, never the district.
Arrays are the district's own (views, not copies): the regimes read them and
write nothing into them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.config.parameters import CalendarParams
from sim.engine.curriculum import Curriculum
from sim.engine.random_streams import DailyDraws
from sim.engine.records import Record


class DayContext(NamedTuple):
    """One instructional day, as the assignment sees it.

    Per slot (enrolment row, all students): ``grade`` (enrolled grade),
    ``teacher`` (teacher of record), ``line`` (class line within the grade).
    Per teacher: ``capacity`` (effective capacity this year, in paces) and
    ``drift`` (probability a day a teacher swaps a playlist skill for the
    common pace's). Per present student: ``present`` (their slots, int64) and
    ``supervisor`` (who teaches them today: a team member in rooms).
    """

    day: int                  # instructional day of the year (0-based)
    calendar: CalendarParams  # the state test's day and the year's days (the pacing guide)
    curriculum: Curriculum
    record: Record            # what the program believes (never the true mastery)
    draws: DailyDraws         # the day's uniforms per student, by process ("extension", "drift")
    grade: np.ndarray
    teacher: np.ndarray
    line: np.ndarray
    capacity: np.ndarray
    drift: np.ndarray
    present: np.ndarray
    supervisor: np.ndarray
