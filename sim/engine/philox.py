"""Philox4x32-10, the counter-based generator of Random123 (Salmon et al. 2011, SC'11).

A draw is a pure function of a 64-bit key and a 128-bit counter: nothing is built,
nothing is carried from one draw to the next, so a student's draw on a day does not
depend on what was drawn before, in which order, or by how many workers. Integer
multiplications, xors and shifts only: the same bits on every CPU (and on a GPU).
Checked against Random123's published known-answer vectors (``tests/kat_vectors``;
``tests/test_philox.py``).

The day's uniforms (``uniforms``) use the key of a replicate and the counter
``(slot // 4, day | extra << 16, year, stream)``: each 10-round block gives four
32-bit words, the uniforms of four consecutive slots, each ``(word >> 8) * 2**-24``
(24 bits: every float32 in [0, 1) it can hit is exact, as numpy's ``random(dtype=
float32)``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)   # the round multipliers
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)   # the key schedule's Weyl constants
LOW = np.uint64(0xFFFFFFFF)
SHIFT = np.uint64(32)
TO_UNIT = np.float32(1.0 / 16777216.0)                  # 2**-24


@njit(cache=True, inline="always")
def _round(c0, c1, c2, c3, k0, k1):
    p0 = M0 * np.uint64(c0)
    p1 = M1 * np.uint64(c2)
    hi0, lo0 = np.uint32(p0 >> SHIFT), np.uint32(p0 & LOW)
    hi1, lo1 = np.uint32(p1 >> SHIFT), np.uint32(p1 & LOW)
    return np.uint32(hi1 ^ c1 ^ k0), lo1, np.uint32(hi0 ^ c3 ^ k1), lo0


@njit(cache=True)
def block(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter (c0..c3) under key (k0, k1): four uint32 words."""
    c0, c1, c2, c3 = np.uint32(c0), np.uint32(c1), np.uint32(c2), np.uint32(c3)
    k0, k1 = np.uint32(k0), np.uint32(k1)
    for r in range(10):
        if r > 0:  # the key is bumped before every round but the first
            k0 = np.uint32(k0 + W0)
            k1 = np.uint32(k1 + W1)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    return c0, c1, c2, c3


@njit(cache=True, inline="always")
def _rounds(c0, c1, c2, c3, ks0, ks1):
    for r in range(10):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, ks0[r], ks1[r])
    return c0, c1, c2, c3


@njit(cache=True, inline="always")
def _unit(w):
    return np.float32(w >> np.uint32(8)) * TO_UNIT


@njit(cache=True, _nrt=False)
def _fill(out, ks0, ks1, c1, c2, c3):
    """``out`` (float32, length n) from blocks 0.. of counter (b, c1, c2, c3) under the
    round keys ``ks0``, ``ks1`` (the key schedule, computed once)."""
    n = out.size
    full = n // 4
    for b in range(full):
        w0, w1, w2, w3 = _rounds(np.uint32(b), c1, c2, c3, ks0, ks1)
        out[4 * b] = _unit(w0)
        out[4 * b + 1] = _unit(w1)
        out[4 * b + 2] = _unit(w2)
        out[4 * b + 3] = _unit(w3)
    if n > 4 * full:  # the last, partial block
        w0, w1, w2, w3 = _rounds(np.uint32(full), c1, c2, c3, ks0, ks1)
        last = n - 4 * full
        out[4 * full] = _unit(w0)
        if last > 1:
            out[4 * full + 1] = _unit(w1)
        if last > 2:
            out[4 * full + 2] = _unit(w2)


def key_schedule(k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """The ten round keys of (k0, k1): each the one before plus the Weyl constants."""
    r = np.arange(10, dtype=np.uint64)
    return (((k0 + r * int(W0)) & 0xFFFFFFFF).astype(np.uint32),
            ((k1 + r * int(W1)) & 0xFFFFFFFF).astype(np.uint32))


def uniforms(key: tuple[int, int], n: int, day: int, year: int, stream: int,
             extra: int = 0) -> np.ndarray:
    """``n`` float32 uniforms in [0, 1), one per slot, for one stream on one day.

    Args:
        key: the replicate's two 32-bit key words (``Streams.philox_key``).
        n: slots.
        day: the day of the school year (below 2**16).
        year: the district's year.
        stream: the stream's 32-bit key (``random_streams.stream_key``).
        extra: a further key of the draw (below 2**16: a tutoring supplement).
    """
    if not (0 <= day < 1 << 16 and 0 <= extra < 1 << 16):
        raise ValueError("day and extra must lie in [0, 65536)")
    out = np.empty(n, np.float32)
    ks0, ks1 = key_schedule(*key)
    _fill(out, ks0, ks1, np.uint32(day | extra << 16), np.uint32(year), np.uint32(stream))
    return out
