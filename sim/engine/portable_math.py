"""Elementwise exp, log, log1p and power that give the same bits on every machine.

numpy chooses its loops for these functions by the CPU's features (on an
AVX-512 machine Intel's SVML or numpy's own AVX-512 code, on an AVX2 machine
other vector code or the C library), and the C library's own functions differ
between libraries (glibc, macOS's, musl) and, within glibc, between CPUs with
and without FMA (measured: ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-FMA,-AVX2``
changes glibc's float64 ``exp``, ``log`` and ``pow``). They agree to an ulp or
so, not bit for bit, so a seed's results would depend on the machine that ran
them (``benchmarks/fingerprint.py`` with ``NPY_DISABLE_CPU_FEATURES`` set gave
other digests).

These are plain IEEE arithmetic instead: fdlibm's algorithms (Sun's freely
distributable libm, still FreeBSD's ``exp`` and ``log``), slightly simplified (exp
without its shortcut for ``|x| < 2^-28``, log always in its ``hfsq`` form), written
out in numba-compiled numpy ufuncs (broadcasting, ``out=``). numba compiles without
fast-math, so LLVM neither reorders nor fuses the operations (no FMA contraction):
the same operations round the same way on every CPU; powers of two are built from,
and exponents read off, the floats' bits. Accuracy
(``tests/test_portable_math.py``): ``exp`` and ``log`` within 1 ulp of the
correctly rounded value, ``log1p`` within a few ulp; ``power(x, y) =
exp(y log x)`` within about ``max(|y log x|, 1)`` ulp (here ``|y log x| < 7``).

Used wherever a result is made outside the daily rules (which have their own float32
exponential, ``compiled.exp32``): the population's draws, the item bank's calibration,
the skills' ease, the ancestor weights, the teachers' capacity factors; and the felt
change's power in the day's block (``power64``). float64 in, float64 out; float32 in,
float32 out (computed in float64 and rounded once).

Assumed: the CPU does not flush subnormals to zero (its default; a library built with
``-ffast-math`` loaded into the process can switch that on). A NaN made here (not
passed through) has the hardware's sign bit, which differs between x86 and ARM.

The day's block inlines ``power64`` (``affect.felt_change``); numba checks a cached
function against its own file only, so this file's source is part of the block's
cache key (``school_day``, ``compiled.source_key``): a change here rebuilds it.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import cfunc, njit, types
from numba.extending import intrinsic
from numba.np.ufunc import _internal
from numba.np.ufunc.ufuncbuilder import parse_identity

LN2_HI = 6.93147180369123816490e-01  # ln 2's leading bits (its multiples by k are exact)
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
INV_LN2 = 1.44269504088896338700e+00
EXP_HIGH = 710.0  # e^x is inf from 709.78 on: clamping here keeps 2^k's halves in range
EXP_LOW = -746.0  # and 0 below -745.13
# fdlibm e_exp.c: the Remez polynomial of R(r^2) = r (e^r + 1) / (e^r - 1) on [0, ln 2 / 2]
P1, P2, P3 = 1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05
P4, P5 = -1.65339022054652515390e-06, 4.13813679705723846039e-08
# fdlibm e_log.c: log((1 + s) / (1 - s)) = 2s + s Lg(s^2) on [0, 0.1716]
LG1, LG2, LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
LG4, LG5 = 2.222219843214978396e-01, 1.818357216161805012e-01
LG6, LG7 = 1.531383769920937332e-01, 1.479819860511658591e-01
SQRT2 = 1.41421356237309504880
MANTISSA = (1 << 52) - 1  # a float64's significand bits
ONE_BITS = 1023 << 52  # the bits of 1.0 (exponent bias 1023)
TWO_54 = 18014398509481984.0  # 2^54: lifts a subnormal into the normal range


@intrinsic
def float_bits(typingctx, x):
    """The 64 bits of a float64, as an int64 (LLVM's ``bitcast``; exact)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, b):
    """The float64 whose 64 bits are the int64 ``b`` (LLVM's ``bitcast``; exact)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, nogil=True, inline="always")
def pow2(k: int) -> float:
    """``2.0 ** k`` for ``-1022 <= k <= 1023``, from its bits."""
    return bits_float((k + 1023) << 52)


# exp64 and log64 are written without early returns (selects instead of branches) and
# inlined into the ufuncs (numba's inline="always"; a call per element costs ten times
# more), so that LLVM vectorises their loops: 6 million values in 13 ms, numpy's own
# exp in 11.
@njit(cache=True, nogil=True, inline="always")
def exp64(x: float) -> float:
    """``e ** x`` (fdlibm's ``__ieee754_exp``'s algorithm): ``x = k ln 2 + r``,
    ``|r| <= ln 2 / 2``, ``e^r`` from a rational approximation, then scaled by ``2^k``
    in two exact halves (one rounding, where the result is subnormal). ``inf`` above 709.78, 0 below
    -745.13, NaN at NaN."""
    nan = x != x
    v = 0.0 if nan else (EXP_LOW if x < EXP_LOW else (EXP_HIGH if x > EXP_HIGH else x))
    k = int(math.floor(v * INV_LN2 + 0.5))
    hi = v - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    half = k >> 1
    y = y * pow2(half) * pow2(k - half)
    return x if nan else y


@njit(cache=True, nogil=True, inline="always")
def log64(x: float) -> float:
    """Natural logarithm (fdlibm's ``__ieee754_log``'s algorithm): ``x = 2^e (1 + f)``
    with ``sqrt(1/2) <= 1 + f < sqrt(2)``, ``log(1 + f)`` from ``s = f / (2 + f)``.
    ``-inf`` at 0, NaN below 0 or at NaN, ``inf`` at ``inf``."""
    tiny = x < 2.2250738585072014e-308  # subnormal (or not positive)
    b = float_bits(x * (TWO_54 if tiny else 1.0))  # no overflow for large x
    e = (b >> 52) - (1023 + 54 if tiny else 1023)
    m = bits_float((b & MANTISSA) | ONE_BITS)  # x = m 2^e, 1 <= m < 2
    big = m > SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG2 + w * (LG4 + w * LG6))
    t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    hfsq = 0.5 * f * f
    y = e * LN2_HI - ((hfsq - (s * (hfsq + t2 + t1) + e * LN2_LO)) - f)
    y = x if x == math.inf else y
    y = -math.inf if x == 0.0 else y
    return math.nan if not x >= 0.0 else y


@njit(cache=True, nogil=True, inline="always")
def log1p64(x: float) -> float:
    """``log(1 + x)``, accurate for small ``x``: ``log(u) x / (u - 1)`` with ``u = 1 + x``
    rounded (the rounding of ``u`` cancels; Goldberg 1991, theorem 4)."""
    u = 1.0 + x
    if u == 1.0:
        return x
    if u == math.inf:
        return u
    return log64(u) * (x / (u - 1.0))


@njit(cache=True, nogil=True, inline="always")
def power64(x: float, y: float) -> float:
    """``x ** y`` for ``x >= 0`` as ``exp(y log x)`` in float64, within about
    ``max(|y log x|, 1)`` ulp (``x ** 0`` and ``1 ** y`` are 1; ``0 ** y`` 0 for ``y > 0``,
    inf for ``y < 0``; NaN for ``x < 0`` or a NaN). The day's block calls it too."""
    xf, yf = float(x), float(y)
    p = exp64(yf * log64(xf))
    p = (0.0 if yf > 0.0 else (math.inf if yf < 0.0 else math.nan)) if xf == 0.0 else p
    return 1.0 if yf == 0.0 or xf == 1.0 else p


# --- the ufuncs -------------------------------------------------------------------------
# numpy ufuncs made from numba ``cfunc`` loops with numpy's loop signature (the argument
# and result pointers, the length, the byte strides), cached on disk like the kernels and
# loaded in a few ms each. (numba's ``vectorize`` caches the element function but compiles
# the loop around it afresh in every process, about 0.1 CPU-s a loop: 0.75 CPU-s of every
# plsim command's start.) The same element functions, inlined, without fast-math: the
# same bits. The contiguous loops' constant strides let LLVM vectorise them.
# Each loop is written out at module level, not made by a factory: numba's disk cache
# misses cfuncs made in a closure (measured: each new process compiled them again and
# appended cache entries), which would put the start's 0.75 CPU-s back.
_LOOP = types.void(types.CPointer(types.voidptr), types.CPointer(types.intp),
                   types.CPointer(types.intp), types.voidptr)
_LOOP_OPTIONS = {"cache": True, "error_model": "numpy"}  # IEEE division, as in a ufunc
F32, F64 = types.float32, types.float64


@intrinsic
def _load(typingctx, base, offset, kind):
    """The ``kind`` (float32 or float64) stored ``offset`` bytes after ``base``."""
    dtype = kind.instance_type

    def codegen(context, builder, signature, args):
        at = builder.bitcast(builder.gep(args[0], [args[1]]),
                             context.get_value_type(dtype).as_pointer())
        return builder.load(at)

    return dtype(base, offset, kind), codegen


@intrinsic
def _store(typingctx, base, offset, value):
    """Store ``value`` ``offset`` bytes after ``base``."""
    def codegen(context, builder, signature, args):
        at = builder.bitcast(builder.gep(args[0], [args[1]]),
                             context.get_value_type(value).as_pointer())
        builder.store(args[2], at)
        return context.get_dummy_value()

    return types.void(base, offset, value), codegen


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _exp_f32(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 4 and sy == 4:
        for i in range(dims[0]):
            _store(y, i * 4, np.float32(exp64(float(_load(x, i * 4, F32)))))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, np.float32(exp64(float(_load(x, i * sx, F32)))))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _exp_f64(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 8 and sy == 8:
        for i in range(dims[0]):
            _store(y, i * 8, exp64(_load(x, i * 8, F64)))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, exp64(_load(x, i * sx, F64)))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _log_f32(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 4 and sy == 4:
        for i in range(dims[0]):
            _store(y, i * 4, np.float32(log64(float(_load(x, i * 4, F32)))))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, np.float32(log64(float(_load(x, i * sx, F32)))))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _log_f64(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 8 and sy == 8:
        for i in range(dims[0]):
            _store(y, i * 8, log64(_load(x, i * 8, F64)))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, log64(_load(x, i * sx, F64)))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _log1p_f32(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 4 and sy == 4:
        for i in range(dims[0]):
            _store(y, i * 4, np.float32(log1p64(float(_load(x, i * 4, F32)))))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, np.float32(log1p64(float(_load(x, i * sx, F32)))))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _log1p_f64(args, dims, steps, data):
    x, y, sx, sy = args[0], args[1], steps[0], steps[1]
    if sx == 8 and sy == 8:
        for i in range(dims[0]):
            _store(y, i * 8, log1p64(_load(x, i * 8, F64)))
    else:
        for i in range(dims[0]):
            _store(y, i * sy, log1p64(_load(x, i * sx, F64)))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _power_f32(args, dims, steps, data):
    x, y, z, sx, sy, sz = args[0], args[1], args[2], steps[0], steps[1], steps[2]
    if sx == 4 and sy == 4 and sz == 4:
        for i in range(dims[0]):
            _store(z, i * 4, np.float32(power64(_load(x, i * 4, F32), _load(y, i * 4, F32))))
    else:
        for i in range(dims[0]):
            _store(z, i * sz, np.float32(power64(_load(x, i * sx, F32), _load(y, i * sy, F32))))


@cfunc(_LOOP, **_LOOP_OPTIONS)
def _power_f64(args, dims, steps, data):
    x, y, z, sx, sy, sz = args[0], args[1], args[2], steps[0], steps[1], steps[2]
    if sx == 8 and sy == 8 and sz == 8:
        for i in range(dims[0]):
            _store(z, i * 8, (power64(_load(x, i * 8, F64), _load(y, i * 8, F64))))
    else:
        for i in range(dims[0]):
            _store(z, i * sz, (power64(_load(x, i * sx, F64), _load(y, i * sy, F64))))


def _ufunc(name: str, doc: str, loops: tuple, nin: int):
    """A numpy ufunc of the float32 and float64 ``loops`` (float32 first: numpy takes the
    first loop its inputs cast to safely)."""
    dtypes = [[np.dtype(t).num] * (nin + 1) for t in (np.float32, np.float64)]
    return _internal.fromfunc(name, doc, [loop.address for loop in loops], dtypes, nin, 1,
                              [None] * len(loops), list(loops), parse_identity(None))


exp = _ufunc("exp", "``e ** x``.", (_exp_f32, _exp_f64), 1)
log = _ufunc("log", "Natural logarithm (``-inf`` at 0, NaN below).", (_log_f32, _log_f64), 1)
log1p = _ufunc("log1p", "``log(1 + x)`` (``-inf`` at -1, NaN below).",
               (_log1p_f32, _log1p_f64), 1)
power = _ufunc("power", "``x ** y`` for ``x >= 0`` (``power64``).", (_power_f32, _power_f64), 2)
