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
responded keep sharing the arm's regime. The district reviews the program
``after_years`` years in: a school whose share proficient has not risen by
``min_improvement`` over the year before the program (or, without a burn-in
year, over the program's first year) drops it for good and returns to
traditional pacing. From then on the review is repeated every year.
"""

from __future__ import annotations

import copy
import math

from sim.regimes import UNLIMITED, FloorCeiling, TestPrepWindow, Tutoring

DEFAULT_FLOOR = 3.0  # the floor a school without one is given (years below grade)


def responds(shortfall_share: float, u: float, responsiveness: float) -> bool:
    """Whether a leader acts, given the shortfall as a share of the target (0-1)."""
    return shortfall_share > 0 and u < 1.0 - math.exp(-responsiveness * shortfall_share)


def apply_response(regime, action: str, leaders, calendar):
    """A copy of ``regime`` with one more response in force."""
    r = copy.deepcopy(regime)
    if action in ("test_prep", "test_prep_days"):
        days = window_days(r)
        add = (leaders.test_prep_weeks * calendar.days_per_week if action == "test_prep"
               else days + leaders.test_prep_days)
        new = min(calendar.state_test_day, int(round(max(days, add))))
        r.limits = [x for x in r.limits if not isinstance(x, TestPrepWindow)]
        r.limits.append(TestPrepWindow(new, calendar.state_test_day))
    elif action == "tutoring":
        r.supplements.append(Tutoring(leaders.tutoring_hours, leaders.tutoring_target,
                                      days_per_week=calendar.days_per_week))
    elif action == "raise_floor":
        floor = current_floor(r)
        new = DEFAULT_FLOOR if math.isinf(floor) else max(0.0, floor - leaders.floor_step)
        r.limits = [x for x in r.limits if not isinstance(x, FloorCeiling)]
        r.limits.append(FloorCeiling(new, _ceiling(regime)))
    return r


def window_days(regime) -> int:
    return max((x.days for x in regime.limits if isinstance(x, TestPrepWindow)), default=0)


def current_floor(regime) -> float:
    return min((x.floor for x in regime.limits if isinstance(x, FloorCeiling)),
               default=UNLIMITED)


def _ceiling(regime) -> float:
    return min((x.ceiling for x in regime.limits if isinstance(x, FloorCeiling)),
               default=UNLIMITED)


def tutoring_hours(regime) -> float:
    return float(sum(s.hours_per_week for s in regime.supplements if isinstance(s, Tutoring)))


def fails_review(years_active: int, proficiency: float, before: float, review) -> bool:
    """Whether the district drops the program at a school at this review."""
    return (review is not None and years_active >= review.after_years
            and proficiency - before < review.min_improvement)
