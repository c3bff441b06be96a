"""One owner of randomness, a named stream per random process.

Every random process draws from its own generator, derived from the run's
root ``SeedSequence`` (the one ``District.rng`` is built from), the process
name and *when* it draws: ``streams.at("learn", year, day)`` is the same
generator in every arm of a replicate, whatever other processes consumed or
whether the process drew yesterday. So two arms see the same draws for the
same process on the same day (common random numbers), and the difference
between arms is the policy, not luck. Draws are made for every student slot
and indexed by slot, so a student's draw does not depend on who else is
present.
"""

from __future__ import annotations

import zlib
from functools import cached_property

import numpy as np

STREAMS = (
    "population",      # students at enrolment (keys: year)
    "teachers",        # teacher effects and capacities
    "mobility",        # who leaves each summer (keys: year)
    "attendance",      # who is present (keys: year, day)
    "learn",           # mastery gains (keys: year, day)
    "backfill",        # learning a missing prerequisite in context (keys: year, day)
    "exit_slip",       # exit-slip outcomes (keys: year, day)
    "placement",       # placement diagnostic misreads (keys: year)
    "benchmark",       # benchmark misreads (keys: year, day)
    "rotation",        # which team member supervises a student in a room (keys: year, day)
    "extension",       # traditional differentiation (keys: year, day)
    "growth_test",     # growth-test measurement error (keys: year, occasion)
    "state_test",      # state-test item responses (keys: year)
    "summer",          # summer loss (keys: year)
    "tutor_learn",     # tutoring-session learning (keys: year, day, supplement)
    "tutor_backfill",  # tutoring-session backfill (keys: year, day, supplement)
    "drift",           # which supervised student-days a drifting teacher swaps (keys: year, day)
    "evaluation",      # observation error (keys: year)
    "exits",           # which teachers leave (keys: year)
    "novices",         # replacement teachers (keys: year)
    "leaders",         # whether a leader responds (keys: year)
    "review",          # the district's review: each school's leniency, timing and weight on
                       # growth (key 0); the noise in what it sees (keys: year, 1)
)


def stream_key(name: str) -> int:
    """A stable integer for a stream name (independent of Python's hash seed)."""
    return zlib.crc32(name.encode())


class Streams:
    """Named generators derived from one root seed sequence."""

    def __init__(self, root: np.random.SeedSequence):
        self.root = root

    def at(self, name: str, *keys: int) -> np.random.Generator:
        """The generator of process ``name`` at ``keys`` (e.g. year, day)."""
        if name not in STREAMS:
            raise KeyError(f"no random stream named {name!r}")
        child = np.random.SeedSequence(
            self.root.entropy,
            spawn_key=(*self.root.spawn_key, stream_key(name), *(int(k) for k in keys)))
        return np.random.Generator(np.random.PCG64(child))

    @cached_property
    def teachers(self) -> np.random.Generator:
        return self.at("teachers")


class DailyDraws:
    """Uniform draws for every slot, made on first use, for one day."""

    def __init__(self, streams: Streams, year: int, day: int, n: int):
        self._streams, self._keys, self._n = streams, (year, day), n
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        u = self._cache.get(name)
        if u is None:
            gen = self._streams.at(name, *self._keys)
            u = self._cache[name] = gen.random(self._n, dtype=np.float32)
        return u


def replicate_seed(seed: int, replicate: int) -> np.random.SeedSequence:
    """The root seed sequence of one replicate (shared by all arms)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate,))
