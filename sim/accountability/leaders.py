"""School leaders: rule-based responses to the school's shortfall.

Each year a leader of a school still running the program decides, separately
for each of their two escalation lists (``responses``: changes to the
program's content; ``supplements``: structures outside it), whether to act:
with probability ``1 - exp(-responsiveness x pressure)`` (``responds``),
``pressure`` being the shortfall of the program grades' share proficient
below the target, as a share of the target. Before the program's first year
the leader weighs the district's results before the program (the last
burn-in year's shortfall times ``anticipation``): principals "worried that
... the trade-off in time spent on grade-level skills disadvantaged students
on the assessments" (seed 000). A leader who acts takes the next entry of the
list, once it is offered (``offered``); an entry that is a list of
alternatives is spread by the program across its schools in turn
(``alternative``). The program's pilots (``gradual_floor``,
``grade_level_first``) replace the window once offered ("TEPP responded to
these concerns by providing more structure ... creating a set of strategies
to pilot across their portfolio of schools"): a school with a test-prep
window moves to the next pilot entry that year without a decision of its
leader, and a leader who would ask for a window takes that pilot instead
(``pilot_step``). The responses:

* ``test_prep`` — a grade-level-only window of ``test_prep_weeks`` before the test;
* ``tutoring`` — ``tutoring_hours`` a week of grade-level tutoring for a target group;
* ``raise_floor`` — the floor moves ``floor_step`` years towards grade level
  (a school without a floor gets one of 3 years);
* ``test_prep_days`` — ``test_prep_days`` more grade-level-only days before the test;
* ``gradual_floor`` — the window is replaced by a floor rising from the fixed
  floor to grade level one week before the test;
* ``grade_level_first`` — the window is replaced by units that start with
  grade-level skills (``GradeLevelFirst`` pacing).

A school's regime is copied before it is changed, so schools that have not
responded keep sharing the arm's regime. The changes themselves are the
regimes' (``sim.policies.limits``); the district's review is
``sim.accountability.review``.
"""

from __future__ import annotations

import copy
import math

from sim.config.parameters import PILOTS
from sim.policies.limits import raise_floor, with_gradual_floor, with_window, without_window
from sim.policies.pacing import GradeLevelFirst
from sim.policies.supplements import Tutoring


def responds(shortfall_share: float, u: float, responsiveness: float) -> bool:
    """Whether a leader acts, given the pressure (shortfall as a share of the target, 0-1,
    or that times ``anticipation`` before the program) and the year's uniform draw ``u``."""
    return shortfall_share > 0 and u < 1.0 - math.exp(-responsiveness * shortfall_share)


def offered(entry, program_year: int, leaders) -> bool:
    """Whether the program offers ``entry`` (a response or a list of alternatives) in
    ``program_year`` (1 = the program's first year): the pilots (``gradual_floor``,
    ``grade_level_first``) from ``leaders.pilots_from_year``, the rest always."""
    names = entry if isinstance(entry, list) else [entry]
    return all(n not in PILOTS or program_year >= leaders.pilots_from_year for n in names)


def pilot_step(entries, step: int, program_year: int, leaders) -> int | None:
    """Index of the first pilot entry at or after ``step`` that the program offers in
    ``program_year`` (None if there is none)."""
    for j in range(step, len(entries)):
        names = entries[j] if isinstance(entries[j], list) else [entries[j]]
        if any(n in PILOTS for n in names) and offered(entries[j], program_year, leaders):
            return j
    return None


def next_step(entries, step: int, program_year: int, leaders, has_window: bool,
              acts: bool) -> int | None:
    """Index of the entry a school takes this year on one list, or None.

    ``has_window``: a test-prep window is in force at the school; ``acts``: its leader
    decided to respond (``responds``). A school with a window moves to an offered pilot
    whatever its leader decides (the program's restructuring); otherwise a leader who acts
    takes the next entry if it is offered, or the offered pilot instead of a window.
    """
    pilot = pilot_step(entries, step, program_year, leaders)
    if pilot is not None and has_window:
        return pilot
    if not acts or step >= len(entries) or not offered(entries[step], program_year, leaders):
        return None
    return pilot if pilot is not None and entries[step] == "test_prep" else step


def alternative(entry, turn: int) -> str:
    """The response a school takes from ``entry``: the response itself, or, from a list of
    alternatives, the one whose turn it is (the ``turn``-th school of the district to take
    this step gets alternative ``turn mod len``: the program spreads its pilots)."""
    return entry[turn % len(entry)] if isinstance(entry, list) else entry


def apply_response(regime, action: str, leaders, calendar):
    """A copy of ``regime`` with one more response in force."""
    r = copy.deepcopy(regime)
    if action in ("test_prep", "test_prep_days"):
        days = r.window_days()
        add = (leaders.test_prep_weeks * calendar.days_per_week if action == "test_prep"
               else days + leaders.test_prep_days)
        new = min(calendar.state_test_day, int(round(max(days, add))))
        r.limits = with_window(r.limits, new, calendar.state_test_day)
    elif action == "tutoring":
        r.supplements.append(Tutoring(leaders.tutoring_hours, leaders.tutoring_target,
                                      days_per_week=calendar.days_per_week))
    elif action == "raise_floor":
        r.limits = raise_floor(r.limits, leaders.floor_step)
    elif action == "gradual_floor":
        end = max(1, calendar.state_test_day - calendar.days_per_week)
        r.limits = with_gradual_floor(r.limits, end, calendar.state_test_day)
    elif action == "grade_level_first":
        r.pacing = GradeLevelFirst()
        r.limits = without_window(r.limits)
    return r
