"""Shared compiled utilities of the daily rules: prefetch, a portable float32
exponential and power, float32 uniforms from raw generator words.

The rules of the school day are compiled per-student functions in the modules
that own them (``learning``, ``records``, ``affect``, ``outcomes``, ``scoring``,
``policies.pacing``), composed by loops (``school_day.day_block``). What they all
use lives here. Where a rule needs an exponential or a power it uses these
(``exp32``, float32, and ``portable_math.power64`` rounded to float32: plain
arithmetic, the same on every machine), because numpy's own vectorised exp and
power, and the C library's, differ from them, and between machines, in the last
bit. Compiled with numba (``@njit(cache=True)``: compiled once per machine, kept
in numba's cache next to the module or in ``NUMBA_CACHE_DIR``).

numba checks a cached function against its own file only. A function that inlines
another file's rules is built by a factory over ``source_key`` of those files (a
closure value, which numba hashes into the cache's key), so a change in a rule's
file rebuilds every cached function that inlines it (``school_day.day_loop``,
``policies.pacing.traditional_day``). A module whose compiled functions inline this
file's utilities holds this file's hash (``COMPILED_SOURCE``; checked by
``tests/test_portable_math.py``), so a change here changes them too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

NO_SKILL = -1  # as sim.engine.curriculum.NO_SKILL (padding of the tables)
AHEAD = 16  # students ahead whose rows a loop asks the memory for (prefetch)
# ROW_INDEX: the hot loops index with rows and skills read from other arrays (``slots[i]``)
# cast to uint64 first: numba tests a signed index for a negative value, and adds the
# length, on every access; an unsigned one it takes as is. About a tenth of the day's
# block. Only for indexing: mixed with int64 in arithmetic, uint64 would turn float64.


def source_key(*modules) -> str:
    """SHA-256 (16 hex digits) of the source files of ``modules`` (module objects):
    the part of a composing function's cache key that names the rules it inlines."""
    h = hashlib.sha256()
    for m in modules:
        h.update(Path(m.__file__).read_bytes())
    return h.hexdigest()[:16]


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
