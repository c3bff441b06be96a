"""Where one simulated year's time goes, by phase of the school day (docs/performance.md).

Builds the bench's representative mix (``sim.experiments.bench.mix_scenario``: the
arms of ``scenarios/floor_strategies.toml``, teachers drifting, one year, no
burn-in) at about ``--students`` students, wraps each phase method of ``District``
with a wall clock, and runs ``start_year()`` and every day of one year of each arm
(or of ``--arms``). The statewide reference and the item bank are built (or read
from their caches) before any timing, and a warm-up year of a small district loads the
compiled kernels (``bench.warm_up``: a whole year, so the spring tests' kernels
too), so neither is in the table.

Prints one row per arm: seconds in the year start and in each phase, the rest of
``step`` (the day's draws and attendance), and student-days per second; with
``--json``, one JSON object per arm instead.

Usage::

    .venv/bin/python benchmarks/phases.py                        # 100,000 students, every arm
    .venv/bin/python benchmarks/phases.py --students 10000 --arms traditional personalized
"""

from __future__ import annotations

import argparse
import json
import time

from sim.district.item_bank import item_bank
from sim.district.reference import state_reference
from sim.experiments import bench

PHASES = ("_assessments", "_supervise", "_assign", "_learning_rate", "_teach", "_supplements")


def timed_year(scenario, arm_index: int, reference) -> dict:
    """Seconds per phase of one year of one arm (``start`` = ``start_year()``)."""
    seconds = dict.fromkeys(PHASES, 0.0)
    district = bench.mix_district(scenario, arm_index, reference)
    for name in PHASES:
        method = getattr(district, name)

        def clocked(*args, _method=method, _name=name):
            t0 = time.perf_counter()
            out = _method(*args)
            seconds[_name] += time.perf_counter() - t0
            return out

        setattr(district, name, clocked)
    t0 = time.perf_counter()
    district.start_year()
    start = time.perf_counter() - t0
    t0 = time.perf_counter()
    for day in range(scenario.calendar.days):
        district.day = day
        district.step()
    days = time.perf_counter() - t0
    n = district.students.n
    return {"arm": scenario.arms[arm_index].label, "students": n, "start": start,
            **{k.lstrip("_"): v for k, v in seconds.items()},
            "draws_attendance": days - sum(seconds.values()),
            "student_days_per_s": n * scenario.calendar.days / (start + days)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--arms", nargs="+", help="arm labels (default: every arm)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = bench.mix_scenario(args.students)
    reference = state_reference(scenario)
    item_bank(scenario)
    bench.warm_up()  # a year of every arm of a small district: every kernel loaded
    labels = [a.label for a in scenario.arms]
    for label in args.arms or labels:
        row = timed_year(scenario, labels.index(label), reference)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            cells = " ".join(f"{k}={v:.2f}" for k, v in row.items()
                             if isinstance(v, float) and k != "student_days_per_s")
            print(f"{row['arm']:<18} n={row['students']} {cells} "
                  f"rate={row['student_days_per_s'] / 1e6:.2f}M/s", flush=True)


if __name__ == "__main__":
    main()
