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
from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine import compiled, records
from sim.engine.compiled import AHEAD, prefetch, source_key
from sim.engine.records import MAX_STEP_SCAN, ancestor_masks, missing_ancestor
from sim.policies.day import DayContext

# numba checks a cached function against its own file only: this is the hash of compiled.py,
# whose utilities (exp32, prefetch) this module's compiled functions inline, so a change there
# must change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt
COMPILED_SOURCE = "d9bef96573878454"

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
        (``traditional_day``)."""
        rec, cur = ctx.record, ctx.curriculum
        inputs = TraditionalDay(
            common, ctx.grade, self._depth_bound(cur, ctx.grade),
            np.asarray(lo, np.int64), np.asarray(hi, np.int64), ctx.teacher,
            ctx.capacity, ctx.line, ctx.draws["extension"],
            self._extension_end(cur, ctx.grade))
        rules = TraditionalRules(float(self.reteach_min_capacity), np.float32(self.extension_share),
                                 int(self.reteach_group_size), WHOLE_CLASS, SMALL_GROUP,
                                 rec.n_skills, MAX_STEP_SCAN)
        return traditional_day(rec.arrays, np.asarray(slots, np.int64), cur.ancestors, inputs,
                               rules)

    def _extension_end(self, cur, grade: np.ndarray) -> np.ndarray:
        """Per enrolled grade (indexed by grade), the last skill an extension reaches:
        ``extension_years`` grades above the grade (int64)."""
        g = np.arange(int(grade.max(initial=0)) + 1, dtype=np.int64)
        return cur.first_skill(g + 1 + self.extension_years).astype(np.int64) - 1

    def _depth_bound(self, cur, grade: np.ndarray) -> np.ndarray:
        """Per enrolled grade (indexed by grade), the lowest skill a reteach group goes
        down to: ``reteach_depth_years`` below the grade's first skill, in the curriculum."""
        g = np.arange(int(grade.max(initial=0)) + 1, dtype=np.int64)
        depth = np.round((g - cur.lowest_grade - self.reteach_depth_years)
                         * cur.skills_per_grade).astype(np.int64)
        return np.clip(depth, 0, cur.n_skills - 1)


class TraditionalDay(NamedTuple):
    """What traditional pacing's day reads: per slot, ``common`` (the class skill),
    ``lo`` and ``hi`` (the day's bounds); per student ``grade``, ``teacher``, ``line``
    and ``u`` (the extension draw); per teacher ``capacity``; per enrolled grade
    ``depth_bound`` and ``extension_end`` (``TraditionalPacing``'s tables)."""

    common: np.ndarray
    grade: np.ndarray
    depth_bound: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    teacher: np.ndarray
    capacity: np.ndarray
    line: np.ndarray
    u: np.ndarray
    extension_end: np.ndarray


class TraditionalRules(NamedTuple):
    """Traditional pacing's parameters, in the precisions its day compares in."""

    min_capacity: float     # a teacher's effective capacity needed for a reteach group
    share: np.float32       # extension_share
    group_size: int         # a reteach group's size (0: none)
    whole_class: int        # the modalities
    small_group: int
    n_skills: int           # the record's skills
    max_step: int           # the frontier's forward steps before a full search


def _compose_day(key: str):
    @njit(cache=True, nogil=True)
    def traditional_day(record, slots, ancestors, day, rules):
        """``TraditionalPacing.assign`` in one compiled pass: per slot, the class skill
        ``common``, whole class; a student the record shows knowing it works, if ``u``
        (per student) < ``share`` (float32, as numpy compares), on their frontier from it
        (``records.frontier_from``, its cache updated) capped at ``extension_end[grade]``
        and ``hi``, in a small group; in each class (``section``: teacher x 1024 + line)
        whose teacher has at least ``min_capacity``, up to ``group_size`` of the students
        the record shows lacking an ancestor of the class skill at or above ``max(lo,
        depth_bound[grade])`` (``records.missing_ancestor``), the lowest ``u`` first, are
        retaught the first such ancestor in a small group. Returns (skill int64,
        modality int8)."""
        key  # noqa: B018 -- the record's rules' sources (source_key): part of the cache key
        # the bundles' arrays taken out once (numba counts a reference for each one taken)
        bits, common, u, grade = record.bits, day.common, day.u, day.grade
        lo, hi, depth_bound, extension_end = day.lo, day.hi, day.depth_bound, day.extension_end
        teacher, capacity, line = day.teacher, day.capacity, day.line
        masks = ancestor_masks(ancestors, bits.shape[1])
        k = slots.size
        skill = common.copy()
        modality = np.full(k, rules.whole_class, np.int8)
        fix = np.empty(k, np.int64)
        section = np.empty(k, np.int64)
        ext = np.empty(k, np.int64)
        cand = np.empty(k, np.int64)
        n_ext = 0
        n_cand = 0
        for i in range(k):
            if i + AHEAD < k:
                prefetch(bits, slots[i + AHEAD], 0)
            r, s = np.uint64(slots[i]), common[i]  # r: unsigned (compiled.ROW_INDEX)
            if (bits[r, s >> 3] >> (s & 7)) & 1:
                if u[r] < rules.share:
                    ext[n_ext] = i
                    n_ext += 1
                continue
            f = missing_ancestor(bits, r, masks, s, max(lo[i], depth_bound[grade[r]]))
            t = teacher[r]
            if f != s and capacity[t] >= rules.min_capacity:
                fix[n_cand] = f
                section[n_cand] = t * 1024 + line[r]
                cand[n_cand] = i
                n_cand += 1
        if n_ext:
            e = ext[:n_ext]
            nxt = records.frontier_from(record, slots[e], common[e], rules.n_skills,
                                        rules.max_step)
            for j in range(n_ext):
                i = e[j]
                skill[i] = min(nxt[j], min(extension_end[grade[slots[i]]], hi[i]))
                modality[i] = rules.small_group
        if rules.group_size > 0 and n_cand:
            group = section[:n_cand]
            priority = np.empty(n_cand, u.dtype)
            for j in range(n_cand):
                priority[j] = u[slots[cand[j]]]
            chosen = lowest_in_runs(group, priority, stable_order(group), rules.group_size)
            for j in range(n_cand):
                if chosen[j]:
                    i = cand[j]
                    skill[i] = fix[j]
                    modality[i] = rules.small_group
        return skill, modality

    return traditional_day


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
        first_open = records.first_unknown_in(rec.bits, np.asarray(slots, np.int64), start,
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
    record does not show as mastered, or ``target`` itself if there is none
    (``records.missing_ancestor`` per slot, compiled). ``ctx``: anything with the day's
    ``record`` and ``curriculum`` (a ``DayContext``)."""
    return records.first_missing_ancestor(
        ctx.record.bits, np.asarray(slots, np.int64), ctx.curriculum.ancestors,
        np.asarray(target, np.int64), np.asarray(lo, np.int64))


def rank_within(group: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Each element's rank (0 = lowest ``priority``; ties by position) among the elements
    of its group (groups are small: classes, a teacher's units). Compiled
    (``rank_in_runs``)."""
    group = np.asarray(group, np.int64)
    return rank_in_runs(group, np.asarray(priority), np.argsort(group, kind="stable"))


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


# --- ranks within groups --------------------------------------------------------------------
SMALL_RUN = 64  # groups up to this size are ranked by counting (quadratic), larger by sorting


@njit(cache=True, nogil=True, inline="always")
def _run_stop(group, order, start):
    """The end (exclusive) of the run of one group that starts at ``start`` of ``order``
    (a stable sort by group)."""
    k = group.size
    stop = start + 1
    while stop < k and group[order[stop]] == group[order[start]]:
        stop += 1
    return stop


@njit(cache=True, nogil=True)
def rank_in_runs(group, priority, order):
    """Each element's rank (0 = lowest ``priority``, ties by position) among the elements
    of its group, given ``order``, a stable sort by group (``np.argsort(group,
    kind="stable")``): within each run of one group, the elements before it in
    (priority, position) order are counted (int64; as ``np.lexsort((priority, group))``)."""
    k = group.size
    rank = np.empty(k, np.int64)
    start = 0
    while start < k:
        stop = _run_stop(group, order, start)
        if stop - start > SMALL_RUN:  # a large group: a stable sort of its priorities
            by = np.argsort(priority[order[start:stop]], kind="mergesort")
            for pos in range(stop - start):
                rank[order[start + by[pos]]] = pos
            start = stop
            continue
        for a in range(start, stop):
            pa = priority[order[a]]
            r = 0
            for b in range(start, stop):
                pb = priority[order[b]]
                if pb < pa or (pb == pa and b < a):
                    r += 1
            rank[order[a]] = r
        start = stop
    return rank


@njit(cache=True, nogil=True)
def lowest_in_runs(group, priority, order, count):
    """Whether each element is among the ``count`` (>= 1) lowest ``priority`` (ties by
    position; priorities not NaN) of its group: ``rank_in_runs(group, priority,
    order) < count`` (bool), without ranking the rest. One pass over each run of one
    group keeps the ``count`` lowest so far in (priority, position) order, where
    ``rank_in_runs`` compares every pair (a reteach group takes 6 of a class's
    candidates: ranking them all was most of ``traditional_day``'s time)."""
    k = group.size
    chosen = np.zeros(k, np.bool_)
    best_p = np.empty(count, priority.dtype)
    best_at = np.empty(count, np.int64)
    start = 0
    while start < k:
        stop = _run_stop(group, order, start)
        n = 0  # kept so far, best_p ascending; a later position loses a tie
        for a in range(start, stop):
            p = priority[order[a]]
            if n == count:
                if not p < best_p[n - 1]:
                    continue
                n -= 1  # the highest kept drops out
            j = n
            while j > 0 and p < best_p[j - 1]:
                best_p[j], best_at[j] = best_p[j - 1], best_at[j - 1]
                j -= 1
            best_p[j], best_at[j] = p, a
            n += 1
        for j in range(n):
            chosen[order[best_at[j]]] = True
        start = stop
    return chosen


@njit(cache=True, nogil=True)
def stable_order(keys):
    """``np.argsort(keys, kind="stable")`` (int64): the identity when ``keys`` are already
    in order (students sit in slot order by class, so they usually are)."""
    for i in range(1, keys.size):
        if keys[i] < keys[i - 1]:
            return np.argsort(keys, kind="mergesort")
    return np.arange(keys.size)


# numba checks a cached function against its own file only: the sources of the record's rules
# it inlines join its cache key
traditional_day = _compose_day(source_key(compiled, records))
