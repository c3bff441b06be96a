"""Common random numbers across arms; the same seed gives the same tables."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.config.scenario import load_scenario
from sim.experiments.runner import run


@pytest.fixture(scope="module")
def quick():
    return load_scenario("scenarios/quick.toml", ["years=1"], replicates=1)


@pytest.fixture(scope="module")
def rows(quick):
    return run(quick).student_years


def test_arms_see_the_same_students(rows):
    by_arm = {arm: g.reset_index(drop=True) for arm, g in rows.groupby("arm", observed=True)}
    first, *others = by_arm.values()
    for other in others:
        for col in ("student", "school", "grade", "start_band", "baseline_offset", "fall_score"):
            pd.testing.assert_series_equal(first[col], other[col])


def test_grades_outside_the_program_have_identical_outcomes_in_every_arm(rows):
    """Same streams, same students, same (traditional) regime: the same results."""
    outside = rows[~rows.in_program]
    by_arm = [g.drop(columns="arm").reset_index(drop=True)
              for _, g in outside.groupby("arm", observed=True)]
    assert len(by_arm) == 3 and len(by_arm[0]) > 400
    for other in by_arm[1:]:
        pd.testing.assert_frame_equal(by_arm[0], other)
    inside = rows[rows.in_program]
    a, b = (g.growth_sd.to_numpy() for _, g in inside.groupby("arm", observed=True)
            if _ in ("traditional", "floor3"))
    assert (a != b).mean() > 0.5  # the policy does change the program grades


def test_the_same_seed_gives_identical_tables_and_another_seed_different_ones(quick, rows):
    again = run(quick).student_years
    pd.testing.assert_frame_equal(rows, again)
    other = run(quick.model_copy(update={"seed": quick.seed + 1})).student_years
    assert not rows.growth_sd.equals(other.growth_sd)
    assert not rows.fall_score.equals(other.fall_score)


# One seed's tables, hashed, printed by a fresh interpreter (numpy reads its CPU flags at
# import, OpenBLAS its kernel at load).
_TABLES_DIGEST = """
import hashlib
import pandas as pd
from sim.config.scenario import load_scenario
from sim.experiments.runner import run
res = run(load_scenario("scenarios/quick.toml", ["years=2"], replicates=1))
h = hashlib.sha256()
for table in (res.student_years, res.teacher_years, res.school_years):
    h.update(pd.util.hash_pandas_object(table, index=True).values.tobytes())
print(len(res.teacher_years), h.hexdigest())
"""
# numpy's vector code off down to SSE4.2 (X86_V2) and OpenBLAS's Nehalem kernels: the
# paths an older or another CPU takes, where exp, log, power and the BLAS's sums differ
# from this machine's in the last bit unless the model avoids them.
_OTHER_CPU = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512F AVX512CD AVX512VL AVX512BW AVX512DQ "
                                "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Nehalem",
}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 CPU paths")
def test_tables_are_identical_on_another_cpus_code_paths():
    """Same seed, same tables whichever vector code numpy and the BLAS pick."""
    def digest(extra):
        env = {**os.environ, "PLSIM_NO_CACHE": "1", **extra}  # each computes its own bank
        out = subprocess.run([sys.executable, "-c", _TABLES_DIGEST], env=env, check=True,
                             capture_output=True, text=True, cwd=Path(__file__).parents[1])
        return out.stdout.split()

    native, other = digest({}), digest(_OTHER_CPU)
    assert int(native[0]) > 0  # teacher-years are in the tables (their value added too)
    assert native == other
