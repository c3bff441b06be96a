"""Compiled kernels of the daily cycle's gathers over (students x skills) arrays.

The daily cycle touches, per present student, the day's skill and its
prerequisites (or ancestors): a handful of bytes of a (students x skills)
row. Done with numpy fancy indexing this builds (students x prerequisites)
index and mask temporaries (for ancestors, 165 columns of int64: over a
kilobyte per student) and reads every column even when the answer is in the
first. These kernels walk each student's row directly and stop at the answer,
with no temporaries beyond their outputs.

The daily cycle's kernels compute exactly what the plain-numpy functions they
replace compute (integer and boolean logic; floats in numpy's precisions and
order), so they are bit-identical to them; ``tests/test_kernels.py`` compares
each with its numpy twin: a ``*_numpy`` function next to its caller, or, for the
day's block (``day_block``), ``District._teach_numpy`` composing the steps'
numpy functions. Where a step needs an exponential or a power, both paths use
the same ones (``exp32``, float32, and ``power32_array``, ``portable_math.power64``
rounded to float32: plain arithmetic, the same on every machine), because numpy's
own vectorised exp and power, and the C library's, differ from them, and between
machines, in the last bit. The growth and state
tests (``adaptive_scores``, ``form_scores``) answer and score one row at a time;
their sums run in another order than numpy's matrix products, so they agree with
their numpy path (``assessment.growth_test_numpy``, ``state_test_numpy``) to
float32 rounding, not bit for bit. Compiled with numba (``@njit(cache=True)``:
compiled once per machine, kept in numba's cache next to this file or in
``NUMBA_CACHE_DIR``). Arguments are as their callers document: slots and skills
int64, prerequisite and ancestor tables int16 padded with ``NO_SKILL``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from sim.engine.portable_math import power64

# SHA-256 (first 16 hex digits) of portable_math.py, whose power64 the kernels below inline:
# numba checks a cached kernel against this file's stamp only, so a change there must
# change this line (tests/test_portable_math.py checks it) for the caches to be rebuilt.
PORTABLE_MATH_SOURCE = "d32a4f651ec35116"

NO_SKILL = -1  # as sim.engine.curriculum.NO_SKILL (padding of the tables)
MOVE_ON_NEVER = np.iinfo(np.int16).max  # a move-on limit of int16's maximum: none
NO_PAIR = -2  # capacity_ratio: no (teacher, room) pair seen yet
AHEAD = 16  # students ahead whose rows the day's block asks the memory for (prefetch)
# ROW_INDEX: the hot loops index with rows and skills read from other arrays (``slots[i]``)
# cast to uint64 first: numba tests a signed index for a negative value, and adds the
# length, on every access; an unsigned one it takes as is. About a tenth of the day's
# block. Only for indexing: mixed with int64 in arithmetic, uint64 would turn float64.


@intrinsic
def prefetch(typingctx, array, row, col):
    """Ask the memory for the cache line of ``array[row, col]`` (a 2-D array; int64
    indices) without waiting for it: LLVM's ``prefetch`` (read, high locality).

    The day's block visits each student's (students x skills) rows at a column
    that the hardware prefetcher cannot guess; asking ``AHEAD`` students early
    overlaps those memory waits. It changes no value.
    """
    sig = types.void(array, row, col)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]])
        byte_ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [byte_ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def first_missing_ancestor(bits, slots, ancestors, target, lo):
    """The first (in table order) ancestor of ``target`` at or above ``lo`` that the
    record's ``bits`` (``Record.bits``) lack; ``target`` if none (int64)."""
    masks = _ancestor_masks(ancestors, bits.shape[1])
    k = slots.size
    out = np.empty(k, np.int64)
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        out[i] = _missing_ancestor(bits, slots[i], masks, target[i], lo[i])
    return out


@njit(cache=True, nogil=True)
def _ancestor_masks(ancestors, n_bytes):
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


@njit(cache=True, nogil=True)
def _missing_ancestor(bits, row, masks, t, bound):
    """The lowest ancestor of ``t`` at or above ``bound`` that ``row`` of the record
    lacks, or ``t`` (``masks``: ``_ancestor_masks``). Ancestors are listed in
    increasing order (``Curriculum.ancestors``), so the lowest is the first in the
    table: found a byte of the record at a time."""
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
def _stable_order(keys):
    """``np.argsort(keys, kind="stable")`` (int64): the identity when ``keys`` are already
    in order (students sit in slot order by class, so they usually are)."""
    for i in range(1, keys.size):
        if keys[i] < keys[i - 1]:
            return np.argsort(keys, kind="mergesort")
    return np.arange(keys.size)


@njit(cache=True, nogil=True)
def traditional_day(bits, slots, common, grade, depth_bound, lo, hi, ancestors, teacher,
                    capacity, min_capacity, line, u, share, extension_end, frontier,
                    frontier_bound, stale, advanced, n_skills, max_step, group_size,
                    whole_class, small_group):
    """``TraditionalPacing.assign`` in one compiled pass (same results as its numpy twin
    ``assign_numpy``): per slot, the class skill ``common``, whole class; a student the
    record shows knowing it works, if ``u`` (per student) < ``share`` (float32, as
    numpy compares), on their frontier from it (``frontier_from``, its cache
    updated) capped at ``extension_end[grade]`` and ``hi``, in a small group; in each
    class (``section``: teacher x 1024 + line) whose teacher has at least
    ``min_capacity``, up to ``group_size`` of the students the record shows lacking
    an ancestor of the class skill at or above ``max(lo, depth_bound[grade])``
    (``_missing_ancestor``), the lowest ``u`` first, are retaught the first such
    ancestor in a small group. Returns (skill int64, modality int8)."""
    masks = _ancestor_masks(ancestors, bits.shape[1])
    k = slots.size
    skill = common.copy()
    modality = np.full(k, whole_class, np.int8)
    fix = np.empty(k, np.int64)
    section = np.empty(k, np.int64)
    ext = np.empty(k, np.int64)
    cand = np.empty(k, np.int64)
    n_ext = 0
    n_cand = 0
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        r, s = np.uint64(slots[i]), common[i]  # r: an unsigned index (see ROW_INDEX)
        if (bits[r, s >> 3] >> (s & 7)) & 1:
            if u[r] < share:
                ext[n_ext] = i
                n_ext += 1
            continue
        f = _missing_ancestor(bits, r, masks, s, max(lo[i], depth_bound[grade[r]]))
        t = teacher[r]
        if f != s and capacity[t] >= min_capacity:
            fix[n_cand] = f
            section[n_cand] = t * 1024 + line[r]
            cand[n_cand] = i
            n_cand += 1
    if n_ext:
        e = ext[:n_ext]
        nxt = frontier_from(bits, frontier, frontier_bound, stale, advanced, slots[e],
                            common[e], n_skills, max_step)
        for j in range(n_ext):
            i = e[j]
            skill[i] = min(nxt[j], min(extension_end[grade[slots[i]]], hi[i]))
            modality[i] = small_group
    if group_size > 0 and n_cand:
        group = section[:n_cand]
        priority = np.empty(n_cand, u.dtype)
        for j in range(n_cand):
            priority[j] = u[slots[cand[j]]]
        chosen = lowest_in_runs(group, priority, _stable_order(group), group_size)
        for j in range(n_cand):
            if chosen[j]:
                i = cand[j]
                skill[i] = fix[j]
                modality[i] = small_group
    return skill, modality


@njit(cache=True, nogil=True)
def first_unknown_in(bits, slots, start, length):
    """Per slot, the first skill of ``start .. start + length - 1`` that the record's
    ``bits`` lack; -1 if they show them all (int64)."""
    out = np.empty(slots.size, np.int64)
    for i in range(slots.size):
        out[i] = _first_clear(bits, slots[i], start[i], start[i] + length, -1)
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
    out = np.empty(rows.size, np.int64)
    for i in range(rows.size):
        out[i] = _first_clear(bits, rows[i], max(start[i], 0), n_skills, n_skills)
    return out


@njit(cache=True, nogil=True)
def frontier_from(bits, frontier, frontier_bound, stale, advanced, slots, bound, n_skills,
                  max_step):
    """``Record.frontier_from`` student by student (its cache updated in place; same
    results as ``Record.frontier_from_numpy``): each slot's first believed-unmastered
    skill at or above ``bound`` (``n_skills`` if none), int64.

    A full search runs when the cache is stale or the bound moved; a frontier the
    record has just marked mastered steps forward up to ``max_step`` skills, then
    searches in full (keeping the bound the cache answers for).
    """
    k = slots.size
    out = np.empty(k, np.int64)
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        r = slots[i]
        b = bound[i]
        f = np.int64(frontier[r])
        if stale[r] or b > f or b < frontier_bound[r]:
            f = _first_clear(bits, r, max(b, 0), n_skills, n_skills)
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
                f = _first_clear(bits, r, max(f, 0), n_skills, n_skills)
                stale[r] = False
            frontier[r] = f
        out[i] = f
    return out


@njit(cache=True, nogil=True, inline="always")
def _first_clear(bits, row, lo, hi, missing):
    """The first skill of ``lo .. hi - 1`` whose bit in ``row`` is clear; ``missing`` if none."""
    for s in range(lo, hi):
        if not (bits[row, s >> 3] >> (s & 7)) & 1:
            return s
    return missing


# --- the diagnostic -------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _read_row(truth, i, level_error, misread_u, position, ancestors, lowest, spg, error_years,
              band, misread, gap, tested, read, implied):
    """``diagnostic_read`` of row ``i`` into the scratch arrays (skills): the gap of each
    skill's position from the estimate, tested, read as mastered, implied."""
    n = truth.shape[1]
    width = ancestors.shape[1]
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
    # from the top: a skill already implied has its ancestors marked too (they are
    # ancestors of the skill that implied it), so only the others are walked
    for s in range(n - 1, -1, -1):
        if read[s] and not implied[s]:
            for j in range(width):
                a = ancestors[s, j]
                if a == NO_SKILL:
                    break
                implied[a] = True


@njit(cache=True, nogil=True)
def diagnostic_read(truth, level_error, misread_u, position, ancestors, lowest, spg,
                    error_years, band, misread):
    """``Diagnostic.read`` row by row: (believed, tested), bool (rows x skills).

    Float32 throughout, as numpy computes it (the scalars arrive as float32:
    numpy compares and combines float32 arrays with Python floats in float32);
    a skill is implied when a skill read as mastered has it among its
    ancestors (the numpy path's 0/1 matrix product, which is exact). Ancestor
    lists are transitive, ascending and padded at the end (``Curriculum.ancestors``;
    ids are topological).
    """
    rows, n = truth.shape
    believed = np.empty((rows, n), np.bool_)
    tested_out = np.empty((rows, n), np.bool_)
    gap = np.empty(n, np.float32)
    tested = np.empty(n, np.bool_)
    read = np.empty(n, np.bool_)
    implied = np.empty(n, np.bool_)
    neg_band = -band
    for i in range(rows):
        _read_row(truth, i, level_error, misread_u, position, ancestors, lowest, spg,
                  error_years, band, misread, gap, tested, read, implied)
        for s in range(n):
            believed[i, s] = (gap[s] < neg_band) or read[s] or (
                implied[s] and not (tested[s] and not read[s]))
            tested_out[i, s] = tested[s] or implied[s]
    return believed, tested_out


@njit(cache=True, nogil=True)
def diagnose_into(bits, rows, replace, truth, level_error, misread_u, position, ancestors,
                  lowest, spg, error_years, band, misread):
    """The diagnostic's reading of ``rows`` (``diagnostic_read``) written into the record's
    ``bits`` (``Record._diagnose``): where ``replace`` (per row) the whole reading, else
    only the skills it tested (the rest of the record stands). ``truth`` etc. are the
    rows', in order."""
    n = truth.shape[1]
    gap = np.empty(n, np.float32)
    tested = np.empty(n, np.bool_)
    read = np.empty(n, np.bool_)
    implied = np.empty(n, np.bool_)
    neg_band = -band
    n_bytes = bits.shape[1]
    packed = np.empty(n_bytes, np.uint8)
    for i in range(rows.size):
        _read_row(truth, i, level_error, misread_u, position, ancestors, lowest, spg,
                  error_years, band, misread, gap, tested, read, implied)
        r = rows[i]
        rep = replace[i]
        packed[:] = 0
        for s in range(n):
            byte, bit = s >> 3, s & 7
            if rep or tested[s] or implied[s]:
                b = (gap[s] < neg_band) or read[s] or (
                    implied[s] and not (tested[s] and not read[s]))
            else:
                b = (bits[r, byte] >> bit) & 1
            if b:
                packed[byte] |= np.uint8(1 << bit)
        for byte in range(n_bytes):
            bits[r, byte] = packed[byte]


# --- uniforms from a generator's raw 64-bit words ---------------------------------------------
@njit(cache=True, nogil=True)
def float32_from_raw(raw, out):
    """The float32 uniforms numpy's ``Generator.random(dtype=np.float32)`` makes from a
    PCG64 generator's 64-bit outputs ``raw`` (uint64, at least ``(out.size + 1) //
    2``), written into ``out`` (1-D float32): each output gives two 32-bit words, its
    low half first, and each word ``w`` the float ``(w >> 8) x 2^-24`` (exact: an
    integer below 2^24 times a power of two). ``random_streams.uniform32`` checks
    numpy still does this."""
    n = out.size
    scale = np.float32(1.0 / 16777216.0)
    low = np.uint64(0xFFFFFFFF)
    for i in range(n // 2):  # int32 conversions: exact below 2^24, and they vectorise
        w = raw[i]
        out[2 * i] = np.float32(np.int32((w & low) >> np.uint64(8))) * scale
        out[2 * i + 1] = np.float32(np.int32(w >> np.uint64(40))) * scale
    if n & 1:
        out[n - 1] = np.float32(np.int32((raw[n // 2] & low) >> np.uint64(8))) * scale
    return out


# --- float32 exponential and power, the same on every machine --------------------------------
@intrinsic
def float_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bits are the int32 ``bits`` (a bitcast, no conversion)."""
    if bits != types.int32:
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


EXP_LOW, EXP_HIGH = -87.0, 88.0  # exp32's arguments are clipped to this range


@njit(cache=True, nogil=True, inline="always")
def exp32(x):
    """``e ** x`` in float32, ``x`` clipped to [``EXP_LOW``, ``EXP_HIGH``]: Cephes' expf
    (Cody-Waite reduction by ln 2 in two parts, a degree-5 polynomial on
    [-ln 2 / 2, ln 2 / 2], the power of two built from its bits). Within 2 ulp of
    the correctly rounded value; plain arithmetic, the same on every machine, and
    a loop of it vectorises (a libm call does not)."""
    lo, hi = np.float32(EXP_LOW), np.float32(EXP_HIGH)
    x = lo if x < lo else (hi if x > hi else x)
    n = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
    r = x - n * np.float32(0.693359375)
    r = r - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    y = p * r * r + r + np.float32(1.0)
    # 2 ** n from its bits, (n + 127) << 23, computed in float32 (exact: a small integer
    # times a power of two) so the conversion stays 32-bit wide when vectorised
    return y * float_from_bits(np.int32((n + np.float32(127.0)) * np.float32(8388608.0)))


@njit(cache=True, nogil=True)
def exp32_array(x):
    """``exp32`` of every element of a 1-D float32 array (a new array)."""
    out = np.empty(x.size, np.float32)
    for i in range(x.size):
        out[i] = exp32(x[i])
    return out


@njit(cache=True, nogil=True)
def power32_array(x, exponent):
    """``x ** exponent`` of every element of a 1-D array of non-negative values, in float32
    (``portable_math.power64`` rounded, as ``day_block`` raises the felt change: the same
    on every machine, unlike numpy's or the C library's power). A new array."""
    out = np.empty(x.size, np.float32)
    for i in range(x.size):
        out[i] = np.float32(power64(x[i], exponent))
    return out


# --- the day's block ------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _readiness(mastery, row, skill, prereqs):
    """For one (row, skill): the share of the skill's prerequisites truly mastered (1 if
    none; float32), its first missing prerequisite (lowest column; -1 if none) and
    that prerequisite's own share (float32; 1 if none)."""
    width = prereqs.shape[1]
    one = np.float32(1.0)
    readiness, first, pre_ready = one, -1, one
    target = skill
    for depth in range(2):  # the skill, then its first missing prerequisite
        have = 0
        count = 0
        f = -1
        for j in range(width):
            p = prereqs[target, j]
            if p == NO_SKILL:
                continue
            count += 1
            if mastery[row, p] > 0:
                have += 1
            elif f < 0:
                f = p
        ready = np.float32(have) / np.float32(count) if count > 0 else one
        if depth == 1:
            pre_ready = ready
            break
        readiness, first = ready, f
        if f < 0:
            break
        target = f
    return readiness, first, pre_ready


@njit(cache=True, nogil=True)
def block_reads(mastery, slots, skills, prereqs):
    """Readiness before learning (``learning.prerequisite_status``; ``day_block`` reads
    the same inside its pass): per (slot, skill), the readiness (share of
    prerequisites truly mastered, 1 if none; float32), the first missing
    prerequisite (lowest column; -1 if none; int64) and that prerequisite's own
    readiness (float32; 1 if none)."""
    k = slots.size
    readiness = np.empty(k, np.float32)
    first = np.full(k, -1, np.int64)
    pre_ready = np.ones(k, np.float32)
    for i in range(k):
        if i + AHEAD < k:
            ahead = skills[i + AHEAD]
            prefetch(mastery, slots[i + AHEAD], max(prereqs[ahead, 0], 0))
        readiness[i], first[i], pre_ready[i] = _readiness(mastery, slots[i], skills[i],
                                                          prereqs)
    return readiness, first, pre_ready


@njit(cache=True, nogil=True)
def learn_apply(mastery, familiarity, slots, skills, p_master, u_learn, back_slots,
                back_skills, mastered_code, familiarity_max):
    """Mastery gains of one day (``learning.learn``'s writes), then a day of familiarity.

    Returns (already, gained): bool per slot. ``back_slots``/``back_skills``: the
    prerequisites learnt in context (marked first, as the numpy path does).
    """
    k = slots.size
    already = np.empty(k, np.bool_)
    gained = np.empty(k, np.bool_)
    for i in range(k):
        a = mastery[slots[i], skills[i]] > 0
        already[i] = a
        gained[i] = (not a) and (u_learn[i] < p_master[i])
    for i in range(back_slots.size):
        mastery[back_slots[i], back_skills[i]] = mastered_code
    top = familiarity_max - 1
    for i in range(k):
        r, s = slots[i], skills[i]
        if gained[i]:
            mastery[r, s] = mastered_code
        f = familiarity[r, s]
        familiarity[r, s] = (f if f < top else top) + 1
    return already, gained


# The day's block, fused. Run array by array (learning, exit slips, record,
# tracks, affect, log), each step walked 100,000 students' rows again, long
# after the last step had pushed them out of the caches; here every step of
# one student runs before the next student's, and the rows of the student
# ``AHEAD`` places on are asked of the memory early. Students' rows are
# independent, so only the order of steps within a student matters, and that
# is kept (in numpy: ``District._teach_numpy``). The bodies are written out in
# the loop: a compiled helper taking arrays costs reference counting on every
# call, about ten times the work of a step here.
@njit(cache=True, nogil=True)
def day_block(mastery, familiarity, slots, skills, rate, readiness_floor, readiness_rest,
              backfill_rate,
              u_learn, u_backfill, mastered_code, familiarity_max, u_exit, pass_mastered,
              pass_guess, bits, run, streak_skill, days_on, frontier, advanced, stale,
              prereqs, mastery_streak, fail_limit, move_on, use_move_on,
              skill_grade, grade, positions,
              level, below_track, position_track, other_days, first_other, alpha,
              persist_days, min_jump, change_exponent,
              engagement, engagement_base, anxiety, anxiety_base,
              recovery, boredom, frustration, switch_engagement, min_engagement,
              switch_anxiety, unfamiliar_anxiety,
              days_present, days_grade_level, days_mastered, lowest_offset, switches,
              engagement_sum):
    """The day's block, slot by slot (per student: ``u_*``, ``move_on`` and the state
    arrays; per slot: ``skills`` and ``rate``, the daily hazard):

    0. readiness: the share of the skill's prerequisites truly mastered (1 if
       none), its first missing prerequisite and that one's own readiness
       (``learning.prerequisite_status_numpy``);
    1. learning (``learning.learn_numpy``): the skill is gained if not already
       mastered and ``u_learn`` < ``p_master`` = 1 - exp(-rate x (floor + rest x
       readiness)) (``learning.p_master``: float32, ``exp32``; ``readiness_rest`` is
       1 - floor rounded from float64, as numpy rounds it); the first
       missing prerequisite likewise at ``backfill_rate`` x rate and its own
       readiness (``u_backfill``); a day of familiarity;
    2. the exit slip: passed if ``u_exit`` < ``pass_mastered`` (mastered) or
       ``pass_guess`` (not), compared in float64 as numpy does;
    3. the record (``Record.exit_slips``): streaks, marks, send-backs;
    4. the content's offset from grade and the tracks (``Tracks.update``);
    5. affect (``affect.update_affect``), on the felt change (the working level's
       change to the power ``change_exponent``, float32: ``power32_array``'s power);
    6. the year log (``YearLog.record_day``), with the engagement just updated.

    Precisions are numpy's: float32 where numpy combines float32 arrays with
    Python floats (``readiness_floor``, ``backfill_rate``, ``alpha``, ``min_jump``,
    ``recovery``, ``frustration``, ``switch_*`` arrive as float32), float64 where a
    Python float meets a boolean array (``boredom``, ``unfamiliar_anxiety``, the
    clip bounds).

    Returns whether each slot passed its exit slip.
    """
    k = slots.size
    passed_out = np.empty(k, np.bool_)
    top = familiarity_max - 1
    width = prereqs.shape[1]
    one = np.float32(1.0)
    for i in range(k):
        if i + AHEAD < k:
            ahead_row, ahead_skill = slots[i + AHEAD], skills[i + AHEAD]
            prefetch(mastery, ahead_row, max(prereqs[ahead_skill, 0], 0))
            prefetch(mastery, ahead_row, ahead_skill)
            prefetch(familiarity, ahead_row, ahead_skill)
            prefetch(bits, ahead_row, ahead_skill >> 3)
        r, s = np.uint64(slots[i]), skills[i]  # r, su: unsigned indices (see ROW_INDEX)
        su = np.uint64(s)
        # 0. readiness: the skill, then its first missing prerequisite
        readiness, first, pre_ready = _readiness(mastery, r, s, prereqs)
        # 1. learning
        a = mastery[r, su] > 0
        x = rate[i]
        p_master = one - exp32(-x * (readiness_floor + readiness_rest * readiness))
        gained = (not a) and (u_learn[r] < p_master)
        if first >= 0:
            xb = x * backfill_rate
            if u_backfill[r] < one - exp32(-xb * (readiness_floor + readiness_rest * pre_ready)):
                mastery[r, first] = mastered_code
        if gained:
            mastery[r, su] = mastered_code
        f = familiarity[r, su]
        familiarity[r, su] = (f if f < top else top) + 1
        # 2. the exit slip
        passed = np.float64(u_exit[r]) < (pass_mastered if (a or gained) else pass_guess)
        passed_out[i] = passed
        # 3. the record
        same = streak_skill[r] == s
        prev = run[r] if same else 0
        streak_skill[r] = s
        x_run = max(prev, 0) + 1 if passed else min(prev, 0) - 1
        mastered = x_run >= mastery_streak
        send_back = x_run <= -fail_limit
        if use_move_on:
            days = days_on[r] + 1 if same else 1
            mastered = mastered or days >= move_on[r]
            if move_on[r] < MOVE_ON_NEVER:
                send_back = False
            days_on[r] = 0 if mastered else days
        if mastered:
            bits[r, su >> np.uint64(3)] |= np.uint8(1 << (s & 7))
            if s == frontier[r]:
                advanced[r] = True
        if send_back:
            for j in range(width):
                p = prereqs[s, j]
                if p != NO_SKILL:
                    bits[r, p >> 3] &= np.uint8(~(1 << (p & 7)) & 0xFF)
            stale[r] = True
        run[r] = 0 if (mastered or send_back) else x_run
        # 4. offset and tracks
        offset = np.int16(skill_grade[su] - grade[r])
        below = offset < 0
        pos = positions[su]
        old = level[r]
        if np.isnan(old):
            new = pos
            change = np.float32(0.0)
        else:
            new = old + alpha * (pos - old)
            change = abs(new - old)
        level[r] = new
        track = below_track[r]
        fresh = track < 0
        off = (not fresh) and (below != (track == 1))
        days_off = other_days[r] + 1 if off else 0
        first_pos = pos if (off and days_off == 1) else first_other[r]
        jump = abs(first_pos - position_track[r])
        moved = off and days_off >= persist_days
        switched = moved and jump >= min_jump
        if fresh or moved or not off:
            below_track[r] = 1 if below else 0
            position_track[r] = pos
        other_days[r] = 0 if moved else days_off
        first_other[r] = first_pos
        felt = change if change_exponent == 1.0 else np.float32(power64(change,
                                                                         change_exponent))
        # 5. affect
        e = engagement[r]
        e32 = e + recovery * (engagement_base[r] - e)
        y = (np.float64(e32) - (boredom if a else 0.0)
             - np.float64(frustration * (one - readiness))
             - np.float64(switch_engagement * felt))
        e_new = np.float32(min(max(y, min_engagement), 1.0))
        engagement[r] = e_new
        an = anxiety[r]
        a32 = an + recovery * (anxiety_base[r] - an) + switch_anxiety * felt
        z = np.float64(a32) + (unfamiliar_anxiety if (offset >= 0 and readiness < one)
                               else 0.0)
        anxiety[r] = np.float32(min(max(z, 0.0), 1.0))
        # 6. the year log
        days_present[r] += 1
        if offset == 0:
            days_grade_level[r] += 1
        if a:
            days_mastered[r] += 1
        if offset < lowest_offset[r]:
            lowest_offset[r] = offset
        if switched:
            switches[r] += 1
        engagement_sum[r] += np.float64(e_new)
    return passed_out


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


# --- supervision ---------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def supervise(slots, u, teacher, room, room_first, room_size):
    """``District._supervise`` per present slot (int64): the student's own teacher, or in
    a room the team member ``room_first + min(int(u x size), size - 1)`` (``u``: per
    student; the product in float64, as numpy multiplies float32 by int64)."""
    k = slots.size
    out = np.empty(k, np.int64)
    for i in range(k):
        r = slots[i]
        rm = room[r]
        if rm >= 0:
            size = room_size[rm]
            out[i] = room_first[rm] + min(np.int64(np.float64(u[r]) * np.float64(size)),
                                          size - 1)
        else:
            out[i] = teacher[r]
    return out


# --- assignment -------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def drift_to_common(skills, slots, teacher, common, drift, u):
    """``District._drift``: where ``u`` (per student) < the supervising teacher's
    ``drift`` (float64, as numpy compares float32 with float64), the slot's skill
    becomes the common pace's. A new array."""
    out = skills.copy()
    for i in range(slots.size):
        if np.float64(u[slots[i]]) < drift[teacher[i]]:
            out[i] = common[i]
    return out


@njit(cache=True, nogil=True)
def count_off_pace(days_off_pace, slots, skills, common):
    """``days_off_pace[slots] += skills != common`` (the year log's days off the class's
    pace), in place."""
    for i in range(slots.size):
        if skills[i] != common[i]:
            days_off_pace[slots[i]] += 1


# --- the learning rate ----------------------------------------------------------------------
@njit(cache=True, nogil=True)
def capacity_ratio(teacher, unit, room, capacity, pace_marks, room_marks, room_capacity,
                   room_trust, pooling):
    """Capacity over distinct paces, before the elasticity (float64), as
    ``District._capacity_factor`` computes it: a teacher's paces are the distinct units
    of their students today (``pace_marks``, cleared and refilled); in rooms, with
    ``pooling`` > 0, the team's pooled ratio (``teachers.pooled_ratio``) against the
    room's distinct units (``room_marks``).

    The ratio is a function of the (supervising teacher, room) pair, a few thousand
    a day against 100,000 students, so it is returned once per pair: ``(values,
    key)``, ``values[key[i]]`` being student ``i``'s ratio (``key`` int32). The caller
    raises only ``values`` to the elasticity (the same power of the same float64
    values as raising every student's). Each teacher's last pair seen is kept (a
    teacher seen in several rooms gets one entry per change, so duplicates are
    possible and harmless)."""
    k = teacher.size
    pace_marks[:] = False
    paces = np.zeros(pace_marks.shape[0], np.int64)
    any_room = False
    for i in range(k):
        t, u = teacher[i], unit[i]
        if not pace_marks[t, u]:
            pace_marks[t, u] = True
            paces[t] += 1
        if room[i] >= 0:
            any_room = True
    pooled = pooling > 0 and any_room
    room_paces = np.zeros(room_marks.shape[0], np.int64)
    if pooled:
        room_marks[:] = False
        for i in range(k):
            r = room[i]
            if r >= 0 and not room_marks[r, unit[i]]:
                room_marks[r, unit[i]] = True
                room_paces[r] += 1
    last_room = np.full(paces.size, NO_PAIR, np.int64)  # per teacher: the last pair's
    last_key = np.empty(paces.size, np.int32)             # room (-1: none) and its key
    values = np.empty(k, np.float64)
    key = np.empty(k, np.int32)
    n = 0
    for i in range(k):
        t = teacher[i]
        r = room[i] if pooled and room[i] >= 0 else -1
        if last_room[t] != r:
            ratio = min(1.0, capacity[t] / max(paces[t], 1))
            if r >= 0:
                w = pooling * room_trust[r]
                team = min(1.0, room_capacity[r] / max(room_paces[r], 1))
                ratio = (1.0 - w) * min(1.0, ratio) + w * team
            values[n] = ratio
            last_room[t], last_key[t] = r, n
            n += 1
        key[i] = last_key[t]
    return values[:n].copy(), key  # a copy: the k-long scratch is freed


@njit(cache=True, nogil=True)
def learning_rate(slots, skills, modality, teacher, room, own_teacher, capacity_factor,
                  capacity_key, base_rate, ease, student_rate, engagement, modality_factor,
                  weight_unled, effect, typical_sd, trust, handoff_loss, led_a, led_b):
    """``District._learning_rate``'s product per present student, in float64 in numpy's
    order, rounded to float32 (per day): base rate x ease x the student's rate x
    engagement x modality x teacher multiplier x continuity x capacity factor
    (``capacity_factor[capacity_key[i]]``: ``capacity_ratio``'s values to the
    elasticity)."""
    k = slots.size
    out = np.empty(k, np.float32)
    for i in range(k):
        r, t, m = slots[i], teacher[i], modality[i]
        weight = 1.0 if (m == led_a) | (m == led_b) else weight_unled
        mult = max(0.1, 1.0 + weight * effect[t] / typical_sd)
        own = own_teacher[i]
        if room[i] >= 0 and t != own:
            continuity = 1.0 - handoff_loss * (1.0 - 0.5 * (trust[t] + trust[own]))
        else:
            continuity = 1.0
        x = (base_rate * ease[skills[i]] * np.float64(student_rate[r])
             * np.float64(engagement[r]) * np.float64(modality_factor[m]) * mult * continuity
             * capacity_factor[capacity_key[i]])
        out[i] = np.float32(x)
    return out


# --- the response model's knowledge ---------------------------------------------------------
@njit(cache=True, nogil=True)
def knowledge_in_place(below, mastered, fam_days, own, rest, familiarity_weight,
                       saturation_days):
    """``assessment._knowledge_of`` element by element, written over ``below`` (the
    matrix product of mastery with the ancestor weights, float32 rows x skills):
    ``min(own x m + rest x below + familiarity_weight x fam x (1 - m), 1)`` with
    ``fam = min(days / saturation_days, 1)``; float32, in numpy's order (``rest`` is
    ``1 - own`` computed in float64 and rounded, as numpy does)."""
    one = np.float32(1.0)
    rows, n = below.shape
    for i in range(rows):
        for j in range(n):
            m = one if mastered[i, j] else np.float32(0.0)
            fam = min(np.float32(fam_days[i, j]) / saturation_days, one)
            k = (own * m + rest * below[i, j]) + (familiarity_weight * fam) * (one - m)
            below[i, j] = min(k, one)
    return below


@njit(cache=True, nogil=True)
def take_along_rows(matrix, cols):
    """``np.take_along_axis(matrix, cols, axis=1)`` for 2-D ``matrix`` and ``cols``
    (int64): ``out[i, j] = matrix[i, cols[i, j]]``."""
    rows, k = cols.shape
    out = np.empty((rows, k), matrix.dtype)
    for i in range(rows):
        for j in range(k):
            out[i, j] = matrix[i, cols[i, j]]
    return out


# --- EAP scoring ----------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def add_answer_loglik(ll, right, items, log_odds, log_q):
    """``ll += right @ log_odds[items] + log_q[items].sum(axis=0)`` row by row (float32,
    written into ``ll``, rows x Q): the log-likelihood of each row's answers
    ``right`` (0/1, rows x k) to its items ``items`` (ids, rows x k) at each node.

    In the order numpy and a BLAS that sums item by item add (as
    ``assessment._add_block_loglik`` computes it, block by block; OpenBLAS's order
    depends on the CPU, so on some machines the two agree to float32 rounding only):
    the right answers' log-odds summed item by item from zero (a
    0/1 weight makes each of BLAS's multiply-adds an exact add or nothing), the
    items' ``log_q`` summed item by item from the first (numpy's reduction over
    the outer axis), the two added, then added to ``ll``.
    """
    rows, k = right.shape
    q = ll.shape[1]
    acc = np.empty(q, np.float32)
    base = np.empty(q, np.float32)
    for r in range(rows):
        acc[:] = 0.0
        for j in range(k):
            item = items[r, j]
            if right[r, j] != 0:
                for c in range(q):
                    acc[c] += log_odds[item, c]
            if j == 0:
                for c in range(q):
                    base[c] = log_q[item, c]
            else:
                for c in range(q):
                    base[c] += log_q[item, c]
        for c in range(q):
            ll[r, c] += acc[c] + base[c]
    return ll


@njit(cache=True, nogil=True)
def eap_log_posterior(loglik, grid, prior_mean, prior_sd):
    """``loglik - 0.5 z z`` with ``z = (grid - mean) / sd`` per row (a new float32
    rows x Q array; float32 in numpy's order)."""
    rows, q = loglik.shape
    out = np.empty((rows, q), np.float32)
    half = np.float32(0.5)
    for i in range(rows):
        mu, sd = prior_mean[i], prior_sd[i]
        for j in range(q):
            z = (grid[j] - mu) / sd
            out[i, j] = loglik[i, j] - half * z * z
    return out


@njit(cache=True, nogil=True)
def times_squared_deviation(post, grid, mean):
    """``post * dev * dev`` with ``dev = grid - mean`` per row, written over ``post``
    (float32, in numpy's order); returns ``post``."""
    rows, q = post.shape
    for i in range(rows):
        m = mean[i]
        for j in range(q):
            d = grid[j] - m
            post[i, j] = post[i, j] * d * d
    return post


# --- the tests, answered and scored row by row ------------------------------------------------
@njit(cache=True, nogil=True)
def eap_rows(ll, grid, prior_mean, prior_sd):
    """``_eap_row`` of every row of ``ll`` (rows x Q float32; for tests): float32
    estimates and posterior SDs."""
    rows = ll.shape[0]
    mean, sd = np.empty(rows, np.float32), np.empty(rows, np.float32)
    post = np.empty(grid.size, np.float32)
    term = np.empty(grid.size, np.float32)
    for i in range(rows):
        _prior_term(grid, np.float32(prior_mean[i]), np.float32(prior_sd[i]), term)
        mean[i], sd[i] = _eap_row(ll[i], grid, term, post)
    return mean, sd


@njit(cache=True, nogil=True, inline="always")
def _prior_term(grid, mu, sd, out):
    """``z^2 / 2`` at each node of the ``grid`` (Q) for a normal prior (``mu``, ``sd``;
    float32, ``z = (node - mu) / sd``), written into ``out``: the prior's part of the
    log posterior, the same at every stage of a row's test (computed once a row)."""
    half = np.float32(0.5)
    for j in range(grid.size):  # elementwise: vectorises
        z = (grid[j] - mu) / sd
        out[j] = half * z * z
    return out


@njit(cache=True, nogil=True, inline="always")
def _eap_row(ll, grid, prior_term, post):
    """EAP estimate and posterior SD (grade-years, float32) of one row's log-likelihood
    ``ll`` on the ``grid`` (Q) under a normal prior (its ``_prior_term``), as
    ``assessment.eap_numpy`` defines them: ``post = exp(ll - z^2 / 2 - max)``,
    mean and variance under it. ``post`` is scratch (Q).

    The mean and variance come from one pass of sums of the nodes' deviations from
    the posterior's mode (the node of the max), so the variance's subtraction loses
    nothing that matters (the mean is within about a posterior SD of the mode).
    Sums run in four interleaved float32 partial sums added in a fixed order: the
    same on every machine.
    """
    q = grid.size
    for j in range(q):  # the log posterior, elementwise (vectorises)
        post[j] = ll[j] - prior_term[j]
    m0 = m1 = m2 = m3 = np.float32(-np.inf)
    i0 = i1 = i2 = i3 = 0
    j = 0
    while j + 4 <= q:  # its maximum, in four interleaved runs
        v0, v1, v2, v3 = post[j], post[j + 1], post[j + 2], post[j + 3]
        if v0 > m0:
            m0, i0 = v0, j
        if v1 > m1:
            m1, i1 = v1, j + 1
        if v2 > m2:
            m2, i2 = v2, j + 2
        if v3 > m3:
            m3, i3 = v3, j + 3
        j += 4
    while j < q:
        v0 = post[j]
        if v0 > m0:
            m0, i0 = v0, j
        j += 1
    if m1 > m0:
        m0, i0 = m1, i1
    if m3 > m2:
        m2, i2 = m3, i3
    if m2 > m0:
        m0, i0 = m2, i2
    top, centre = m0, grid[i0]
    for j in range(q):
        post[j] = exp32(post[j] - top)
    t0 = t1 = t2 = t3 = np.float32(0.0)
    w0 = w1 = w2 = w3 = np.float32(0.0)
    s0 = s1 = s2 = s3 = np.float32(0.0)
    j = 0
    while j + 4 <= q:
        e0, e1, e2, e3 = post[j], post[j + 1], post[j + 2], post[j + 3]
        d0, d1 = grid[j] - centre, grid[j + 1] - centre
        d2, d3 = grid[j + 2] - centre, grid[j + 3] - centre
        t0, t1, t2, t3 = t0 + e0, t1 + e1, t2 + e2, t3 + e3
        e0, e1, e2, e3 = e0 * d0, e1 * d1, e2 * d2, e3 * d3
        w0, w1, w2, w3 = w0 + e0, w1 + e1, w2 + e2, w3 + e3
        s0, s1, s2, s3 = s0 + e0 * d0, s1 + e1 * d1, s2 + e2 * d2, s3 + e3 * d3
        j += 4
    while j < q:
        e0, d0 = post[j], grid[j] - centre
        t0 += e0
        e0 *= d0
        w0 += e0
        s0 += e0 * d0
        j += 1
    total = (t0 + t1) + (t2 + t3)
    shift = ((w0 + w1) + (w2 + w3)) / total
    var = ((s0 + s1) + (s2 + s3)) / total - shift * shift
    return centre + shift, np.sqrt(max(var, np.float32(0.0)))


@njit(cache=True, nogil=True, inline="always")
def _answer_block(ll, knowledge, fam_days, i, items, blk, skill, u, u0, difficulty, log_odds,
                  anxious_guess, guess, logits, threshold, k_buf, d_buf, c_buf):
    """Row ``i``'s answers to the items of row ``blk`` of ``items`` (ids; ``skill``: the
    column of each id in ``knowledge`` and ``fam_days``), right when ``u[i, u0 + j]``
    < P(right) (``assessment.p_right``, in float32 with ``exp32``; ``anxious_guess``
    is the lower asymptote on an unseen skill): the right items' ``log_odds``
    (rows: ids) added to ``ll``, the wrong ones' skipped (what numpy's 0/1-weighted
    product adds). The items' inputs are gathered first, so the probabilities' loop
    vectorises."""
    one = np.float32(1.0)
    n = items.shape[1]
    for j in range(n):
        item = items[blk, j]
        col = skill[item]
        k_buf[j] = knowledge[i, col]
        d_buf[j] = difficulty[item]
        c_buf[j] = anxious_guess if fam_days[i, col] == 0 else guess
    for j in range(n):
        c = c_buf[j]
        k_buf[j] = c + (one - c) / (one + exp32(-(logits * (k_buf[j] - threshold) - d_buf[j])))
    q = ll.size
    for j in range(n):
        if u[i, u0 + j] < k_buf[j]:  # right: its log-odds added (a wrong answer adds 0)
            item = items[blk, j]
            for c in range(q):
                ll[c] += log_odds[item, c]


@njit(cache=True, nogil=True)
def adaptive_scores(knowledge, fam_days, anxiety, u, prior_mean, prior_sd, skill, difficulty,
                    log_odds, grid, stage_b, b_offset, span, last, blocks, block_q,
                    block_offset, lookup, lookup_offset, lookup_x0, lookup_step, guess,
                    penalty, logits, threshold):
    """The multistage adaptive test (``assessment.adaptive_eap`` with
    ``assessment._Takers``' answers), answered and scored one row at a time.

    Per row (``knowledge`` float32 and ``fam_days`` uint8, rows x skills; ``anxiety``;
    ``u``, rows x stages*k uniforms; ``prior_mean``, ``prior_sd`` in grade-years) and
    stage ``s``: the block starting at ``searchsorted(b of the stage, target) -
    span[s] // 2`` clipped to [0, ``last[s]``] (``assessment._stage_blocks``), its ``k``
    items answered (``_answer_block``), the block's summed log P(wrong) added
    (``block_q``), and the EAP (``_eap_row``) the next stage's target. The tables are
    ``assessment.adaptive_tables``': ``stage_b`` holds each stage's ``b`` sorted, from
    ``b_offset[s]``; ``blocks`` and ``block_q`` each stage's blocks (item ids, k) and
    their log P(wrong) (Q), from ``block_offset[s]``; ``lookup`` the searchsorted
    table of each stage, from ``lookup_offset[s]``, on targets ``lookup_x0[s] + m *
    lookup_step``.

    Returns the last stage's EAP estimates and posterior SDs (float32, grade-years).
    """
    rows = knowledge.shape[0]
    stages, k = span.size, blocks.shape[1]
    q = grid.size
    theta = np.empty(rows, np.float32)
    sem = np.empty(rows, np.float32)
    ll = np.empty(q, np.float32)
    post = np.empty(q, np.float32)
    term = np.empty(q, np.float32)
    k_buf, d_buf, c_buf = (np.empty(k, np.float32), np.empty(k, np.float32),
                           np.empty(k, np.float32))
    one = np.float32(1.0)
    for i in range(rows):
        ll[:] = 0.0
        target = prior_mean[i]
        mu, sd = np.float32(prior_mean[i]), np.float32(prior_sd[i])
        _prior_term(grid, mu, sd, term)  # the same prior at every stage
        est, err = mu, sd
        anxious_guess = guess * (one - penalty * anxiety[i])
        for s in range(stages):
            lo, n = b_offset[s], b_offset[s + 1] - b_offset[s]
            # np.searchsorted(stage_b[lo:lo + n], target): from the table, stepped on
            l0, size = lookup_offset[s], lookup_offset[s + 1] - lookup_offset[s]
            if target != target:  # NaN sorts last (as searchsorted puts it)
                at = n
            else:
                m = int(np.floor((target - lookup_x0[s]) / lookup_step)) - 1
                at = lookup[l0 + min(max(m, 0), size - 1)]
                while at < n and stage_b[lo + at] < target:
                    at += 1
            start = min(max(at - span[s] // 2, 0), last[s])
            blk = block_offset[s] + start
            _answer_block(ll, knowledge, fam_days, i, blocks, blk, skill, u, s * k,
                          difficulty, log_odds, anxious_guess, guess, logits, threshold,
                          k_buf, d_buf, c_buf)
            for c in range(q):
                ll[c] += block_q[blk, c]
            est, err = _eap_row(ll, grid, term, post)
            target = np.float64(est)
        theta[i] = est
        sem[i] = err
    return theta, sem


@njit(cache=True, nogil=True)
def form_scores(knowledge, fam_days, anxiety, u, prior_mean, prior_sd, cols, difficulty,
                log_odds, form_q, grid, guess, penalty, logits, threshold):
    """A fixed form answered and scored one row at a time (``assessment.state_test``'s
    answers and ``form_eap``): item ``j`` is on column ``cols[j]`` of ``knowledge`` and
    ``fam_days`` (rows x the form's skills), answered as ``_answer_block`` does with
    ``log_odds`` (items x Q) in form order; the log-likelihood starts from ``form_q``
    (the form's summed log P(wrong), Q); then ``_eap_row`` under each row's prior.
    Returns EAP estimates and posterior SDs (float32, grade-years)."""
    rows, n_items = u.shape[0], cols.size
    q = grid.size
    theta = np.empty(rows, np.float32)
    sem = np.empty(rows, np.float32)
    ll = np.empty(q, np.float32)
    post = np.empty(q, np.float32)
    term = np.empty(q, np.float32)
    items = np.arange(n_items).reshape(1, n_items)  # the form's order: rows of ``log_odds``
    k_buf, d_buf, c_buf = (np.empty(n_items, np.float32), np.empty(n_items, np.float32),
                           np.empty(n_items, np.float32))
    one = np.float32(1.0)
    for i in range(rows):
        ll[:] = form_q
        _answer_block(ll, knowledge, fam_days, i, items, 0, cols, u, 0, difficulty, log_odds,
                      guess * (one - penalty * anxiety[i]), guess, logits, threshold, k_buf,
                      d_buf, c_buf)
        _prior_term(grid, np.float32(prior_mean[i]), np.float32(prior_sd[i]), term)
        theta[i], sem[i] = _eap_row(ll, grid, term, post)
    return theta, sem
