"""Regimes: how each student's skill and modality are chosen each day.

A regime is a composition of small objects:

* one **pacing** rule that picks the skill: ``TraditionalPacing`` (the class
  follows the grade-level pacing guide), ``Playlist`` (each student gets
  their frontier skill, as the exit-slip record shows it) or
  ``GradeLevelFirst`` (units start at grade level; below-grade work only
  for the unit's missing prerequisites);
* any number of **content limits**, each giving a floor and a ceiling in
  years relative to the enrolled grade for a day: ``FloorCeiling``,
  ``GradualFloor``, ``TestPrepWindow``. The tightest limit wins;
* any number of **supplements** outside the block: ``Tutoring``.

Modalities: 0 whole class, 1 teacher-led small group, 2 peer, 3 software.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.curriculum import NO_SKILL

WHOLE_CLASS, SMALL_GROUP, PEER, SOFTWARE = 0, 1, 2, 3
UNLIMITED = math.inf


# --- content limits -----------------------------------------------------------------
@dataclass(frozen=True)
class FloorCeiling:
    """Content stays within [grade - floor, grade + ceiling] years."""

    floor: float = UNLIMITED
    ceiling: float = UNLIMITED

    def limits(self, day: int) -> tuple[float, float]:
        return self.floor, self.ceiling


@dataclass(frozen=True)
class GradualFloor:
    """The floor rises from ``start_floor`` years below grade to grade level.

    Linear between ``start_day`` and ``grade_level_day`` (days), or in
    ``steps`` equal steps; at grade level from ``grade_level_day`` until the
    state test; after the test personalization resumes at ``start_floor``.
    """

    start_floor: float
    start_day: int
    grade_level_day: int
    state_test_day: int
    steps: int = 0

    def floor_on(self, day: int) -> float:
        if day >= max(self.grade_level_day, self.state_test_day):
            return self.start_floor  # the test is over: personalization resumes
        if day >= self.grade_level_day:
            return 0.0
        if day < self.start_day:
            return self.start_floor
        frac = (day - self.start_day) / (self.grade_level_day - self.start_day)
        if self.steps:
            frac = math.floor(frac * self.steps) / self.steps
        return self.start_floor * (1.0 - frac)

    def limits(self, day: int) -> tuple[float, float]:
        return self.floor_on(day), UNLIMITED


@dataclass(frozen=True)
class TestPrepWindow:
    """The last ``days`` instructional days before the state test are grade-level only."""

    days: int
    state_test_day: int

    def active(self, day: int) -> bool:
        return self.state_test_day - self.days <= day < self.state_test_day

    def limits(self, day: int) -> tuple[float, float]:
        return (0.0, 0.0) if self.active(day) else (UNLIMITED, UNLIMITED)


# --- pacing rules -----------------------------------------------------------------
class Pacing:
    """Picks one skill and modality per student for a day."""

    def assign(self, model, slots, lo, hi, day) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def pacing_position(day: int, n_items: int, pacing_days: int, days: int) -> int:
    """Item of a pacing guide covering ``n_items`` by ``pacing_days``, then reviewing."""
    if day < pacing_days:
        return min(n_items - 1, day * n_items // pacing_days)
    rest = max(1, days - pacing_days)
    return min(n_items - 1, (day - pacing_days) * n_items // rest)


@dataclass
class TraditionalPacing(Pacing):
    """Whole class on the pacing guide's grade-level skill, covered by the state test.

    Ordinary differentiation, decided from the record: a student whose record
    shows the day's skill mastered gets extension work on their own next
    skill with probability ``extension_share``; one whose record lacks a
    prerequisite of it gets remediation on the first missing one with
    probability ``remediation_share`` (both in a teacher-led small group).
    """

    extension_share: float = 0.5
    remediation_share: float = 0.3

    def assign(self, model, slots, lo, hi, day):
        rec = model.record
        skill = common_pace_skill(model, slots, day)
        modality = np.full(slots.size, WHOLE_CLASS, np.int8)
        u = model.draws["extension"][slots]
        ext = rec.knows(slots, skill) & (u < self.extension_share)
        if ext.any():
            skill[ext] = np.minimum(rec.frontier_from(slots[ext], skill[ext]), hi[ext])
            modality[ext] = SMALL_GROUP
        rem = ~ext & (u < self.remediation_share)
        if rem.any():
            fix = first_missing_ancestor(model, slots[rem], skill[rem], lo[rem])
            modality[rem] = np.where(fix != skill[rem], SMALL_GROUP, WHOLE_CLASS)
            skill[rem] = fix
        return skill, modality


@dataclass
class ExtraTime(Pacing):
    """Michigan 'extra time' pacing: students behind the class's pacing skill keep
    working on their first grade-level skill the record lacks (extra time); no
    one works ahead of the class."""

    def assign(self, model, slots, lo, hi, day):
        start = model.curriculum.first_skill(model.students.grade[slots]).astype(np.int64)
        pace = common_pace_skill(model, slots, day)
        behind = model.record.frontier_from(slots, start)
        skill = np.minimum(behind, pace)
        modality = np.where(skill < pace, SMALL_GROUP, WHOLE_CLASS).astype(np.int8)
        return skill, modality


def rotating_modality(slots: np.ndarray, day: int) -> np.ndarray:
    """The playlist balances modalities: each student rotates small group, peer, software."""
    return (SMALL_GROUP + (slots + day) % 3).astype(np.int8)


def review_skill(model, slots: np.ndarray, day: int) -> np.ndarray:
    """A grade-level skill to review when the record shows nothing left in range."""
    cur = model.curriculum
    return cur.first_skill(model.students.grade[slots]).astype(np.int64) + (
        (slots + day) % cur.skills_per_grade)


@dataclass
class Playlist(Pacing):
    """Each student works on their frontier: the first skill in range not shown mastered.

    ``move_on_days``: if set, the record marks a skill done after that many
    days on it, mastered or not (Michigan 'move on regardless of mastery').
    """

    move_on_days: int | None = None

    def assign(self, model, slots, lo, hi, day):
        skill = model.record.frontier_from(slots, lo)
        done = skill > hi
        if done.any():  # nothing left in range: review grade-level content
            skill[done] = review_skill(model, slots[done], day)
        return skill, rotating_modality(slots, day)


@dataclass
class GradeLevelFirst(Pacing):
    """Units start with grade-level skills; below-grade work only for missing prerequisites.

    Units follow the pacing guide until the state test. In the day's unit a
    student works on the first grade-level skill their record does not show
    mastered; if the record lacks one of its (transitive) prerequisites at or
    above the floor, they work on the first such prerequisite instead. With
    the unit done, they move on to their frontier from the unit. After the
    state test the playlist resumes.
    """

    def assign(self, model, slots, lo, hi, day):
        cur, cal, rec = model.curriculum, model.params.calendar, model.record
        if day >= cal.state_test_day:
            return Playlist().assign(model, slots, lo, hi, day)
        unit = pacing_position(day, cur.units_per_grade, cal.state_test_day, cal.days)
        start = cur.first_skill(model.students.grade[slots]).astype(np.int64) + (
            unit * cur.skills_per_unit)
        cols = start[:, None] + np.arange(cur.skills_per_unit)[None, :]
        open_ = ~rec.knows(slots[:, None], cols)
        has_open = open_.any(axis=1)
        target = start + np.argmax(open_, axis=1)
        skill = np.where(has_open, target, -1)
        # Unit done: the student's frontier from the unit onwards.
        if (~has_open).any():
            rest = ~has_open
            nxt = rec.frontier_from(slots[rest], start[rest])
            skill[rest] = np.where(nxt > hi[rest], review_skill(model, slots[rest], day), nxt)
        if has_open.any():
            skill[has_open] = first_missing_ancestor(model, slots[has_open], target[has_open],
                                                     lo[has_open])
        return skill, rotating_modality(slots, day)


def first_missing_ancestor(model, slots, target, lo) -> np.ndarray:
    """The first (transitive) prerequisite of ``target`` at or above ``lo`` that the
    record does not show as mastered, or ``target`` itself if there is none."""
    anc = model.curriculum.ancestors[target].astype(np.int64)
    valid = (anc != NO_SKILL) & (anc >= lo[:, None])
    believed = model.record.knows(slots[:, None], np.where(valid, anc, 0))
    missing = valid & ~believed
    first = np.argmax(missing, axis=1)
    return np.where(missing.any(axis=1), anc[np.arange(slots.size), first], target)


def common_pace_skill(model, slots: np.ndarray, day: int) -> np.ndarray:
    """The grade-level pacing guide's skill for the day (the class's common pace)."""
    cur, cal = model.curriculum, model.params.calendar
    pos = pacing_position(day, cur.skills_per_grade, cal.state_test_day, cal.days)
    return cur.first_skill(model.students.grade[slots]).astype(np.int64) + pos


def limit_paces(teacher: np.ndarray, skills: np.ndarray, common: np.ndarray,
                capacity: np.ndarray, skills_per_unit: int) -> np.ndarray:
    """Keep each teacher's students within the teacher's capacity of distinct paces.

    A teacher runs the common pace plus their most populated other units, up
    to ``floor(capacity)`` paces in all; students in any other unit join the
    common pace. Returns the adjusted skills.
    """
    unit = skills // skills_per_unit
    off = unit != common // skills_per_unit
    if not off.any():
        return skills
    t, u = teacher[off], unit[off]
    pairs, inverse, counts = np.unique(t * 100_000 + u, return_inverse=True, return_counts=True)
    pair_teacher = pairs // 100_000
    # rank units within each teacher by how many students they hold (most first)
    order = np.lexsort((-counts, pair_teacher))
    rank = np.empty(order.size, np.int64)
    first = np.searchsorted(pair_teacher[order], pair_teacher[order])
    rank[order] = np.arange(order.size) - first
    allowed = np.floor(capacity[pair_teacher]).astype(np.int64) - 1  # one pace is the common
    keep = rank[inverse] < allowed[inverse]
    out = skills.copy()
    idx = np.flatnonzero(off)[~keep]
    out[idx] = common[idx]
    return out


def sessions_on(day: int, hours_per_week: float, session_hours: float, days_per_week: int):
    """Whether a session falls on ``day``: sessions spread evenly over the week
    (fractional rates accumulate)."""
    per_day = hours_per_week / session_hours / days_per_week
    return math.floor((day + 1) * per_day) > math.floor(day * per_day)


# --- supplements ----------------------------------------------------------------------
@dataclass
class Tutoring:
    """Supplemental grade-level sessions outside the block for a target group.

    The group is chosen on the fall growth test: ``near_cut`` takes the
    ``share`` of program students just below the score that predicts the
    state cut, ``furthest_behind`` the lowest ``share``, ``all`` everyone.
    """

    hours_per_week: float
    target: str = "near_cut"
    share: float = 0.25
    session_hours: float = 1.5
    effectiveness: float = 1.0
    days_per_week: int = 5

    def session_on(self, day: int) -> bool:
        return sessions_on(day, self.hours_per_week, self.session_hours, self.days_per_week)

    def select(self, fall_offset: np.ndarray, cut_offset: np.ndarray) -> np.ndarray:
        """Boolean mask of tutored students among candidates.

        Args:
            fall_offset: fall growth-test level minus enrolled grade (years).
            cut_offset: the same at the state cut's predicted level (years).
        """
        k = fall_offset.size
        if self.target == "all" or k == 0:
            return np.ones(k, bool)
        n_pick = int(round(self.share * k))
        if self.target == "furthest_behind":
            order = np.argsort(fall_offset, kind="stable")
        else:
            below = fall_offset < cut_offset
            gap = np.where(below, cut_offset - fall_offset, np.inf)
            order = np.argsort(gap, kind="stable")
            n_pick = min(n_pick, int(below.sum()))
        mask = np.zeros(k, bool)
        mask[order[:n_pick]] = True
        return mask


@dataclass
class Advisory:
    """Advisory or extended-day time: students whose record is behind the common
    pace work on their first missing grade-level skill (catch-up sessions)."""

    hours_per_week: float
    session_hours: float = 1.0
    days_per_week: int = 5

    def session_on(self, day: int) -> bool:
        return sessions_on(day, self.hours_per_week, self.session_hours, self.days_per_week)


# --- the composition ------------------------------------------------------------------
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
        floor, ceiling = UNLIMITED, UNLIMITED
        for limit in self.limits:
            f, c = limit.limits(day)
            floor, ceiling = min(floor, f), min(ceiling, c)
        return floor, ceiling

    def assign(self, model, slots: np.ndarray, day: int):
        lo, hi = skill_bounds(model, slots, *self.bounds_years(day))
        return self.pacing.assign(model, slots, lo, hi, day)


def skill_bounds(model, slots, floor: float, ceiling: float):
    """Skill-id range [lo, hi] for each slot from limits in years."""
    cur = model.curriculum
    spg = cur.skills_per_grade
    g = model.students.grade[slots].astype(np.int64) - cur.lowest_grade
    lo = np.zeros(slots.size, np.int64) if math.isinf(floor) else np.clip(
        np.round((g - floor) * spg).astype(np.int64), 0, cur.n_skills - 1)
    hi = np.full(slots.size, cur.n_skills - 1, np.int64) if math.isinf(ceiling) else np.clip(
        np.round((g + 1 + ceiling) * spg).astype(np.int64) - 1, 0, cur.n_skills - 1)
    return lo, hi


def build_regime(arm, calendar, assessment) -> Regime:
    """The regime an arm's settings describe (see ``sim.parameters.ArmSettings``)."""
    pacing: Pacing = {
        "traditional": lambda: TraditionalPacing(assessment.extension_share,
                                                 assessment.remediation_share),
        "teacher_paced": lambda: TraditionalPacing(0.0, 0.0),
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


def traditional_regime(assessment) -> Regime:
    """What grades outside the program get in every arm."""
    return Regime("traditional", TraditionalPacing(assessment.extension_share,
                                                   assessment.remediation_share))


def _or_inf(x: float | None) -> float:
    return UNLIMITED if x is None else float(x)
