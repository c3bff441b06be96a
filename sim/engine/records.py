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

import numpy as np

from sim.engine import kernels
from sim.engine.curriculum import NO_SKILL
from sim.engine.population import chunks
from sim.engine.random_streams import uniform32

MAX_STEP_SCAN = 6  # forward steps tried before a full frontier search
DIAGNOSE_ROWS = 1024  # rows read at a time by a diagnostic (bounds its working arrays)


class Diagnostic:
    """An adaptive diagnostic on the vertical scale (like a placement test or a benchmark).

    It estimates each student's level (grade-years) as the position their
    mastered skills would reach if they were contiguous, plus one normal
    error of ``error_years`` per student and test. Skills within
    ``band_years`` of the estimate are tested directly (each misread with
    probability ``misread``); a skill read as mastered is evidence that its
    prerequisites are mastered too. Skills further below the estimate are
    inferred mastered, skills further above inferred not mastered.
    """

    def __init__(self, curriculum, error_years: float, band_years: float, misread: float):
        self.position = curriculum.position_years().astype(np.float32)
        self.lowest, self.spg = curriculum.lowest_grade, curriculum.skills_per_grade
        self.error_years, self.band_years, self.misread = error_years, band_years, misread
        n = curriculum.n_skills
        anc = curriculum.ancestors
        below = np.zeros((n, n), np.float32)  # below[s, a]: a is a (transitive) prerequisite of s
        rows = np.repeat(np.arange(n), anc.shape[1])
        ok = anc.ravel() != NO_SKILL
        below[rows[ok], anc.ravel()[ok]] = 1.0
        self.ancestor_matrix = below
        self.ancestors = anc

    def read(self, truth: np.ndarray, level_error: np.ndarray, misread_u: np.ndarray):
        """(believed, tested): the test's reading of each (student, skill), and which
        skills it tested directly; ``truth`` is (students x skills) mastered booleans,
        ``level_error`` standard normals per student, ``misread_u`` uniforms like ``truth``.

        Compiled (``kernels.diagnostic_read``); ``read_numpy`` is the same in numpy.
        """
        f32 = np.float32
        return kernels.diagnostic_read(
            np.ascontiguousarray(truth, bool), np.asarray(level_error, f32),
            np.asarray(misread_u, f32), self.position, self.ancestors, f32(self.lowest),
            f32(self.spg), f32(self.error_years), f32(self.band_years), f32(self.misread))

    def read_numpy(self, truth: np.ndarray, level_error: np.ndarray, misread_u: np.ndarray):
        """``read`` in plain numpy (the reference the kernel is tested against)."""
        level = self.lowest + truth.sum(axis=1, dtype=np.float32) / self.spg
        estimate = level + self.error_years * level_error
        gap = self.position[None, :] - estimate[:, None]
        tested = np.abs(gap) <= self.band_years
        read = tested & (truth ^ (misread_u < self.misread))
        implied = (read.astype(np.float32) @ self.ancestor_matrix) > 0
        believed = (gap < -self.band_years) | read | (implied & ~(tested & ~read))
        return believed, tested | implied


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
    def knows(self, rows: np.ndarray, skills: np.ndarray) -> np.ndarray:
        """Whether the record shows each (row, skill) as mastered (any matching shapes)."""
        rows, skills = np.broadcast_arrays(np.asarray(rows, np.int64),
                                           np.asarray(skills, np.int64))
        out = kernels.get_bits(self.bits, rows.ravel(), skills.ravel())
        return out.reshape(rows.shape)

    def _mark(self, rows: np.ndarray, skills: np.ndarray, value: bool) -> None:
        kernels.set_bits(self.bits, np.asarray(rows, np.int64), np.asarray(skills, np.int64),
                         bool(value))

    def frontier_from(self, slots: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """First believed-unmastered skill >= ``bound`` for each slot (n_skills if none).

        Cached: a full search runs only when the record changed below the
        cached frontier, or the bound moved. Compiled (``kernels.frontier_from``);
        ``frontier_from_numpy`` is the same in numpy.
        """
        return kernels.frontier_from(self.bits, self.frontier, self.frontier_bound,
                                     self.stale, self.advanced, np.asarray(slots, np.int64),
                                     np.asarray(bound, np.int64), self.n_skills,
                                     MAX_STEP_SCAN)

    def frontier_from_numpy(self, slots: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """``frontier_from`` in plain numpy (the reference the kernel is tested against)."""
        f = self.frontier[slots].astype(np.int64)
        need = self.stale[slots] | (bound > f) | (bound < self.frontier_bound[slots])
        if need.any():
            rows = slots[need]
            self._search(rows, bound[need])
            f[need] = self.frontier[rows]
        moved = ~need & self.advanced[slots]
        if moved.any():  # the record marked the frontier skill mastered: step forward
            rows = slots[moved]
            self._step_forward(rows)
            f[moved] = self.frontier[rows]
        return f

    def _search(self, rows: np.ndarray, start: np.ndarray, bound: np.ndarray | None = None):
        """Full search from ``start``; the cache remembers ``bound`` (default ``start``),
        the lower bound the frontier answers for."""
        rows = np.asarray(rows, np.int64)
        self.frontier[rows] = kernels.first_clear_bit(self.bits, rows,
                                                      np.asarray(start, np.int64), self.n_skills)
        self.frontier_bound[rows] = start if bound is None else bound
        self.stale[rows] = False
        self.advanced[rows] = False

    def _step_forward(self, rows: np.ndarray) -> None:
        """Advance frontiers past skills the record now shows as mastered."""
        self.advanced[rows] = False
        f = self.frontier[rows].astype(np.int64)
        todo = np.arange(rows.size)  # positions still sitting on a believed-mastered skill
        for _ in range(MAX_STEP_SCAN):
            inside = f[todo] < self.n_skills
            todo = todo[inside]
            todo = todo[self.knows(rows[todo], f[todo])]
            if todo.size == 0:
                break
            f[todo] += 1
        else:
            inside = f[todo] < self.n_skills
            todo = todo[inside]
            todo = todo[self.knows(rows[todo], f[todo])]
            if todo.size:
                # keep the bound the frontier answers for, so tomorrow's call
                # with the same bound finds the cache valid
                self._search(rows[todo], f[todo], self.frontier_bound[rows[todo]])
                f[todo] = self.frontier[rows[todo]]
        self.frontier[rows] = f

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
        written row by row, compiled (``kernels.diagnose_into``); ``_diagnose_numpy``
        is the same through ``Diagnostic.read_numpy``.
        """
        f32 = np.float32
        for rs, replace, level_error, misread_u in self._diagnose_draws(rng, slots, replace_all,
                                                                         keep):
            kernels.diagnose_into(
                self.bits, np.asarray(rs, np.int64), replace, np.ascontiguousarray(truth(rs)),
                level_error, misread_u, diagnostic.position, diagnostic.ancestors,
                f32(diagnostic.lowest), f32(diagnostic.spg), f32(diagnostic.error_years),
                f32(diagnostic.band_years), f32(diagnostic.misread))

    def _diagnose_numpy(self, rng, slots, truth, diagnostic, replace_all: bool,
                        keep=None) -> None:
        """``_diagnose`` in plain numpy (the reference the kernel is tested against)."""
        for rs, replace, level_error, misread_u in self._diagnose_draws(rng, slots, replace_all,
                                                                         keep):
            believed, tested = diagnostic.read_numpy(truth(rs), level_error, misread_u)
            self.bits[rs] = pack(np.where(replace[:, None] | tested, believed, self.rows(rs)))

    def _diagnose_draws(self, rng, slots, replace_all: bool, keep):
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
                   prereqs: np.ndarray, mastery_streak: int, fail_limit: int,
                   move_on: np.ndarray | None = None) -> None:
        """Update streaks from the day's exit slips and act on them.

        ``move_on``: per slot, days on one skill after which the record marks it
        done whatever the slips say (move-on pacing: such students are never
        sent back to prerequisites); the dtype's maximum or None for none.
        In numpy: the day's block runs these steps compiled and fused
        (``kernels.day_block``), which is tested against this.
        """
        same = self.streak_skill[slots] == skills
        prev = np.where(same, self.run[slots], 0)
        self.streak_skill[slots] = skills
        run = np.where(passed, np.maximum(prev, 0) + 1, np.minimum(prev, 0) - 1)
        mastered = run >= mastery_streak
        send_back = run <= -fail_limit
        if move_on is not None:
            days = np.where(same, self.days_on[slots] + 1, 1)
            moving = move_on < np.iinfo(move_on.dtype).max
            mastered |= days >= move_on
            send_back &= ~moving  # move-on pacing never sends a student back
            self.days_on[slots] = np.where(mastered, 0, days)
        self._mark(slots[mastered], skills[mastered], True)
        at_frontier = mastered & (skills == self.frontier[slots])
        self.advanced[slots[at_frontier]] = True
        self._forget_prereqs(slots[send_back], prereqs[skills[send_back]])
        run[mastered | send_back] = 0
        self.run[slots] = run

    def _forget_prereqs(self, rows: np.ndarray, pre: np.ndarray) -> None:
        if rows.size == 0:
            return
        r = np.repeat(rows, pre.shape[1])
        p = pre.ravel()
        ok = p != NO_SKILL
        self._mark(r[ok], p[ok], False)
        self.stale[rows] = True
