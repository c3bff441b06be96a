"""Pacing rules: how each student's skill and modality are chosen each day.

``TraditionalPacing`` (the class follows the grade-level pacing guide),
``ExtraTime`` (Michigan: extra time for those behind, no advancing),
``Playlist`` (each student's frontier skill, as the exit-slip record shows
it) and ``GradeLevelFirst`` (units start at grade level; below-grade work
only for the unit's missing prerequisites). ``limit_paces`` holds a
teacher's students to the distinct paces the teacher can run.

Every rule reads the day through a ``sim.policies.day.DayContext`` (the
record, the curriculum, the students' grades and classes, the teachers'
capacities, the day's draws) and the common pace of its students, never the
district.

Modalities: 0 whole class, 1 teacher-led small group, 2 peer, 3 software.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine import kernels
from sim.engine.curriculum import NO_SKILL
from sim.engine.records import MAX_STEP_SCAN
from sim.policies.day import DayContext

WHOLE_CLASS, SMALL_GROUP, PEER, SOFTWARE = 0, 1, 2, 3


class Pacing:
    """Picks one skill and modality per student for a day."""

    def assign(self, ctx: DayContext, slots, lo, hi, common) -> tuple[np.ndarray, np.ndarray]:
        """(skill int64, modality int8) per slot of ``slots`` (int64), within the skill
        range [``lo``, ``hi``]; ``common``: the common pace's skill per slot."""
        raise NotImplementedError


def pacing_position(day: int, n_items: int, pacing_days: int, days: int) -> int:
    """Item of a pacing guide covering ``n_items`` by ``pacing_days``, then reviewing."""
    if day < pacing_days:
        return min(n_items - 1, day * n_items // pacing_days)
    rest = max(1, days - pacing_days)
    return min(n_items - 1, (day - pacing_days) * n_items // rest)


@dataclass
class TraditionalPacing(Pacing):
    """A whole class on the pacing guide's grade-level skill, covered by the state test.

    The differentiation one teacher can give beside the class, decided from
    the record (never the truth):

    * *extension*: a student whose record shows the day's skill mastered
      works on their next skill, at most ``extension_years`` grades ahead, with
      probability ``extension_share`` (teacher-led small group);
    * *reteach group*: in each class (each section of a secondary teacher),
      a teacher with an effective capacity of at least ``reteach_min_capacity``
      paces takes up to ``reteach_group_size`` of its students whose record
      lacks a prerequisite of the day's skill lying at most
      ``reteach_depth_years`` below the enrolled grade (chosen at random each
      day) and reteaches the first such prerequisite.

    Everyone else follows the class. Nobody works more than
    ``reteach_depth_years`` below grade or more than ``extension_years`` above it.
    """

    extension_share: float = 0.5
    extension_years: int = 1
    reteach_group_size: int = 6
    reteach_depth_years: float = 1.0
    reteach_min_capacity: float = 2.0

    @classmethod
    def from_params(cls, p) -> TraditionalPacing:
        """From ``TraditionalParams``."""
        return cls(p.extension_share, p.extension_years, p.reteach_group_size,
                   p.reteach_depth_years, p.reteach_min_capacity)

    def assign(self, ctx, slots, lo, hi, common):
        """The class skill and the differentiation, in one compiled pass
        (``kernels.traditional_day``; ``assign_numpy`` is the same in numpy)."""
        rec, cur = ctx.record, ctx.curriculum
        return kernels.traditional_day(
            rec.bits, np.asarray(slots, np.int64), common,
            ctx.grade, self._depth_bound(cur, ctx.grade), np.asarray(lo, np.int64),
            np.asarray(hi, np.int64), cur.ancestors, ctx.teacher, ctx.capacity,
            float(self.reteach_min_capacity), ctx.line, ctx.draws["extension"],
            np.float32(self.extension_share), self._extension_end(cur, ctx.grade),
            rec.frontier, rec.frontier_bound, rec.stale, rec.advanced, rec.n_skills,
            MAX_STEP_SCAN, int(self.reteach_group_size), WHOLE_CLASS, SMALL_GROUP)

    def _extension_end(self, cur, grade: np.ndarray) -> np.ndarray:
        """Per enrolled grade (indexed by grade), the last skill an extension reaches:
        ``extension_years`` grades above the grade (int64)."""
        g = np.arange(int(grade.max(initial=0)) + 1, dtype=np.int64)
        return cur.first_skill(g + 1 + self.extension_years).astype(np.int64) - 1

    def _extend(self, ctx, slots, skill, modality, ext, hi) -> None:
        """Extension: the students at positions ``ext`` work on their next skill, at
        most ``extension_years`` grades ahead (and within ``hi``), in a small group."""
        if ext.size == 0:
            return
        grade = ctx.grade
        grade_end = self._extension_end(ctx.curriculum, grade)[grade[slots[ext]]]
        nxt = ctx.record.frontier_from(slots[ext], skill[ext])
        skill[ext] = np.minimum(nxt, np.minimum(grade_end, hi[ext]))
        modality[ext] = SMALL_GROUP

    def _depth_bound(self, cur, grade: np.ndarray) -> np.ndarray:
        """Per enrolled grade (indexed by grade), the lowest skill a reteach group goes
        down to: ``reteach_depth_years`` below the grade's first skill, in the curriculum."""
        g = np.arange(int(grade.max(initial=0)) + 1, dtype=np.int64)
        depth = np.round((g - cur.lowest_grade - self.reteach_depth_years)
                         * cur.skills_per_grade).astype(np.int64)
        return np.clip(depth, 0, cur.n_skills - 1)

    def assign_numpy(self, ctx, slots, lo, hi, common):
        """``assign`` in plain numpy (the reference the kernel is tested against)."""
        rec = ctx.record
        skill = common.copy()
        modality = np.full(slots.size, WHOLE_CLASS, np.int8)
        u = ctx.draws["extension"][slots]
        knows = rec.knows(slots, skill)
        self._extend(ctx, slots, skill, modality,
                     np.flatnonzero(knows & (u < self.extension_share)), hi)
        if self.reteach_group_size > 0:
            self._reteach_numpy(ctx, slots, skill, modality, ~knows, u, lo)
        return skill, modality

    def _reteach_numpy(self, ctx, slots, skill, modality, candidates, u, lo) -> None:
        """The reteach group: fills in ``skill`` and ``modality`` for its members."""
        cur = ctx.curriculum
        cand = np.flatnonzero(candidates)
        if cand.size == 0:
            return
        grade = ctx.grade[slots[cand]].astype(np.int64)
        depth = np.round((grade - cur.lowest_grade - self.reteach_depth_years)
                         * cur.skills_per_grade).astype(np.int64)
        bound = np.maximum(lo[cand], np.clip(depth, 0, cur.n_skills - 1))
        fix = first_missing_ancestor_numpy(ctx, slots[cand], skill[cand], bound)
        gap = fix != skill[cand]
        cand, fix = cand[gap], fix[gap]
        teacher = ctx.teacher[slots[cand]].astype(np.int64)
        able = ctx.capacity[teacher] >= self.reteach_min_capacity
        cand, fix, teacher = cand[able], fix[able], teacher[able]
        # one group per class: a secondary teacher reteaches in each of their sections
        section = teacher * 1024 + ctx.line[slots[cand]].astype(np.int64)
        keep = rank_within_numpy(section, u[cand]) < self.reteach_group_size
        skill[cand[keep]] = fix[keep]
        modality[cand[keep]] = SMALL_GROUP


@dataclass
class ExtraTime(Pacing):
    """Michigan 'extra time' pacing: students behind the class's pacing skill keep
    working on their first grade-level skill the record lacks (extra time); no
    one works ahead of the class."""

    def assign(self, ctx, slots, lo, hi, common):
        start = ctx.curriculum.first_skill(ctx.grade[slots]).astype(np.int64)
        behind = ctx.record.frontier_from(slots, start)
        skill = np.minimum(behind, common)
        modality = np.where(skill < common, SMALL_GROUP, WHOLE_CLASS).astype(np.int8)
        return skill, modality


def rotating_modality(slots: np.ndarray, day: int) -> np.ndarray:
    """The playlist balances modalities: each student rotates small group, peer, software."""
    return (SMALL_GROUP + (slots + day) % 3).astype(np.int8)


def review_skill(ctx: DayContext, slots: np.ndarray) -> np.ndarray:
    """A grade-level skill to review when the record shows nothing left in range."""
    cur = ctx.curriculum
    return cur.first_skill(ctx.grade[slots]).astype(np.int64) + (
        (slots + ctx.day) % cur.skills_per_grade)


@dataclass
class Playlist(Pacing):
    """Each student works on their frontier: the first skill in range not shown mastered.

    ``move_on_days``: if set, the record marks a skill done after that many
    days on it, mastered or not (Michigan 'move on regardless of mastery').
    """

    move_on_days: int | None = None

    def assign(self, ctx, slots, lo, hi, common):
        skill = ctx.record.frontier_from(slots, lo)
        done = skill > hi
        if done.any():  # nothing left in range: review grade-level content
            skill[done] = review_skill(ctx, slots[done])
        return skill, rotating_modality(slots, ctx.day)


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

    def assign(self, ctx, slots, lo, hi, common):
        cur, cal, rec, day = ctx.curriculum, ctx.calendar, ctx.record, ctx.day
        if day >= cal.state_test_day:
            return Playlist().assign(ctx, slots, lo, hi, common)
        unit = pacing_position(day, cur.units_per_grade, cal.state_test_day, cal.days)
        start = cur.first_skill(ctx.grade[slots]).astype(np.int64) + (
            unit * cur.skills_per_unit)
        first_open = kernels.first_unknown_in(rec.bits, np.asarray(slots, np.int64), start,
                                              cur.skills_per_unit)
        has_open = first_open >= 0
        target = np.where(has_open, first_open, start)
        skill = np.where(has_open, target, -1)
        # Unit done: the student's frontier from the unit onwards.
        if (~has_open).any():
            rest = ~has_open
            nxt = rec.frontier_from(slots[rest], start[rest])
            skill[rest] = np.where(nxt > hi[rest], review_skill(ctx, slots[rest]), nxt)
        if has_open.any():
            skill[has_open] = first_missing_ancestor(ctx, slots[has_open], target[has_open],
                                                     lo[has_open])
        return skill, rotating_modality(slots, day)


def first_missing_ancestor(ctx, slots, target, lo) -> np.ndarray:
    """The first (transitive) prerequisite of ``target`` at or above ``lo`` that the
    record does not show as mastered, or ``target`` itself if there is none.

    Compiled (``kernels.first_missing_ancestor``); ``first_missing_ancestor_numpy`` is
    the same in plain numpy. ``ctx``: anything with the day's ``record`` and
    ``curriculum`` (a ``DayContext``).
    """
    return kernels.first_missing_ancestor(
        ctx.record.bits, np.asarray(slots, np.int64), ctx.curriculum.ancestors,
        np.asarray(target, np.int64), np.asarray(lo, np.int64))


def first_missing_ancestor_numpy(ctx, slots, target, lo) -> np.ndarray:
    """``first_missing_ancestor`` in plain numpy (the reference the kernel is tested
    against)."""
    anc = ctx.curriculum.ancestors[target].astype(np.int64)
    valid = (anc != NO_SKILL) & (anc >= lo[:, None])
    believed = ctx.record.knows(slots[:, None], np.where(valid, anc, 0))
    missing = valid & ~believed
    first = np.argmax(missing, axis=1)
    return np.where(missing.any(axis=1), anc[np.arange(slots.size), first], target)


def rank_within(group: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Each element's rank (0 = lowest ``priority``; ties by position) among the elements
    of its group (groups are small: classes, a teacher's units). Compiled
    (``kernels.rank_in_runs``); ``rank_within_numpy`` is the same in numpy."""
    group = np.asarray(group, np.int64)
    return kernels.rank_in_runs(group, np.asarray(priority), np.argsort(group, kind="stable"))


def rank_within_numpy(group: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """``rank_within`` in plain numpy (the reference the kernel is tested against)."""
    order = np.lexsort((priority, group))
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group)
    rank = np.empty(group.size, np.int64)
    rank[order] = np.arange(group.size) - first
    return rank


def common_pace_skill(curriculum, calendar, grade: np.ndarray, day: int) -> np.ndarray:
    """The grade-level pacing guide's skill on ``day`` (the class's common pace) for
    students of enrolled ``grade`` (one per student; int64 skill ids)."""
    cur, cal = curriculum, calendar
    pos = pacing_position(day, cur.skills_per_grade, cal.state_test_day, cal.days)
    return cur.first_skill(grade).astype(np.int64) + pos


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
    rank = rank_within(pair_teacher, -counts)  # units by students held, most first
    allowed = np.floor(capacity[pair_teacher]).astype(np.int64) - 1  # one pace is the common
    keep = rank[inverse] < allowed[inverse]
    out = skills.copy()
    idx = np.flatnonzero(off)[~keep]
    out[idx] = common[idx]
    return out


