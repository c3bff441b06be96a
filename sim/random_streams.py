"""One owner of randomness, a named stream per random process.

Every random process (population, learning, exit slips, ...) draws from its
own generator, derived from the run's root ``SeedSequence`` and the process
name. Two arms built from the same seed therefore see the same draws for the
same process on the same day, whatever the other processes consumed: the
difference between arms is the policy, not luck (common random numbers).

Processes that draw every day draw a full array for all students, used or
not, so the streams never drift apart between arms.
"""

from __future__ import annotations

import zlib

import numpy as np

STREAMS = (
    "population",      # students, classrooms, schools
    "teachers",        # teacher effects and capacities
    "mobility",        # who leaves each summer, who arrives
    "attendance",      # who is present each day
    "learning",        # mastery gains and backfill
    "exit_slip",       # exit-slip outcomes
    "benchmark",       # benchmark misreads
    "rotation",        # which team member supervises a student in a room
    "extension",       # traditional: who gets extension work
    "growth_test",     # growth-test measurement error
    "state_test",      # state-test item responses
    "summer",          # summer loss
    "tutoring",        # tutoring attendance and learning
    "reference",       # the statewide reference cohort
)


def stream_key(name: str) -> int:
    """A stable integer for a stream name (independent of Python's hash seed)."""
    return zlib.crc32(name.encode())


class Streams:
    """Named generators derived from one root seed sequence."""

    def __init__(self, root: np.random.SeedSequence):
        self.root = root
        self._gens: dict[str, np.random.Generator] = {}

    def __getattr__(self, name: str) -> np.random.Generator:
        if name.startswith("_") or name not in STREAMS:
            raise AttributeError(f"no random stream named {name!r}")
        gen = self._gens.get(name)
        if gen is None:
            child = np.random.SeedSequence(self.root.entropy,
                                           spawn_key=(*self.root.spawn_key, stream_key(name)))
            gen = self._gens[name] = np.random.default_rng(child)
        return gen


def replicate_seed(seed: int, replicate: int) -> np.random.SeedSequence:
    """The root seed sequence of one replicate (shared by all arms)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate,))
