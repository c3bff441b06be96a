"""benchmarks/critical_path.py: one process's CPU-seconds and the two-worker critical
path from its phase records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cp():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import critical_path
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return critical_path


def test_critical_path_adds_serial_phases_to_the_busier_worker(cp):
    parent = 1
    records = [{"pid": 2, "phase": "run", "cpu": 3.0}, {"pid": 2, "phase": "run", "cpu": 4.0},
               {"pid": 3, "phase": "run", "cpu": 5.0},
               {"pid": parent, "phase": "pool", "cpu": 0.5, "at": 2.5},
               {"pid": 4, "phase": "figure", "cpu": 0.75}, {"pid": 5, "phase": "figure",
                                                            "cpu": 0.25}]
    got = cp.critical_path(records, parent, total=3.5)
    assert got["start"] == 2.0 and got["final"] == 1.0
    assert got["one_process"] == 2.0 + 0.5 + 12.0 + 1.0 + 1.0
    assert got["two_workers"] == 2.0 + 7.0 + 1.0 + 0.75  # worker 2's 7 > (12 + 0.5) / 2
    assert got["ratio"] == pytest.approx(16.5 / 10.75)


def test_the_parents_writing_counts_when_it_outweighs_the_imbalance(cp):
    records = [{"pid": 2, "phase": "run", "cpu": 5.0}, {"pid": 3, "phase": "run", "cpu": 5.0},
               {"pid": 1, "phase": "pool", "cpu": 2.0, "at": 3.0}]
    got = cp.critical_path(records, 1, total=3.0)
    assert got["two_workers"] == 1.0 + 6.0 + 0.0  # (10 + 2) / 2 > 5
    assert got["figures"] == []


def test_a_reports_figures_are_a_second_pool_after_the_runs_figures(cp):
    records = [{"pid": 2, "phase": "run", "cpu": 5.0}, {"pid": 3, "phase": "run", "cpu": 5.0},
               {"pid": 1, "phase": "pool", "cpu": 0.5, "at": 2.5},
               {"pid": 4, "phase": "figure", "cpu": 1.0}, {"pid": 5, "phase": "figure",
                                                           "cpu": 0.5},
               {"pid": 6, "phase": "report figure", "cpu": 2.0},
               {"pid": 7, "phase": "report figure", "cpu": 3.0}]
    got = cp.critical_path(records, 1, total=4.0)
    assert got["one_process"] == 2.0 + 0.5 + 10.0 + 1.5 + 1.5 + 5.0
    assert got["two_workers"] == 2.0 + 5.25 + 1.5 + 1.0 + 3.0  # (10 + 0.5) / 2 > 5
    assert got["report_figures"] == [3.0, 2.0]
