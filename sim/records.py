"""What the program and the teachers know: a record built from exit slips and benchmarks.

The playlist algorithm never sees true mastery. It sees

* a placement diagnostic at the start of each year, which misreads each
  skill with probability ``benchmark_error``;
* exit slips: ``mastery_streak`` passes in a row mark the day's skill as
  mastered; ``fail_limit`` failures in a row send the student back to the
  skill's prerequisites (the record marks them not mastered);
* benchmarks every ``benchmark_every_days``: each skill's record is
  corrected to the truth with probability ``1 - benchmark_error``.

The *frontier* of a student is the first skill at or above a lower bound
that the record does not show as mastered. Because skill ids are a
topological order of the prerequisite graph, the record shows all of the
frontier's prerequisites (at or above the bound) as mastered.
"""

from __future__ import annotations

import numpy as np

from sim.curriculum import NO_SKILL
from sim.population import chunks

MAX_STEP_SCAN = 6  # forward steps tried before a full frontier search


class Record:
    """Per-student record of skills believed mastered, and exit-slip streaks."""

    def __init__(self, n: int, n_skills: int):
        self.n_skills = n_skills
        self.believed = np.zeros((n, n_skills), bool)
        self.frontier = np.zeros(n, np.int16)       # first believed-unmastered skill >= bound
        self.frontier_bound = np.zeros(n, np.int16)  # the lower bound it was computed for
        self.stale = np.ones(n, bool)                # frontier needs a full search
        self.streak = np.zeros(n, np.int8)          # passes in a row on streak_skill
        self.fails = np.zeros(n, np.int8)           # failures in a row on streak_skill
        self.streak_skill = np.full(n, NO_SKILL, np.int16)

    # --- reading the record ---------------------------------------------------------
    def frontier_from(self, slots: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """First believed-unmastered skill >= ``bound`` for each slot (n_skills if none).

        Cached: a full search runs only when the record changed below the
        cached frontier, or the bound moved.
        """
        f = self.frontier[slots].astype(np.int64)
        need = self.stale[slots] | (bound > f) | (bound < self.frontier_bound[slots])
        if need.any():
            rows = slots[need]
            self._search(rows, bound[need])
            f[need] = self.frontier[rows]
        moved = ~need & (f < self.n_skills)
        if moved.any():  # the record marked the frontier skill mastered: step forward
            rows = slots[moved]
            self._step_forward(rows)
            f[moved] = self.frontier[rows]
        return f

    def _search(self, rows: np.ndarray, bound: np.ndarray) -> None:
        for part in chunks(rows.size):
            r, b = rows[part], bound[part]
            blocked = self.believed[r] | (np.arange(self.n_skills)[None, :] < b[:, None])
            first = np.argmin(blocked, axis=1)
            none_left = blocked[np.arange(r.size), first]
            self.frontier[r] = np.where(none_left, self.n_skills, first)
            self.frontier_bound[r] = b
        self.stale[rows] = False

    def _step_forward(self, rows: np.ndarray) -> None:
        """Advance frontiers past skills the record now shows as mastered."""
        f = self.frontier[rows].astype(np.int64)
        for _ in range(MAX_STEP_SCAN):
            inside = f < self.n_skills
            done = np.zeros(rows.size, bool)
            done[inside] = self.believed[rows[inside], f[inside]]
            if not done.any():
                break
            f[done] += 1
        else:
            inside = f < self.n_skills
            left = np.zeros(rows.size, bool)
            left[inside] = self.believed[rows[inside], f[inside]]
            if left.any():
                self._search(rows[left], f[left])
                f[left] = self.frontier[rows[left]]
        self.frontier[rows] = f

    # --- writing the record ---------------------------------------------------------
    def place(self, rng: np.random.Generator, slots: np.ndarray, truth: np.ndarray,
              error: float) -> None:
        """Placement diagnostic: each skill read correctly w.p. ``1 - error``.

        ``truth`` is a function of the slots' rows returning mastered booleans.
        Draws a full (slots x skills) array so streams stay aligned.
        """
        for part in chunks(slots.size):
            r = slots[part]
            misread = rng.random((r.size, self.n_skills), dtype=np.float32) < error
            self.believed[r] = truth(r) ^ misread
        self._reset(slots)

    def benchmark(self, rng: np.random.Generator, slots: np.ndarray, truth, error: float) -> None:
        """Benchmark: each skill's record is corrected to the truth w.p. ``1 - error``."""
        for part in chunks(slots.size):
            r = slots[part]
            seen = rng.random((r.size, self.n_skills), dtype=np.float32) >= error
            self.believed[r] = np.where(seen, truth(r), self.believed[r])
        self.stale[slots] = True

    def _reset(self, slots: np.ndarray) -> None:
        self.stale[slots] = True
        self.streak[slots] = 0
        self.fails[slots] = 0
        self.streak_skill[slots] = NO_SKILL

    def exit_slips(self, slots: np.ndarray, skills: np.ndarray, passed: np.ndarray,
                   prereqs: np.ndarray, mastery_streak: int, fail_limit: int) -> None:
        """Update streaks from the day's exit slips and act on them."""
        new_skill = self.streak_skill[slots] != skills
        self.streak_skill[slots] = skills
        streak = np.where(new_skill, 0, self.streak[slots]) + passed
        fails = np.where(new_skill | passed, 0, self.fails[slots] + ~passed)
        mastered = streak >= mastery_streak
        send_back = fails >= fail_limit
        self.believed[slots[mastered], skills[mastered]] = True
        self._forget_prereqs(slots[send_back], prereqs[skills[send_back]])
        self.streak[slots] = np.where(mastered, 0, streak)
        self.fails[slots] = np.where(send_back, 0, fails)

    def _forget_prereqs(self, rows: np.ndarray, pre: np.ndarray) -> None:
        if rows.size == 0:
            return
        r = np.repeat(rows, pre.shape[1])
        p = pre.ravel()
        ok = p != NO_SKILL
        self.believed[r[ok], p[ok]] = False
        self.stale[rows] = True
