"""One owner of randomness, a named stream per random process.

Every random process draws from its own generator, derived from the run's
root ``SeedSequence`` (the one ``District.rng`` is built from), the process
name and *when* it draws: ``streams.at("placement", year)`` is the same
generator in every arm of a replicate, whatever other processes consumed or
whether the process drew yesterday. The daily processes (attendance, learning,
exit slips, supervision, drift, tutoring) build no generator at all: their
uniforms are Philox4x32-10 blocks (``sim.engine.philox``) keyed by the replicate
and counted by (slot, day, year, stream), ``streams.daily(name, year, day, n)``.
So two arms see the same draws for the same process on the same day (common
random numbers), and the difference between arms is the policy, not luck. Draws
are made for every student slot and indexed by slot, so a student's draw does not
depend on who else is present.
"""

from __future__ import annotations

import zlib
from functools import cache, cached_property
from math import prod

import numpy as np

from sim.engine import philox
from sim.engine.compiled import float32_from_raw

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
    "outside",         # out-of-school learning: intensity at enrolment (keys: year, 0),
                       # the summer's rounding (keys: year, 1)
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

    @cached_property
    def philox_key(self) -> tuple[int, int]:
        """The replicate's Philox key: two 32-bit words of the root seed sequence (the
        scenario seed and the replicate)."""
        words = self.root.generate_state(2, np.uint32)
        return int(words[0]), int(words[1])

    def daily(self, name: str, year: int, day: int, n: int, extra: int = 0) -> np.ndarray:
        """The uniforms of process ``name`` on one day, one per slot (float32): Philox
        keyed by the replicate, counted by (slot, day and ``extra``, year, stream), so
        no generator is built and a slot's draw depends on nothing else."""
        if name not in STREAMS:
            raise KeyError(f"no random stream named {name!r}")
        return philox.uniforms(self.philox_key, n, day, year, stream_key(name), extra)


def uniform32(gen: np.random.Generator, shape) -> np.ndarray:
    """``gen.random(shape, dtype=np.float32)``: the same numbers, and ``gen`` left in
    the same state, faster for a PCG64 generator (numpy makes float32 uniforms one
    32-bit word at a time; here its 64-bit outputs come in blocks, ``random_raw``,
    and are split and scaled in a compiled loop, ``compiled.float32_from_raw``).
    Falls back to ``gen.random`` for another bit generator, when the generator holds
    half a 64-bit output from an earlier odd-sized draw, or if this numpy makes
    float32 uniforms some other way (checked once a process: ``_raw_path_matches``)."""
    bg = gen.bit_generator
    n = prod(shape) if isinstance(shape, tuple) else int(shape)
    if (n == 0 or not isinstance(bg, np.random.PCG64) or bg.state["has_uint32"]
            or not _raw_path_matches()):
        return gen.random(shape, dtype=np.float32)
    return _raw_uniform32(bg, n).reshape(shape)


RAW_BLOCK = 1 << 13  # raw outputs drawn at a time (64 KB): the output alone is the size of the draw


def _raw_uniform32(bg: np.random.PCG64, n: int) -> np.ndarray:
    """``n`` float32 uniforms from ``bg``'s raw outputs (no half output held), drawn
    ``RAW_BLOCK`` outputs at a time (the same stream as one call)."""
    out = np.empty(n, np.float32)
    for start in range(0, n, 2 * RAW_BLOCK):
        part = out[start:start + 2 * RAW_BLOCK]  # only the last part can be odd
        raw = bg.random_raw((part.size + 1) // 2)
        float32_from_raw(raw, part)
    # numpy keeps the last output's high half: unused after an odd draw (the next
    # 32-bit draw takes it), spent after an even one (kept but ignored)
    state = bg.state
    state["has_uint32"], state["uinteger"] = n & 1, int(raw[-1] >> np.uint64(32))
    bg.state = state
    return out


@cache
def _raw_path_matches() -> bool:
    """Whether the raw path gives numpy's numbers and leaves numpy's state: draws of
    4, 5, 6 and 3 in a row on two scratch generators (the raw path even and odd, then
    numpy's own while a half output is held)."""
    def scratch():
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(12345)))

    a, b = scratch(), scratch()
    for n in (4, 5, 6, 3):
        want = a.random(n, dtype=np.float32)
        bg = b.bit_generator
        got = (b.random(n, dtype=np.float32) if bg.state["has_uint32"]
               else _raw_uniform32(bg, n))
        if not np.array_equal(want, got):
            return False
    return a.bit_generator.state == b.bit_generator.state


class DailyDraws:
    """Uniform draws for every slot, made on first use, for one day (``Streams.daily``)."""

    def __init__(self, streams: Streams, year: int, day: int, n: int):
        self._streams, self._keys, self._n = streams, (year, day), n
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        u = self._cache.get(name)
        if u is None:
            u = self._cache[name] = self._streams.daily(name, *self._keys, self._n)
        return u


def replicate_seed(seed: int, replicate: int) -> np.random.SeedSequence:
    """The root seed sequence of one replicate (shared by all arms)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate,))
