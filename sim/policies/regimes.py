"""Regimes: a pacing rule, content limits and supplements, composed.

A regime is what a school's program grades follow (``build_regime`` makes
it from an arm's settings); grades outside the program follow
``traditional_regime``. See ``sim.policies.pacing``, ``sim.policies.limits``
and ``sim.policies.supplements`` for the parts.

The regimes own the day's whole assignment (``assign_day``): for each group
of students, the content limits give a skill range, the pacing rule a skill
and modality, teachers under pressure drift toward the common pace
(personalized regimes) and pace limits hold each teacher to their capacity of
distinct paces (``limit_paces`` regimes). All of it reads one
``sim.policies.day.DayContext``, never the district.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.engine import teachers
from sim.policies.day import DayContext
from sim.policies.limits import (
    UNLIMITED,
    FloorCeiling,
    GradualFloor,
    TestPrepWindow,
    current_floor,
    has_gradual_floor,
    skill_bounds,
    tightest,
    window_days,
)
from sim.policies.pacing import (
    ExtraTime,
    GradeLevelFirst,
    Pacing,
    Playlist,
    TraditionalPacing,
    common_pace_skill,
    limit_paces,
)
from sim.policies.supplements import Advisory, Tutoring, tutoring_hours


@dataclass
class Regime:
    """A pacing rule, content limits and supplements, applied to a group of students."""

    label: str
    pacing: Pacing
    limits: list = field(default_factory=list)
    supplements: list = field(default_factory=list)
    limit_paces: bool = False

    @property
    def personalized(self) -> bool:
        """Whether students follow individual paths (and so work in team rooms)."""
        return not isinstance(self.pacing, TraditionalPacing | ExtraTime)

    @property
    def move_on_days(self) -> int | None:
        return getattr(self.pacing, "move_on_days", None)

    def bounds_years(self, day: int) -> tuple[float, float]:
        """(floor, ceiling) in years relative to grade on ``day``; the tightest wins."""
        return tightest(self.limits, day)

    def floor(self) -> float:
        """The fixed floor in force (years below grade; inf if none)."""
        return current_floor(self.limits)

    def window_days(self) -> int:
        """Days of the test-prep window in force (0 if none)."""
        return window_days(self.limits)

    def gradual_floor(self) -> bool:
        """Whether a gradual floor is in force."""
        return has_gradual_floor(self.limits)

    @property
    def grade_level_first(self) -> bool:
        """Whether units start with grade-level skills (``GradeLevelFirst`` pacing)."""
        return isinstance(self.pacing, GradeLevelFirst)

    def tutoring_hours(self) -> float:
        """Hours a week of grade-level tutoring in force."""
        return tutoring_hours(self.supplements)

    def assign(self, ctx: DayContext, slots: np.ndarray, supervisor: np.ndarray,
               common: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(skill int64, modality int8) for ``slots`` (present students of this regime):
        limits, pacing, then drift and pace limits. ``supervisor``: each one's teacher
        today; ``common``: each one's common-pace skill."""
        lo, hi = skill_bounds(ctx.curriculum, ctx.grade[slots], *self.bounds_years(ctx.day))
        skills, modality = self.pacing.assign(ctx, slots, lo, hi, common)
        if self.personalized:
            skills = drift_toward_common(ctx, slots, skills, supervisor, common)
        if self.limit_paces:
            skills = limit_paces(supervisor, skills, common, ctx.capacity,
                                 ctx.curriculum.skills_per_unit)
        return skills, modality


def assign_day(groups, ctx: DayContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The day's assignment of every present student: ``(skills, modality, common)``
    (int64, int8, int64), one per ``ctx.present``; ``common`` is the common pace's skill.

    ``groups``: ``(regime, mask over all slots)`` pairs that partition the students.
    """
    present = ctx.present
    skills = np.empty(present.size, np.int64)
    modality = np.empty(present.size, np.int8)
    common = common_pace_skill(ctx.curriculum, ctx.calendar, ctx.grade[present], ctx.day)
    for regime, group in groups:
        mask = group[present]
        if not mask.any():
            continue
        sel = slice(None) if mask.all() else mask  # one group for everyone: no copies
        skills[sel], modality[sel] = regime.assign(ctx, present[sel], ctx.supervisor[sel],
                                                   common[sel])
    return skills, modality, common


def drift_toward_common(ctx: DayContext, slots, skills, supervisor, common) -> np.ndarray:
    """Teachers under pressure swap some playlist days for grade-level content: where the
    day's ``drift`` draw of a slot is below its supervisor's drift, the skill becomes the
    common pace's. Compiled (``teachers.drift_to_common``); a new array (or ``skills``
    itself when no teacher drifts)."""
    if not ctx.drift.any():
        return skills
    return teachers.drift_to_common(np.asarray(skills, np.int64), np.asarray(slots, np.int64),
                                    np.asarray(supervisor, np.int64), common, ctx.drift,
                                    ctx.draws["drift"])



def build_regime(arm, calendar, traditional) -> Regime:
    """The regime an arm's settings describe (see ``sim.config.parameters.ArmSettings``)."""
    pacing: Pacing = {
        "traditional": lambda: TraditionalPacing.from_params(traditional),
        "teacher_paced": lambda: TraditionalPacing(extension_share=0.0, reteach_group_size=0),
        "personalized": Playlist,
        "move_on": lambda: Playlist(move_on_days=arm.move_on_days),
        "extra_time": ExtraTime,
        "grade_level_first": GradeLevelFirst,
    }[arm.pacing]()
    limits: list = []
    if arm.floor is not None or arm.ceiling is not None:
        limits.append(FloorCeiling(_or_inf(arm.floor), _or_inf(arm.ceiling)))
    if arm.gradual_floor is not None:
        gf = arm.gradual_floor
        end = gf.reaches_grade_level(calendar)
        limits.append(GradualFloor(gf.start_floor, gf.start_day, end, calendar.state_test_day,
                                   gf.steps))
    if arm.test_prep_weeks > 0:
        limits.append(TestPrepWindow(int(round(arm.test_prep_weeks * calendar.days_per_week)),
                                     calendar.state_test_day))
    supplements = []
    if arm.tutoring is not None:
        t = arm.tutoring
        supplements.append(Tutoring(t.hours_per_week, t.target, t.share, t.session_hours,
                                    t.effectiveness, calendar.days_per_week))
    if arm.advisory_hours_per_week > 0:
        supplements.append(Advisory(arm.advisory_hours_per_week,
                                    days_per_week=calendar.days_per_week))
    return Regime(arm.label, pacing, limits, supplements, arm.limit_paces)


def traditional_regime(traditional) -> Regime:
    """What grades outside the program get in every arm."""
    return Regime("traditional", TraditionalPacing.from_params(traditional))


def _or_inf(x: float | None) -> float:
    return UNLIMITED if x is None else float(x)
