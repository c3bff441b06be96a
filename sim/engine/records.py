"""What the program and the teachers know: a record built from exit slips and benchmarks.

The playlist algorithm never sees true mastery. It sees

* a placement diagnostic when a student enters the program (or, outside
  it, each year): an adaptive test that places the student at a level and
  infers the rest, as real diagnostics do (``Diagnostic``). Its errors are
  correlated: one error in the level estimate moves every inferred skill;
* for a student who stays in the program, last year's record, carried over
  the summer and updated by the fall diagnostic where it tested (as a
  benchmark is); losses elsewhere show only in slips and later benchmarks;
* exit slips: ``mastery_streak`` passes in a row mark the day's skill as
  mastered; ``fail_limit`` failures in a row send the student back to the
  skill's prerequisites (the record marks them not mastered);
* benchmarks every ``benchmark_every_days``: the same adaptive test, which
  rewrites the record in the band of skills it tests around the student's
  level (and, for a skill read as mastered, its prerequisites); the record
  elsewhere stands.

The *frontier* of a student is the first skill at or above a lower bound
that the record does not show as mastered. Because skill ids are a
topological order of the prerequisite graph, the record shows all of the
frontier's prerequisites (at or above the bound) as mastered.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sim.engine.compiled import AHEAD, NO_SKILL, prefetch
from sim.engine.population import chunks
from sim.engine.random_streams import uniform32

# numba checks a cached function against its own file only: this is the hash of compiled.py,
# whose utilities (exp32, prefetch) this module's compiled functions inline, so a change there
# must change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt
COMPILED_SOURCE = "d9bef96573878454"

MAX_STEP_SCAN = 6  # forward steps tried before a full frontier search
DIAGNOSE_ROWS = 1024  # rows read at a time by a diagnostic (bounds its working arrays)
MOVE_ON_NEVER = np.iinfo(np.int16).max  # a move-on limit of int16's maximum: none
# how far below its band (grade-years) the diagnostic follows a failed item down to the
# prerequisites beneath it (an assumption, docs/model.md §7.5 and §8)
DRILL_DOWN_YEARS = 1.0


class DiagnosticTables(NamedTuple):
    """What a diagnostic reads a row with (``Diagnostic.tables``; float32 scalars)."""

    position: np.ndarray   # each skill's position (grade-years, float32)
    ancestors: np.ndarray  # Curriculum.ancestors (int16, padded with NO_SKILL at the end)
    prereqs: np.ndarray    # Curriculum.prereqs (int16, padded with NO_SKILL at the end)
    lowest: np.float32     # the lowest grade
    spg: np.float32        # skills per grade
    error_years: np.float32
    band: np.float32
    misread: np.float32
    drill: np.float32      # DRILL_DOWN_YEARS


class Diagnostic:
    """An adaptive diagnostic on the vertical scale (like a placement test or a benchmark).

    It estimates each student's level (grade-years) as the position their
    mastered skills would reach if they were contiguous, plus one normal
    error of ``error_years`` per student and test. Skills within
    ``band_years`` of the estimate are tested directly (each misread with
    probability ``misread``); a skill read as mastered is evidence that its
    prerequisites are mastered too. A skill further below the estimate that no
    skill read as mastered vouches for is inferred mastered with the odds the
    test found just below the estimate (the share of the band's lower half read
    as mastered), as adaptive diagnostics infer from the pattern they tested;
    skills further above are inferred not mastered.
    """

    def __init__(self, curriculum, error_years: float, band_years: float, misread: float):
        self.position = curriculum.position_years().astype(np.float32)
        self.lowest, self.spg = curriculum.lowest_grade, curriculum.skills_per_grade
        self.error_years, self.band_years, self.misread = error_years, band_years, misread
        self.ancestors, self.prereqs = curriculum.ancestors, curriculum.prereqs

    @property
    def tables(self) -> DiagnosticTables:
        """The compiled reading's inputs, as one bundle."""
        f32 = np.float32
        return DiagnosticTables(self.position, self.ancestors, self.prereqs, f32(self.lowest),
                                f32(self.spg), f32(self.error_years), f32(self.band_years),
                                f32(self.misread), f32(DRILL_DOWN_YEARS))

    def read(self, truth: np.ndarray, level_error: np.ndarray, misread_u: np.ndarray):
        """(believed, tested): the test's reading of each (student, skill), and which
        skills it tested directly; ``truth`` is (students x skills) mastered booleans,
        ``level_error`` standard normals per student, ``misread_u`` uniforms like ``truth``.
        Row by row, compiled (``read_row``).
        """
        f32 = np.float32
        return diagnostic_read(np.ascontiguousarray(truth, bool), np.asarray(level_error, f32),
                               np.asarray(misread_u, f32), self.tables)


def pack(believed: np.ndarray) -> np.ndarray:
    """(rows x skills) booleans as ``Record.bits`` rows: skill ``s`` is bit ``s & 7``
    of byte ``s >> 3`` (uint8, ``ceil(skills / 8)`` bytes a row)."""
    return np.packbits(believed, axis=-1, bitorder="little")


class Record:
    """Per-student record of skills believed mastered, and exit-slip streaks.

    The record is held as bits (``bits``: one bit per student and skill, 1 =
    believed mastered; ``pack``), an eighth of a boolean array; ``believed``
    unpacks it (a copy) for inspection and tests.
    """

    def __init__(self, n: int, n_skills: int):
        self.n_skills = n_skills
        self.bits = np.zeros((n, -(-n_skills // 8)), np.uint8)
        self.frontier = np.zeros(n, np.int16)       # first believed-unmastered skill >= bound
        self.frontier_bound = np.zeros(n, np.int16)  # the lower bound it was computed for
        self.stale = np.ones(n, bool)                # frontier needs a full search
        self.advanced = np.zeros(n, bool)           # frontier skill just marked mastered
        self.run = np.zeros(n, np.int8)  # on streak_skill: +k passes in a row, -k failures
        self.streak_skill = np.full(n, NO_SKILL, np.int16)
        self.days_on = np.zeros(n, np.int16)        # days in a row on streak_skill

    @property
    def streak(self) -> np.ndarray:
        """Exit slips passed in a row on ``streak_skill``."""
        return np.maximum(self.run, 0)

    @property
    def fails(self) -> np.ndarray:
        """Exit slips failed in a row on ``streak_skill``."""
        return np.maximum(-self.run, 0)

    @property
    def believed(self) -> np.ndarray:
        """The record as (students x skills) booleans (a copy: write through ``believed =``)."""
        return self.rows(slice(None))

    @believed.setter
    def believed(self, value: np.ndarray) -> None:
        self.bits[:] = pack(np.asarray(value, bool))

    def rows(self, rows) -> np.ndarray:
        """The record of ``rows`` as (rows x skills) booleans (a copy)."""
        return np.unpackbits(self.bits[rows], axis=-1, count=self.n_skills,
                             bitorder="little").view(bool)

    # --- reading the record ---
    @property
    def arrays(self) -> RecordArrays:
        """The record's arrays (the same objects) as the bundle its compiled rules take."""
        return RecordArrays(self.bits, self.run, self.streak_skill, self.days_on, self.frontier,
                            self.frontier_bound, self.stale, self.advanced)

    def knows(self, rows: np.ndarray, skills: np.ndarray) -> np.ndarray:
        """Whether the record shows each (row, skill) as mastered (any matching shapes)."""
        rows, skills = np.broadcast_arrays(np.asarray(rows, np.int64),
                                           np.asarray(skills, np.int64))
        out = get_bits(self.bits, rows.ravel(), skills.ravel())
        return out.reshape(rows.shape)

    def _mark(self, rows: np.ndarray, skills: np.ndarray, value: bool) -> None:
        set_bits(self.bits, np.asarray(rows, np.int64), np.asarray(skills, np.int64),
                 bool(value))

    def frontier_from(self, slots: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """First believed-unmastered skill >= ``bound`` for each slot (n_skills if none).

        Cached: a full search runs only when the record changed below the
        cached frontier, or the bound moved (``frontier_of``, compiled).
        """
        return frontier_from(self.arrays, np.asarray(slots, np.int64),
                             np.asarray(bound, np.int64), self.n_skills, MAX_STEP_SCAN)

    # --- writing the record ---------------------------------------------------------
    def place(self, rng: np.random.Generator, slots: np.ndarray, truth,
              diagnostic: Diagnostic, keep: np.ndarray | None = None) -> None:
        """Placement: the diagnostic's reading becomes the record of ``slots``.

        ``truth`` is a function of rows returning mastered booleans. ``keep``
        (per slot) marks students who stay in the program: their record carries
        over, and the fall diagnostic updates it as a benchmark does (only what
        it tested). Draws are made for every slot, so streams stay aligned
        across arms.
        """
        self._diagnose(rng, slots, truth, diagnostic, replace_all=True, keep=keep)
        self._reset(slots if keep is None else slots[~keep])

    def benchmark(self, rng: np.random.Generator, slots: np.ndarray, truth,
                  diagnostic: Diagnostic) -> None:
        """Benchmark: the diagnostic rewrites the record where it tested."""
        self._diagnose(rng, slots, truth, diagnostic, replace_all=False)
        self.stale[slots] = True

    def _diagnose(self, rng, slots, truth, diagnostic, replace_all: bool, keep=None) -> None:
        """The diagnostic's reading of ``slots`` written into the record.

        Draws per chunk of ``CHUNK_ROWS`` rows: the rows' level errors, then their
        misread uniforms, which are drawn and used ``DIAGNOSE_ROWS`` rows at a time
        (the same stream, so the same draws as one (chunk x skills) array, with a
        smaller working set; rows are read independently and exactly). Read and
        written row by row, compiled (``diagnose_into``).
        """
        tables = diagnostic.tables
        for rs, replace, level_error, misread_u in self.diagnose_draws(rng, slots, replace_all,
                                                                        keep):
            diagnose_into(self.bits, np.asarray(rs, np.int64), replace,
                          np.ascontiguousarray(truth(rs)), (level_error, misread_u), tables)

    def diagnose_draws(self, rng, slots, replace_all: bool, keep):
        """The diagnostic's draws, ``DIAGNOSE_ROWS`` rows at a time: (rows, whether each
        row's reading replaces its record, level errors, misread uniforms). A staying
        student (``keep``) is updated as a benchmark updates: only where tested."""
        for part in chunks(slots.size):
            r = slots[part]
            level_error = rng.standard_normal(r.size).astype(np.float32)
            replace = np.full(r.size, replace_all)
            if keep is not None:
                replace &= ~keep[part]
            for sub in chunks(r.size, DIAGNOSE_ROWS):
                misread_u = uniform32(rng, (r[sub].size, self.n_skills))
                yield r[sub], replace[sub], level_error[sub], misread_u

    def _reset(self, slots: np.ndarray) -> None:
        self.stale[slots] = True
        self.run[slots] = 0
        self.days_on[slots] = 0
        self.streak_skill[slots] = NO_SKILL

    def exit_slips(self, slots: np.ndarray, skills: np.ndarray, passed: np.ndarray,
                   prereqs: np.ndarray, rules: RecordRules,
                   move_on: np.ndarray | None = None) -> None:
        """Update streaks from the day's exit slips of ``slots`` (distinct) and act on
        them (``exit_slip_update``, student by student). ``move_on``: per student, days
        on one skill after which the record marks it done (``rules.use_move_on``)."""
        n = self.run.size
        exit_slips(self.arrays, np.asarray(slots, np.int64), np.asarray(skills, np.int64),
                   np.asarray(passed, bool), prereqs,
                   np.full(n, MOVE_ON_NEVER, np.int16) if move_on is None else move_on, rules)


class RecordArrays(NamedTuple):
    """``Record``'s arrays, as the bundle its compiled rules take."""

    bits: np.ndarray            # uint8 (n, bytes): skill s is bit s & 7 of byte s >> 3
    run: np.ndarray             # int8: +k passes in a row, -k failures, on streak_skill
    streak_skill: np.ndarray    # int16
    days_on: np.ndarray         # int16: days in a row on streak_skill
    frontier: np.ndarray        # int16: first believed-unmastered skill >= frontier_bound
    frontier_bound: np.ndarray  # int16
    stale: np.ndarray           # bool: the frontier needs a full search
    advanced: np.ndarray        # bool: the frontier skill was just marked mastered


class RecordRules(NamedTuple):
    """The exit-slip rule's parameters."""

    mastery_streak: int  # passes in a row that mark a skill mastered
    fail_limit: int      # failures in a row that send a student back to the prerequisites
    use_move_on: bool    # whether move-on limits (per student) apply today


def record_rules(a, use_move_on: bool) -> RecordRules:
    """From ``AssessmentParams``; ``use_move_on``: some student has a move-on limit."""
    return RecordRules(int(a.mastery_streak), int(a.fail_limit), bool(use_move_on))


# --- the record's rules, compiled: skill s of a row is bit (s & 7) of byte (s >> 3) -------------
@njit(cache=True, nogil=True, inline="always")
def update_streak(run, streak_skill, days_on, row, skill, passed, move_limit, rules):
    """One student's exit slip on ``skill`` (``row``: an unsigned index): the run of
    passes (+) or failures (-) on the skill grows or restarts; ``mastery_streak`` passes
    mean mastered, ``fail_limit`` failures a send-back to the prerequisites. With
    ``use_move_on``, ``move_limit`` days on one skill (the student's) mean done, and a
    student with a limit is never sent back. Returns (mastered, send_back); the run is
    cleared by either. Rules take the arrays they touch (``learning.learn_skill``)."""
    s = skill
    same = streak_skill[row] == s
    prev = run[row] if same else 0
    streak_skill[row] = s
    x_run = max(prev, 0) + 1 if passed else min(prev, 0) - 1
    mastered = x_run >= rules.mastery_streak
    send_back = x_run <= -rules.fail_limit
    if rules.use_move_on:
        days = days_on[row] + 1 if same else 1
        mastered = mastered or days >= move_limit
        if move_limit < MOVE_ON_NEVER:
            send_back = False
        days_on[row] = 0 if mastered else days
    run[row] = 0 if (mastered or send_back) else x_run
    return mastered, send_back


@njit(cache=True, nogil=True, inline="always")
def mark_record(bits, frontier, advanced, stale, row, skill, verdict, prereqs):
    """What ``update_streak``'s ``verdict`` (mastered, send_back) writes into one student's
    record (``row``: an unsigned index): mastered marks the skill (and flags a frontier
    reached); a send-back clears the skill's prerequisites (the frontier goes stale)."""
    mastered, send_back = verdict
    s = skill
    if mastered:
        bits[row, np.uint64(s) >> np.uint64(3)] |= np.uint8(1 << (s & 7))
        if s == frontier[row]:
            advanced[row] = True
    if send_back:
        for j in range(prereqs.shape[1]):
            p = prereqs[s, j]
            if p != NO_SKILL:
                bits[row, p >> 3] &= np.uint8(~(1 << (p & 7)) & 0xFF)
        stale[row] = True


@njit(cache=True, nogil=True)
def exit_slips(record, slots, skills, passed, prereqs, move_on, rules):
    """``update_streak`` and ``mark_record`` of each slot, in order."""
    bits, run, streak_skill, days_on, frontier, _, stale, advanced = record
    for i in range(slots.size):
        r = np.uint64(slots[i])
        verdict = update_streak(run, streak_skill, days_on, r, skills[i], passed[i], move_on[r],
                                rules)
        mark_record(bits, frontier, advanced, stale, r, skills[i], verdict, prereqs)


@njit(cache=True, nogil=True)
def get_bits(bits, rows, skills):
    """Whether each (row, skill) bit is set (bool; 1-D ``rows`` and ``skills`` of one length)."""
    k = rows.size
    out = np.empty(k, np.bool_)
    for i in range(k):
        s = skills[i]
        out[i] = (bits[rows[i], s >> 3] >> (s & 7)) & 1
    return out


@njit(cache=True, nogil=True)
def set_bits(bits, rows, skills, value):
    """Set (``value`` True) or clear each (row, skill) bit, in order."""
    for i in range(rows.size):
        s = skills[i]
        mask = np.uint8(1 << (s & 7))
        if value:
            bits[rows[i], s >> 3] |= mask
        else:
            bits[rows[i], s >> 3] &= ~mask


@njit(cache=True, nogil=True, inline="always")
def first_clear(bits, row, lo, hi, missing):
    """The first skill of ``lo .. hi - 1`` whose bit in ``row`` is clear; ``missing`` if none."""
    for s in range(lo, hi):
        if not (bits[row, s >> 3] >> (s & 7)) & 1:
            return s
    return missing


@njit(cache=True, nogil=True, inline="always")
def frontier_of(bits, frontier, frontier_bound, stale, advanced, row, bound, n_skills,
                max_step):
    """One student's frontier: the first believed-unmastered skill at or above ``bound``
    (``n_skills`` if none), from the cache where it answers (``frontier``,
    ``frontier_bound``, ``stale``, ``advanced``: ``Record``'s), which is updated.

    A full search runs when the cache is stale or the bound moved; a frontier the
    record has just marked mastered steps forward up to ``max_step`` skills, then
    searches in full (keeping the bound the cache answers for).
    """
    r, b = row, bound
    f = np.int64(frontier[r])
    if stale[r] or b > f or b < frontier_bound[r]:
        f = first_clear(bits, r, max(b, 0), n_skills, n_skills)
        frontier[r] = f
        frontier_bound[r] = b
        stale[r] = False
        advanced[r] = False
    elif advanced[r]:
        advanced[r] = False
        steps = 0
        while steps < max_step and f < n_skills and (bits[r, f >> 3] >> (f & 7)) & 1:
            f += 1
            steps += 1
        if steps == max_step and f < n_skills and (bits[r, f >> 3] >> (f & 7)) & 1:
            f = first_clear(bits, r, max(f, 0), n_skills, n_skills)
            stale[r] = False
        frontier[r] = f
    return f


@njit(cache=True, nogil=True)
def frontier_from(record, slots, bound, n_skills, max_step):
    """``frontier_of`` of each slot (int64), the cache updated in place."""
    out = np.empty(slots.size, np.int64)
    frontier_into(record, slots, bound, n_skills, max_step, out)
    return out


@njit(cache=True, nogil=True, _nrt=False)
def frontier_into(record, slots, bound, n_skills, max_step, out):
    """``frontier_from``'s loop, into ``out`` (compiled without reference counting, as
    ``school_day.day_loop`` is: it allocates nothing)."""
    bits, frontier, frontier_bound = record.bits, record.frontier, record.frontier_bound
    stale, advanced = record.stale, record.advanced
    k = slots.size
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        out[i] = frontier_of(bits, frontier, frontier_bound, stale, advanced, slots[i], bound[i],
                             n_skills, max_step)


@njit(cache=True, nogil=True)
def first_unknown_in(bits, slots, start, length):
    """Per slot, the first skill of ``start .. start + length - 1`` that the record's
    ``bits`` lack; -1 if they show them all (int64)."""
    out = np.empty(slots.size, np.int64)
    for i in range(slots.size):
        out[i] = first_clear(bits, slots[i], start[i], start[i] + length, -1)
    return out


@njit(cache=True, nogil=True)
def ancestor_masks(ancestors, n_bytes):
    """Each skill's ancestors as record bits (uint8, skills x ``n_bytes``; ``pack``'s
    layout: skill ``a`` is bit ``a & 7`` of byte ``a >> 3``)."""
    n_skills, width = ancestors.shape
    masks = np.zeros((n_skills, n_bytes), np.uint8)
    for s in range(n_skills):
        for j in range(width):
            a = ancestors[s, j]
            if a != NO_SKILL:
                masks[s, a >> 3] |= np.uint8(1 << (a & 7))
    return masks


LOWEST_BIT = np.array([0] + [(b & -b).bit_length() - 1 for b in range(1, 256)], np.int64)


@njit(cache=True, nogil=True, inline="always")
def missing_ancestor(bits, row, masks, target, bound):
    """The lowest ancestor of ``target`` at or above ``bound`` that ``row`` of the record
    lacks, or ``target`` (``masks``: ``ancestor_masks``). Ancestors are listed in
    increasing order (``Curriculum.ancestors``), so the lowest is the first in the
    table: found a byte of the record at a time."""
    t = target
    if t <= 0:
        return t
    lo = max(bound, 0)
    for byte in range(lo >> 3, ((t - 1) >> 3) + 1):
        m = np.int64(masks[t, byte]) & ~np.int64(bits[row, byte])
        if byte == lo >> 3:
            m &= 0xFF << (lo & 7)
        if m:
            return byte * 8 + LOWEST_BIT[m]
    return t


@njit(cache=True, nogil=True)
def first_missing_ancestor(bits, slots, ancestors, target, lo):
    """``missing_ancestor`` of each slot: the first (in table order) ancestor of
    ``target`` at or above ``lo`` that the record's ``bits`` lack; ``target`` if none
    (int64)."""
    masks = ancestor_masks(ancestors, bits.shape[1])
    k = slots.size
    out = np.empty(k, np.int64)
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        out[i] = missing_ancestor(bits, slots[i], masks, target[i], lo[i])
    return out


# --- the diagnostic, row by row ---------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def read_row(truth, i, draws, tables, scratch):
    """The diagnostic's reading of row ``i`` of ``truth`` into ``scratch`` (gap, tested,
    read, implied; per skill): each skill's position's gap from the estimate, whether
    tested, read as mastered, implied by a skill read as mastered. ``draws``: (level
    errors per row, misread uniforms rows x skills). Float32 throughout, as numpy
    computes it; ancestor lists are transitive, ascending and padded at the end.
    Beneath a band skill read as not mastered the test drills down (``tested``, ``read``)
    to prerequisites below the band, at most ``tables.drill`` years below it. Returns the
    share of the band's skills below the estimate read as mastered (float32; 1 if none):
    ``believed_of``'s odds for an untested skill below the band that nothing read vouches
    for."""
    level_error, misread_u = draws
    gap, tested, read, implied = scratch
    ancestors, position = tables.ancestors, tables.position
    band, misread = tables.band, tables.misread
    n = truth.shape[1]
    width = ancestors.shape[1]
    count = 0
    for s in range(n):
        if truth[i, s]:
            count += 1
    level = tables.lowest + np.float32(count) / tables.spg
    estimate = level + tables.error_years * level_error[i]
    lower, hits = 0, 0
    for s in range(n):
        g = position[s] - estimate
        gap[s] = g
        t = abs(g) <= band
        tested[s] = t
        read[s] = t and (truth[i, s] != (misread_u[i, s] < misread))
        implied[s] = False
        if t and g < 0:
            lower += 1
            if read[s]:
                hits += 1
    # beneath a tested skill read as not mastered the test drills down to its direct
    # prerequisites below the band (and theirs, from the top down), no further than
    # ``drill`` years below the band
    prereqs = tables.prereqs
    deepest = -band - tables.drill
    for s in range(n - 1, -1, -1):
        if tested[s] and not read[s]:
            for j in range(prereqs.shape[1]):
                p = prereqs[s, j]
                if p == NO_SKILL:
                    break
                if (not tested[p]) and gap[p] < -band and gap[p] >= deepest:
                    tested[p] = True
                    read[p] = truth[i, p] != (misread_u[i, p] < misread)
    # from the top: a skill already implied has its ancestors marked too (they are
    # ancestors of the skill that implied it), so only the others are walked
    for s in range(n - 1, -1, -1):
        if read[s] and not implied[s]:
            for j in range(width):
                a = ancestors[s, j]
                if a == NO_SKILL:
                    break
                implied[a] = True
    return np.float32(hits) / np.float32(lower) if lower > 0 else np.float32(1.0)


@njit(cache=True, nogil=True, inline="always")
def believed_of(gap, tested, read, implied, neg_band, u, odds):
    """Whether a reading of one skill (``read_row``'s: its gap from the estimate, tested,
    read as mastered, implied) believes it mastered: as read if tested; else if implied;
    else, below the band, with probability ``odds`` (the share of the band below the
    estimate read as mastered; ``u`` the skill's uniform, unused by the test there): what
    the test saw just below the student's level is what it infers further down, where
    it tested nothing and no skill read as mastered vouches for the skill."""
    if tested:
        return read
    return implied or (gap < neg_band and u < odds)


@njit(cache=True, nogil=True)
def diagnostic_read(truth, level_error, misread_u, tables):
    """``read_row`` of every row: (believed, tested), bool (rows x skills)."""
    rows, n = truth.shape
    believed = np.empty((rows, n), np.bool_)
    tested_out = np.empty((rows, n), np.bool_)
    scratch = (np.empty(n, np.float32), np.empty(n, np.bool_), np.empty(n, np.bool_),
               np.empty(n, np.bool_))
    gap, tested, read, implied = scratch
    neg_band = -tables.band
    for i in range(rows):
        odds = read_row(truth, i, (level_error, misread_u), tables, scratch)
        for s in range(n):
            believed[i, s] = believed_of(gap[s], tested[s], read[s], implied[s], neg_band,
                                         misread_u[i, s], odds)
            tested_out[i, s] = tested[s] or implied[s]
    return believed, tested_out


def diagnose_into(bits, rows, replace, truth, draws, tables) -> None:
    """The diagnostic's reading (``read_row``) of ``rows`` written into the record's
    ``bits``: where ``replace`` (per row) the whole reading, else only the skills it
    tested (the rest of the record stands). ``truth`` and ``draws`` are the rows', in
    order."""
    n = truth.shape[1]
    scratch = (np.empty(n, np.float32), np.empty(n, np.bool_), np.empty(n, np.bool_),
               np.empty(n, np.bool_), np.empty(bits.shape[1], np.uint8))
    diagnose_loop(bits, rows, replace, truth, draws, tables, scratch)


@njit(cache=True, nogil=True, _nrt=False)
def diagnose_loop(bits, rows, replace, truth, draws, tables, scratch):
    """``diagnose_into``'s loop (``scratch``: ``read_row``'s four arrays and a packed row);
    compiled without reference counting, as ``school_day.day_loop`` is."""
    n = truth.shape[1]
    gap, tested, read, implied, packed = scratch
    reading = (gap, tested, read, implied)
    neg_band = -tables.band
    n_bytes = bits.shape[1]
    misread_u = draws[1]
    for i in range(rows.size):
        odds = read_row(truth, i, draws, tables, reading)
        r = rows[i]
        rep = replace[i]
        packed[:] = 0
        for s in range(n):
            byte, bit = s >> 3, s & 7
            if rep or tested[s] or implied[s]:
                b = believed_of(gap[s], tested[s], read[s], implied[s], neg_band,
                                misread_u[i, s], odds)
            else:
                b = (bits[r, byte] >> bit) & 1
            if b:
                packed[byte] |= np.uint8(1 << bit)
        for byte in range(n_bytes):
            bits[r, byte] = packed[byte]
