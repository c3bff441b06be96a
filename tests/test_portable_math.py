"""portable_math: accurate, and the same bits whatever the machine."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from sim.engine import portable_math as pm


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of the last place of the float64 nearest ``exact``."""
    ref = exact.astype(np.float64)
    return (np.abs(got.astype(np.longdouble) - exact) / np.spacing(np.abs(ref))).astype(float)


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(5)
    return np.concatenate([rng.normal(0, 5, 100_000), rng.uniform(-745, 709, 20_000),
                           rng.normal(0, 1e-6, 5_000)])


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60, reason="needs an 80-bit long double")
def test_exp_log_log1p_power_are_within_an_ulp_or_a_few(x):
    """Against numpy's long double (64-bit significand) functions."""
    exact = np.exp(x.astype(np.longdouble))
    normal = exact > np.finfo(np.float64).tiny
    assert _ulps(pm.exp(x), exact)[normal].max() <= 1.0
    y = np.abs(x) + 1e-300
    exact = np.log(y.astype(np.longdouble))
    assert _ulps(pm.log(y), exact)[exact != 0].max() <= 1.0
    z = np.concatenate([np.abs(x[:50_000]) - 0.999, x[-5_000:]])
    exact = np.log1p(z.astype(np.longdouble))
    assert _ulps(pm.log1p(z), exact)[exact != 0].max() <= 3.0
    b = np.abs(x[:20_000]) / 20
    exact = np.power(b.astype(np.longdouble), np.longdouble(0.3))
    assert _ulps(pm.power(b, 0.3), exact)[b > 0].max() <= 4.0


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value",
                            "ignore:divide by zero")  # flags raised at these, as numpy's
def test_special_values_and_subnormals():
    assert pm.exp(0.0) == 1.0 and pm.exp(800.0) == math.inf and pm.exp(-800.0) == 0.0
    assert math.isnan(pm.exp(math.nan)) and pm.exp(-math.inf) == 0.0
    assert pm.exp(-740.0) == math.exp(-740.0) > 0  # subnormal result, one rounding
    assert pm.log(1.0) == 0.0 and pm.log(0.0) == -math.inf and pm.log(math.inf) == math.inf
    assert math.isnan(pm.log(-1.0)) and math.isnan(pm.log(math.nan))
    assert pm.log(5e-324) == pytest.approx(math.log(5e-324), rel=1e-15)  # subnormal input
    assert pm.log1p(-1.0) == -math.inf and pm.log1p(1e-20) == 1e-20
    assert pm.power(0.0, 0.0) == 1.0 and pm.power(0.0, 2.0) == 0.0
    assert pm.power(2.0, 10.0) == pytest.approx(1024.0, rel=1e-15)


def test_precision_follows_the_input():
    f32 = np.array([0.5, 1.0], np.float32)
    assert pm.exp(f32).dtype == np.float32 and pm.power(f32, 0.3).dtype == np.float32
    assert pm.exp(f32)[0] == np.float32(math.exp(0.5))  # float64 inside, rounded once
    assert pm.exp(np.array([1, 2])).dtype == np.float64 and pm.log(0.5).dtype == np.float64
    out = np.empty(3)
    pm.exp(np.array([0.0, 1.0, 2.0]), out=out)
    assert out[1] == pytest.approx(math.e, rel=1e-15)


def test_the_bits_are_this_digest_on_every_machine():
    """The same inputs give these bits on any CPU, C library or numba build: plain
    IEEE arithmetic in a fixed order. A different digest means a machine-dependent
    operation crept in (or the algorithms changed: then update it)."""
    v = np.random.default_rng(1).normal(0, 4, 50_000)
    h = hashlib.sha256()
    for a in (pm.exp(v), pm.log(np.abs(v)), pm.log1p(np.abs(v)), pm.power(np.abs(v), 0.3),
              pm.exp(v.astype(np.float32))):
        h.update(a.tobytes())
    assert h.hexdigest()[:16] == "90ff5aba71edddc9"


def test_the_days_block_is_rebuilt_when_this_module_changes():
    """The day's block inlines power64 into a numba-cached function, whose cache numba
    checks against its own file only: this file's source is part of the block's cache
    key (a closure value numba hashes into it)."""
    from sim.engine import compiled, school_day

    key = school_day.day_loop.py_func.__closure__[0].cell_contents
    assert key == compiled.source_key(compiled, pm, *[
        getattr(school_day, m) for m in ("learning", "assessment", "records", "outcomes",
                                         "affect")])


def test_modules_inlining_the_compiled_utilities_name_their_version():
    """numba checks a cached function against its own file only: every module whose
    compiled functions inline ``compiled.py``'s utilities (it imports ``exp32`` or
    ``prefetch``) holds that file's hash, so a change there changes them too."""
    import ast
    import hashlib
    import importlib
    from pathlib import Path

    from sim.engine import compiled

    digest = hashlib.sha256(Path(compiled.__file__).read_bytes()).hexdigest()[:16]
    root = Path(compiled.__file__).resolve().parents[1]
    inlining = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and node.module == "sim.engine.compiled"
                    and {a.name for a in node.names} & {"exp32", "prefetch"}):
                inlining.append(".".join(path.relative_to(root.parent).with_suffix("").parts))
    assert len(inlining) >= 5, inlining
    stale = [m for m in inlining
             if getattr(importlib.import_module(m), "COMPILED_SOURCE", None) != digest]
    assert not stale, f"compiled.py changed: set COMPILED_SOURCE = {digest!r} in {stale}"


@pytest.mark.filterwarnings("ignore:invalid value")
def test_power_special_cases():
    assert pm.power(1.0, math.inf) == 1.0 and pm.power(1.0, math.nan) == 1.0
    assert math.isnan(pm.power(0.0, math.nan)) and pm.power(0.0, -1.0) == math.inf
    assert math.isnan(pm.power(-2.0, 0.5)) and pm.power(-2.0, 0.0) == 1.0
