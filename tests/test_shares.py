"""The shares' intervals' constants, and what a run's modules load."""

from __future__ import annotations

import math
import subprocess
import sys

from scipy import stats

from sim.analysis.shares import Z95, logit_interval


def test_z95_is_scipys_normal_quantile_to_the_last_bit():
    assert float(stats.norm.ppf(0.975)) == Z95


def test_logit_interval_uses_the_t_quantile():
    """Four shares around 0.5: SE sqrt(0.02 / 3) / 2 on the logit scale / (0.5 x 0.5)."""
    mean, lo, hi = logit_interval([0.5, 0.5, 0.6, 0.4])
    half = float(stats.t.ppf(0.975, 3)) * math.sqrt(0.02 / 3) / 2 / 0.25
    assert mean == 0.5
    assert abs(lo - 1 / (1 + math.exp(half))) < 1e-12
    assert abs(hi - 1 / (1 + math.exp(-half))) < 1e-12


def test_runs_and_sweeps_do_not_load_scipy_stats():
    """scipy.stats costs a third of a second: only the intervals' functions load it."""
    code = ("import sys, sim.experiments.sweeps, sim.experiments.runner; "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
