"""Elementwise exp, log, log1p and power that give the same bits on every x86-64 CPU.

numpy chooses its loops for these functions by the CPU's features: on an
AVX-512 machine Intel's SVML or numpy's own AVX-512 code, on an AVX2 machine
other vector code or the C library. The choices agree to an ulp or so, not bit
for bit, so a seed's results would depend on the machine that ran it (measured:
``benchmarks/fingerprint.py`` with ``NPY_DISABLE_CPU_FEATURES`` set gave other
digests). These are numpy ufuncs (broadcasting, ``out=``) compiled by numba
whose loop calls the C library's scalar function on each element (glibc's
``exp``, ``log``, ``log1p``, ``pow`` and their float32 forms): numba is built
without Intel's SVML here (``numba -s``), so LLVM keeps the calls scalar, and
glibc's functions give the same result on every CPU with FMA (every x86-64 CPU
of the last ten years). The cost is speed (a scalar call per element, about
4-8 ns), so they serve where results are made once per run or per day on a few
thousand values: the population's draws, the item bank's calibration, the
skills' ease, the teachers' capacity factors. The daily kernels have their own
(``kernels.exp32``, ``kernels.power32_array``).

float64 in, float64 out; float32 in, float32 out (the precision numpy would
have used).
"""

from __future__ import annotations

import math

from numba import vectorize

# float32 first: numpy takes the first loop its inputs cast to safely
_UNARY = ["float32(float32)", "float64(float64)"]
_BINARY = ["float32(float32, float32)", "float64(float64, float64)"]


@vectorize(_UNARY, cache=True)
def exp(x):
    """``e ** x``."""
    return math.exp(x)


@vectorize(_UNARY, cache=True)
def log(x):
    """Natural logarithm (``-inf`` at 0, NaN below)."""
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


@vectorize(_UNARY, cache=True)
def log1p(x):
    """``log(1 + x)``, accurate for small ``x``."""
    return math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)


@vectorize(_BINARY, cache=True)
def power(x, y):
    """``x ** y``."""
    return x ** y
