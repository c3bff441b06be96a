"""How fast the daily cycle could be with the interpreter gone: each compiled kernel's
time in a year, in place and again on warm caches (docs/performance.md).

Builds the bench's representative mix (``sim.experiments.bench.mix_scenario``) at
about ``--students`` students and runs one year of an arm (``--arms``; default
``traditional`` and ``personalized``) twice: once plain, for the year's wall time,
and once with every compiled function of the rules' modules (``RULE_MODULES``: those
the modules define, not those they import) and every ufunc of
``sim.engine.portable_math`` wrapped. Each wrapped call is timed where it runs (*in
place*: the caches as the day left them); then, untimed, its array arguments are
copied and it runs twice more on the copies, and the second of those is timed
(*warm*: its inputs just read, as in a day fused into one compiled pass that keeps
a student's data in cache). The day's uniforms (``random_streams._raw_uniform32``:
numpy's PCG64 outputs plus their split, compiled) are timed as one item, the same
in place and warm. Kernels called from inside other kernels are part of their
caller's time; numpy's own work (the tests' BLAS product, sorts, fancy indexing) is
in the rest.

The row per arm: the year's wall time, the kernels' and draws' time in place and
warm, the rest (the interpreter's and numpy's share: the wrapped year's time outside
the wrapped calls), and the
student-days per second the year would reach if only the warm kernels and draws
were left: the ceiling of speeding up everything but the kernels' own work.

Usage::

    .venv/bin/python benchmarks/kernel_floor.py                   # 100,000 students
    .venv/bin/python benchmarks/kernel_floor.py --students 10000 --top 8 --json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
from numba.core.registry import CPUDispatcher

from sim.district.item_bank import item_bank
from sim.district.reference import state_reference
from sim.engine import (
    compiled,
    learning,
    outcomes,
    portable_math,
    random_streams,
    records,
    school_day,
    scoring,
    teachers,
)
from sim.experiments import bench
from sim.policies import pacing

RULE_MODULES = (compiled, learning, records, scoring, teachers, outcomes, school_day, pacing)

DRAWS = "draws (_raw_uniform32)"
WRAPPED = "(inside the wrappers)"  # every wrapped call, copies and re-runs included


def _copied(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _set(patches, which: int) -> None:
    for module, name, *fns in patches:
        setattr(module, name, fns[which])


def _clocked(name, fn, in_place, warm, patches):
    """``fn`` timed in place; then run twice on copies of its arguments, the second timed.
    The kernels' own names are restored while ``fn`` runs: numba resolves a kernel's
    callees by name when it compiles a new specialisation (a copy of a strided view is
    contiguous), and must find the kernels, not these wrappers."""
    def wrapper(*args):
        entered = time.perf_counter()
        _set(patches, 0)
        try:
            t0 = time.perf_counter()
            out = fn(*args)
            in_place[name] += time.perf_counter() - t0
            if name != DRAWS:  # the draws' generator state moves on: not re-run
                fn(*_copied(args))
                again = _copied(args)
                t0 = time.perf_counter()
                fn(*again)
                warm[name] += time.perf_counter() - t0
        finally:
            _set(patches, 1)
            in_place[WRAPPED] += time.perf_counter() - entered
        return out
    return wrapper


def _year(district, days: int) -> float:
    t0 = time.perf_counter()
    district.start_year()
    for day in range(days):
        district.day = day
        district.step()
    return time.perf_counter() - t0


def kernel_year(scenario, arm_index: int, reference) -> dict:
    """Wall, in-place and warm seconds of one year of one arm (see the module docstring)."""
    days = scenario.calendar.days
    wall = _year(bench.mix_district(scenario, arm_index, reference), days)
    in_place, warm = defaultdict(float), defaultdict(float)
    patches = [[module, name, fn] for module in RULE_MODULES
               for name, fn in vars(module).items()
               if isinstance(fn, CPUDispatcher) and fn.py_func.__module__ == module.__name__]
    patches += [[portable_math, name, fn] for name, fn in vars(portable_math).items()
                if isinstance(fn, np.ufunc)]
    patches.append([random_streams, "_raw_uniform32", random_streams._raw_uniform32])
    for patch in patches:
        name = DRAWS if patch[1] == "_raw_uniform32" else patch[1]
        patch.append(_clocked(name, patch[2], in_place, warm, patches))
    try:
        _set(patches, 1)
        district = bench.mix_district(scenario, arm_index, reference)
        patched_wall = _year(district, days)
    finally:
        _set(patches, 0)
    # the rest of the wrapped year: its wall time outside the wrapped calls
    rest = patched_wall - in_place.pop(WRAPPED)
    warm[DRAWS] = in_place[DRAWS]  # (their split, float32_from_raw, is inside them)
    student_days = district.students.n * days
    warm_total = sum(warm.values())
    return {"arm": scenario.arms[arm_index].label, "students": district.students.n,
            "wall_s": wall, "in_place_s": sum(in_place.values()), "warm_s": warm_total,
            "rest_s": rest,
            "student_days_per_s": student_days / wall,
            "ceiling_student_days_per_s": student_days / warm_total,
            "kernels": {k: {"in_place_s": in_place[k], "warm_s": warm[k]}
                        for k in sorted(in_place, key=in_place.get, reverse=True)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--arms", nargs="+", default=["traditional", "personalized"])
    parser.add_argument("--top", type=int, default=6, help="kernels listed per arm")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = bench.mix_scenario(args.students)
    reference = state_reference(scenario)
    item_bank(scenario)
    bench.warm_up()
    labels = [a.label for a in scenario.arms]
    for label in args.arms:
        row = kernel_year(scenario, labels.index(label), reference)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(f"{row['arm']:<18} n={row['students']} wall={row['wall_s']:.2f}s "
              f"kernels+draws in place={row['in_place_s']:.2f}s warm={row['warm_s']:.2f}s "
              f"rest={row['rest_s']:.2f}s rate={row['student_days_per_s'] / 1e6:.2f}M/s "
              f"ceiling={row['ceiling_student_days_per_s'] / 1e6:.2f}M/s", flush=True)
        for name, t in list(row["kernels"].items())[:args.top]:
            print(f"    {name:<26} in place {t['in_place_s']:.3f}s  warm {t['warm_s']:.3f}s")


if __name__ == "__main__":
    main()
