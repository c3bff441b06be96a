"""School leaders and the district's program review.

After each year a leader whose school fell short of the accountability
target responds with probability ``1 - exp(-responsiveness x shortfall /
target)``, taking the next response in their escalation list:

* ``test_prep`` — a grade-level-only window of ``test_prep_weeks`` before the test;
* ``tutoring`` — ``tutoring_hours`` a week of grade-level tutoring for a target group;
* ``raise_floor`` — the floor moves ``floor_step`` years towards grade level
  (a school without a floor gets one of 3 years);
* ``test_prep_days`` — ``test_prep_days`` more grade-level-only days before the test.

A school's regime is copied before it is changed, so schools that have not
responded keep sharing the arm's regime. The changes themselves are the
regimes' (``sim.policies.limits.raise_floor``, ``with_window``); the
district's review is ``sim.accountability.review``.
"""

from __future__ import annotations

import copy
import math

from sim.policies.limits import raise_floor, with_window
from sim.policies.supplements import Tutoring


def responds(shortfall_share: float, u: float, responsiveness: float) -> bool:
    """Whether a leader acts, given the shortfall as a share of the target (0-1)."""
    return shortfall_share > 0 and u < 1.0 - math.exp(-responsiveness * shortfall_share)


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
    return r
