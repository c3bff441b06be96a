"""Compiled kernels of the daily cycle's gathers over (students x skills) arrays.

The daily cycle touches, per present student, the day's skill and its
prerequisites (or ancestors): a handful of bytes of a (students x skills)
row. Done with numpy fancy indexing this builds (students x prerequisites)
index and mask temporaries (for ancestors, 165 columns of int64: over a
kilobyte per student) and reads every column even when the answer is in the
first. These kernels walk each student's row directly and stop at the answer,
with no temporaries beyond their outputs.

They compute exactly what the plain-numpy functions they replace compute
(integer and boolean logic; the one float, readiness, is the same float32
division), so results are bit-identical; ``tests/test_kernels.py`` compares
each kernel with its numpy counterpart (kept as ``*_numpy`` in the modules
that call the kernels). Compiled with numba (``@njit(cache=True)``: compiled
once per machine, kept in numba's cache next to this file or in
``NUMBA_CACHE_DIR``). Arguments are as their callers document: slots and
skills int64, prerequisite and ancestor tables int16 padded with ``NO_SKILL``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_SKILL = -1  # as sim.engine.curriculum.NO_SKILL (padding of the tables)


@njit(cache=True, nogil=True)
def prerequisite_status(mastery, slots, skills, prereqs):
    """Readiness (share of prerequisites truly mastered, 1 if none; float32) and the
    first missing prerequisite (lowest column; -1 if none; int64) per (slot, skill)."""
    k = slots.size
    readiness = np.empty(k, np.float32)
    first = np.full(k, -1, np.int64)
    width = prereqs.shape[1]
    for i in range(k):
        row = slots[i]
        s = skills[i]
        have = 0
        count = 0
        f = -1
        for j in range(width):
            p = prereqs[s, j]
            if p == NO_SKILL:
                continue
            count += 1
            if mastery[row, p] > 0:
                have += 1
            elif f < 0:
                f = p
        first[i] = f
        if count > 0:
            readiness[i] = np.float32(have) / np.float32(count)
        else:
            readiness[i] = np.float32(1.0)
    return readiness, first


@njit(cache=True, nogil=True)
def first_missing_ancestor(bits, slots, ancestors, target, lo):
    """The first (in table order) ancestor of ``target`` at or above ``lo`` that the
    record's ``bits`` (``Record.bits``) lack; ``target`` if none (int64)."""
    k = slots.size
    out = np.empty(k, np.int64)
    width = ancestors.shape[1]
    for i in range(k):
        row = slots[i]
        t = target[i]
        bound = lo[i]
        found = t
        for j in range(width):
            a = ancestors[t, j]
            if a == NO_SKILL or a < bound:
                continue
            if not (bits[row, a >> 3] >> (a & 7)) & 1:
                found = a
                break
        out[i] = found
    return out


@njit(cache=True, nogil=True)
def first_unknown_in(bits, slots, start, length):
    """Per slot, the first skill of ``start .. start + length - 1`` that the record's
    ``bits`` lack; -1 if they show them all (int64)."""
    k = slots.size
    out = np.full(k, -1, np.int64)
    for i in range(k):
        row = slots[i]
        s0 = start[i]
        for j in range(length):
            s = s0 + j
            if not (bits[row, s >> 3] >> (s & 7)) & 1:
                out[i] = s
                break
    return out




# --- the record's bits: skill s of a row is bit (s & 7) of byte (s >> 3) --------------------
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


@njit(cache=True, nogil=True)
def first_clear_bit(bits, rows, start, n_skills):
    """Per row, the first skill >= ``start`` whose bit is clear; ``n_skills`` if none (int64)."""
    k = rows.size
    out = np.empty(k, np.int64)
    for i in range(k):
        row = rows[i]
        found = n_skills
        for s in range(max(start[i], 0), n_skills):
            if not (bits[row, s >> 3] >> (s & 7)) & 1:
                found = s
                break
        out[i] = found
    return out


# --- the diagnostic -------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def diagnostic_read(truth, level_error, misread_u, position, ancestors, lowest, spg,
                    error_years, band, misread):
    """``Diagnostic.read`` row by row: (believed, tested), bool (rows x skills).

    Float32 throughout, as numpy computes it (the scalars arrive as float32:
    numpy compares and combines float32 arrays with Python floats in float32);
    a skill is implied when a skill read as mastered has it among its
    ancestors (the numpy path's 0/1 matrix product, which is exact).
    """
    rows, n = truth.shape
    believed = np.empty((rows, n), np.bool_)
    tested_out = np.empty((rows, n), np.bool_)
    gap = np.empty(n, np.float32)
    tested = np.empty(n, np.bool_)
    read = np.empty(n, np.bool_)
    implied = np.empty(n, np.bool_)
    width = ancestors.shape[1]
    neg_band = -band
    for i in range(rows):
        count = 0
        for s in range(n):
            if truth[i, s]:
                count += 1
        level = lowest + np.float32(count) / spg
        estimate = level + error_years * level_error[i]
        for s in range(n):
            g = position[s] - estimate
            gap[s] = g
            t = abs(g) <= band
            tested[s] = t
            read[s] = t and (truth[i, s] != (misread_u[i, s] < misread))
            implied[s] = False
        for s in range(n):
            if read[s]:
                for j in range(width):
                    a = ancestors[s, j]
                    if a == NO_SKILL:
                        continue
                    implied[a] = True
        for s in range(n):
            believed[i, s] = (gap[s] < neg_band) or read[s] or (
                implied[s] and not (tested[s] and not read[s]))
            tested_out[i, s] = tested[s] or implied[s]
    return believed, tested_out
