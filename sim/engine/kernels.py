"""Compiled kernels of the daily cycle's gathers over (students x skills) arrays.

The daily cycle touches, per present student, the day's skill and its
prerequisites (or ancestors): a handful of bytes of a (students x skills)
row. Done with numpy fancy indexing this builds (students x prerequisites)
index and mask temporaries (for ancestors, 165 columns of int64: over a
kilobyte per student) and reads every column even when the answer is in the
first. These kernels walk each student's row directly and stop at the answer,
with no temporaries beyond their outputs.

They compute exactly what the plain-numpy functions they replace compute
(integer and boolean logic; floats in numpy's precisions and order), so results
are bit-identical; ``tests/test_kernels.py`` compares each kernel with its numpy
twin: a ``*_numpy`` function next to its caller, or, for the day's block
(``block_reads``, ``block_writes``), ``District._teach_numpy`` composing the
steps' numpy functions. Compiled with numba (``@njit(cache=True)``: compiled
once per machine, kept in numba's cache next to this file or in
``NUMBA_CACHE_DIR``). Arguments are as their callers document: slots and
skills int64, prerequisite and ancestor tables int16 padded with ``NO_SKILL``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

NO_SKILL = -1  # as sim.engine.curriculum.NO_SKILL (padding of the tables)
MOVE_ON_NEVER = np.iinfo(np.int16).max  # a move-on limit of int16's maximum: none
AHEAD = 16  # students ahead whose rows the day's block asks the memory for (prefetch)


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
def reteach_candidates(bits, slots, skill, grade, depth_bound, lo, ancestors, teacher,
                       capacity, min_capacity, line):
    """Traditional pacing's reads of the record for the day's class skill ``skill``
    (per slot): whether the record shows it (``knows``), and for the students it does
    not whom a reteach group could take, the first missing ancestor at or above
    ``max(lo, depth_bound[grade])`` (``fix``; -1 for everyone else: the skill known,
    no such gap, or a teacher below ``min_capacity``) with their class's key
    (``section``: teacher x 1024 + line). ``grade``, ``teacher``, ``line``: per
    student; ``capacity``: per teacher. Returns (knows, fix, section)."""
    masks = _ancestor_masks(ancestors, bits.shape[1])
    k = slots.size
    knows = np.empty(k, np.bool_)
    fix = np.full(k, -1, np.int64)
    section = np.zeros(k, np.int64)
    for i in range(k):
        if i + AHEAD < k:
            prefetch(bits, slots[i + AHEAD], 0)
        r, s = slots[i], skill[i]
        knows[i] = (bits[r, s >> 3] >> (s & 7)) & 1
        if knows[i]:
            continue
        f = _missing_ancestor(bits, r, masks, s, max(lo[i], depth_bound[grade[r]]))
        t = teacher[r]
        if f != s and capacity[t] >= min_capacity:
            fix[i] = f
            section[i] = t * 1024 + line[r]
    return knows, fix, section


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
        # from the top: a skill already implied has its ancestors marked too (they are
        # ancestors of the skill that implied it), so only the others are walked
        for s in range(n - 1, -1, -1):
            if read[s] and not implied[s]:
                for j in range(width):
                    a = ancestors[s, j]
                    if a == NO_SKILL:
                        break
                    implied[a] = True
        for s in range(n):
            believed[i, s] = (gap[s] < neg_band) or read[s] or (
                implied[s] and not (tested[s] and not read[s]))
            tested_out[i, s] = tested[s] or implied[s]
    return believed, tested_out


# --- the day's block ------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def block_reads(mastery, slots, skills, prereqs):
    """The day's block, its reads before any write: per (slot, skill), the readiness
    (share of prerequisites truly mastered, 1 if none; float32), the first missing
    prerequisite (lowest column; -1 if none; int64) and that prerequisite's own
    readiness (float32; 1 if none)."""
    k = slots.size
    readiness = np.empty(k, np.float32)
    first = np.full(k, -1, np.int64)
    pre_ready = np.ones(k, np.float32)
    width = prereqs.shape[1]
    for i in range(k):
        if i + AHEAD < k:
            ahead = skills[i + AHEAD]
            prefetch(mastery, slots[i + AHEAD], max(prereqs[ahead, 0], 0))
        row = slots[i]
        target = skills[i]
        for level in range(2):  # the skill, then its first missing prerequisite
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
            ready = np.float32(have) / np.float32(count) if count > 0 else np.float32(1.0)
            if level == 1:
                pre_ready[i] = ready
                break
            readiness[i] = ready
            first[i] = f
            if f < 0:
                break
            target = f
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


# The rest of the day's block, fused. Run array by array (learning, exit slips,
# record, tracks, affect, log), each step walked 100,000 students' rows again,
# long after the last step had pushed them out of the caches; here every step
# of one student runs before the next student's. Students' rows are
# independent, so only the order of steps within a student matters, and that
# is kept: results are bit-identical to the steps run one after another (in
# numpy: ``District._teach_numpy``). The bodies are written out in the loop: a
# compiled helper taking arrays costs reference counting on every call, about
# ten times the work of a step here.
@njit(cache=True, nogil=True)
def block_writes(mastery, familiarity, slots, skills, p_master, u_learn, backfill, first,
                 mastered_code, familiarity_max, u_exit, pass_mastered, pass_guess,
                 bits, run, streak_skill, days_on, frontier, advanced, stale, prereqs,
                 mastery_streak, fail_limit, move_on, use_move_on,
                 skill_grade, grade, positions,
                 level, below_track, position_track, other_days, first_other, alpha,
                 persist_days, min_jump,
                 readiness, engagement, engagement_base, anxiety, anxiety_base,
                 recovery, boredom, frustration, switch_engagement, min_engagement,
                 switch_anxiety, unfamiliar_anxiety,
                 days_present, days_grade_level, days_mastered, lowest_offset, switches,
                 engagement_sum, part, earlier):
    """The day's block after its probabilities, slot by slot (per student: ``u_learn``,
    ``u_exit``, ``move_on`` and the state arrays; per slot: the rest):

    1. learning (``learning.learn_numpy``): the skill is gained if not already
       mastered and ``u_learn`` < ``p_master``; the first missing prerequisite
       ``first`` if ``backfill``; a day of familiarity;
    2. the exit slip: passed if ``u_exit`` < ``pass_mastered`` (mastered) or
       ``pass_guess`` (not), compared in float64 as numpy does;
    3. the record (``Record.exit_slips``): streaks, marks, send-backs;
    4. the content's offset from grade and the tracks (``Tracks.update``);
    5. affect (``affect.update_affect``), on the felt change;
    6. the year log (``YearLog.record_day``), with the engagement just updated.

    ``part`` 0 runs all six, the felt change being the working level's change as
    it is (``change_exponent`` 1: numpy's ``x ** 1.0`` is ``x``). Another exponent
    needs numpy's power between steps 4 and 5 (a compiled power differs from it
    in the last bit): ``part`` 1 runs steps 1-4, the caller raises ``change`` in
    numpy, and ``part`` 2 runs steps 5-6 with ``earlier`` = (already, offset,
    switched, felt), part 1's results and the raised change.

    Precisions are numpy's: float32 where numpy combines float32 arrays with
    Python floats (``alpha``, ``min_jump``, ``recovery``, ``frustration``,
    ``switch_*`` arrive as float32), float64 where a Python float meets a boolean
    array (``boredom``, ``unfamiliar_anxiety``, the clip bounds).

    Returns (already, passed, offset int16, switched, change float32) per slot
    (with ``part`` 2, ``passed`` and ``change`` are not set).
    """
    k = slots.size
    already = np.empty(k, np.bool_)
    passed_out = np.empty(k, np.bool_)
    offsets = np.empty(k, np.int16)
    switched_out = np.empty(k, np.bool_)
    change_out = np.empty(k, np.float32)
    top = familiarity_max - 1
    width = prereqs.shape[1]
    one = np.float32(1.0)
    for i in range(k):
        if part != 2 and i + AHEAD < k:
            ahead_row, ahead_skill = slots[i + AHEAD], skills[i + AHEAD]
            prefetch(mastery, ahead_row, ahead_skill)
            prefetch(familiarity, ahead_row, ahead_skill)
            prefetch(bits, ahead_row, ahead_skill >> 3)
        r, s = slots[i], skills[i]
        if part == 2:
            a, offset, switched, felt = (earlier[0][i], earlier[1][i], earlier[2][i],
                                         earlier[3][i])
        else:
            # 1. learning
            a = mastery[r, s] > 0
            gained = (not a) and (u_learn[r] < p_master[i])
            if backfill[i]:
                mastery[r, first[i]] = mastered_code
            if gained:
                mastery[r, s] = mastered_code
            f = familiarity[r, s]
            familiarity[r, s] = (f if f < top else top) + 1
            # 2. the exit slip
            passed = np.float64(u_exit[r]) < (pass_mastered if (a or gained) else pass_guess)
            passed_out[i] = passed
            # 3. the record
            same = streak_skill[r] == s
            prev = run[r] if same else 0
            streak_skill[r] = s
            x = max(prev, 0) + 1 if passed else min(prev, 0) - 1
            mastered = x >= mastery_streak
            send_back = x <= -fail_limit
            if use_move_on:
                days = days_on[r] + 1 if same else 1
                mastered = mastered or days >= move_on[r]
                if move_on[r] < MOVE_ON_NEVER:
                    send_back = False
                days_on[r] = 0 if mastered else days
            if mastered:
                bits[r, s >> 3] |= np.uint8(1 << (s & 7))
                if s == frontier[r]:
                    advanced[r] = True
            if send_back:
                for j in range(width):
                    p = prereqs[s, j]
                    if p != NO_SKILL:
                        bits[r, p >> 3] &= np.uint8(~(1 << (p & 7)) & 0xFF)
                stale[r] = True
            run[r] = 0 if (mastered or send_back) else x
            # 4. offset and tracks
            offset = np.int16(skill_grade[s] - grade[r])
            below = offset < 0
            pos = positions[s]
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
            change_out[i] = change
            felt = change
        already[i] = a
        offsets[i] = offset
        switched_out[i] = switched
        if part == 1:
            continue
        # 5. affect
        e = engagement[r]
        e32 = e + recovery * (engagement_base[r] - e)
        y = (np.float64(e32) - (boredom if a else 0.0)
             - np.float64(frustration * (one - readiness[i]))
             - np.float64(switch_engagement * felt))
        e_new = np.float32(min(max(y, min_engagement), 1.0))
        engagement[r] = e_new
        an = anxiety[r]
        a32 = an + recovery * (anxiety_base[r] - an) + switch_anxiety * felt
        z = np.float64(a32) + (unfamiliar_anxiety if (offset >= 0 and readiness[i] < one)
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
    return already, passed_out, offsets, switched_out, change_out


# --- ranks within groups --------------------------------------------------------------------
SMALL_RUN = 64  # groups up to this size are ranked by counting (quadratic), larger by sorting

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
        stop = start + 1
        while stop < k and group[order[stop]] == group[order[start]]:
            stop += 1
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


# --- the learning rate ----------------------------------------------------------------------
@njit(cache=True, nogil=True)
def capacity_ratio(teacher, unit, room, capacity, pace_marks, room_marks, room_capacity,
                   room_trust, pooling):
    """Capacity over distinct paces per student, before the elasticity (float64), as
    ``District._capacity_factor`` computes it: a teacher's paces are the distinct units
    of their students today (``pace_marks``, cleared and refilled); in rooms, with
    ``pooling`` > 0, the team's pooled ratio (``teachers.pooled_ratio``) against the
    room's distinct units (``room_marks``)."""
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
    ratio = np.empty(k, np.float64)
    for i in range(k):
        t = teacher[i]
        ratio[i] = min(1.0, capacity[t] / max(paces[t], 1))
    if pooling > 0 and any_room:
        room_marks[:] = False
        room_paces = np.zeros(room_marks.shape[0], np.int64)
        for i in range(k):
            r = room[i]
            if r >= 0 and not room_marks[r, unit[i]]:
                room_marks[r, unit[i]] = True
                room_paces[r] += 1
        for i in range(k):
            r = room[i]
            if r >= 0:
                w = pooling * room_trust[r]
                team = min(1.0, room_capacity[r] / max(room_paces[r], 1))
                ratio[i] = (1.0 - w) * min(1.0, ratio[i]) + w * team
    return ratio


@njit(cache=True, nogil=True)
def learning_rate(slots, skills, modality, teacher, room, own_teacher, capacity_factor,
                  base_rate, ease, student_rate, engagement, modality_factor, weight_unled,
                  effect, typical_sd, trust, handoff_loss, led_a, led_b):
    """``District._learning_rate``'s product per present student, in float64 in numpy's
    order, rounded to float32 (per day): base rate x ease x the student's rate x
    engagement x modality x teacher multiplier x continuity x capacity factor."""
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
             * capacity_factor[i])
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

    In the order numpy and BLAS add (as ``assessment._add_block_loglik`` computes it,
    block by block): the right answers' log-odds summed item by item from zero (a
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
