"""Sweep throughput and single-run scaling.

Two measurements, printed as tables (``--json`` prints one JSON object instead):

1. **Sweep wall time.** ``plsim sweep SWEEP`` (default ``scenarios/sweep_quick.toml``)
   as a fresh command (``python -m sim.cli``, so interpreter start, imports and the
   statewide reference are included, as a user sees them), into a fresh temporary
   folder: serially (``--workers 1``), with a local pool (``--workers 2``) and
   through a ``dask.distributed.LocalCluster`` on 127.0.0.1 (2 worker processes,
   1 thread each; ``--scheduler``). The cluster's start-up is timed separately,
   and the Dask sweep is run twice: on cold workers and again on the same, now
   warm, workers. Ratios are serial time / time. The outcome tables of all the
   sweeps are checked to be identical.

2. **One run at growing district sizes.** One personalized arm (floor 3), every
   grade in the program, one year, no burn-in, schools chosen to reach each size
   (a school has grades x classes_per_grade x class_size students). The statewide
   reference is computed once beforehand, in this process, and handed to each run,
   so it is outside the time. Each size runs in its own child process; its time is
   the ``District`` build (population, teachers, rooms) and ``District.run()`` (the
   simulated year and its student rows), taken inside the child. Peak memory is the
   child's peak resident set size, ``ru_maxrss`` from ``os.wait4`` (the per-child
   form of ``getrusage(RUSAGE_CHILDREN)``), which includes the imports' transient
   peak. Bytes per student use the run alone: the child resets its peak RSS
   (``/proc/self/clear_refs``) after its imports, then bytes per student are
   (VmHWM after the run - VmRSS before the build) / students; where ``/proc`` is
   missing they fall back to the whole child's ``ru_maxrss`` / students.
   ``state bytes`` are the ``nbytes`` of the district's per-student NumPy arrays.

Usage::

    .venv/bin/python benchmarks/sweeps.py                     # both parts
    .venv/bin/python benchmarks/sweeps.py --skip-scaling --json
    .venv/bin/python benchmarks/sweeps.py --skip-sweeps --sizes 1000 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SWEEP = REPO / "scenarios" / "sweep_quick.toml"
DEFAULT_SIZES = [1_000, 10_000, 100_000]
GOAL_POOL_RATIO = 1.7
CLASSES_PER_GRADE, CLASS_SIZE = 4, 25  # 9 grades x 4 x 25 = 900 students per school
ARM = {"label": "personalized", "pacing": "personalized", "floor": 3}


# --- 1. sweeps -------------------------------------------------------------------------
def _plsim(*args) -> list[str]:
    return [sys.executable, "-m", "sim.cli", *map(str, args)]


def time_sweep_command(sweep: Path, out: Path, *options: str) -> tuple[float, float]:
    """Wall time and CPU time (s) of one ``plsim sweep`` command into a fresh folder.

    The CPU time (user + system) is the command's and its pool workers' (a process's
    rusage from ``wait4`` includes the descendants it reaped).
    """
    err = out.with_name(out.name + ".stderr")
    with open(err, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(_plsim("sweep", sweep, "--out", out, "--quiet", *options),
                                stdout=subprocess.DEVNULL, stderr=f)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"plsim sweep {' '.join(options)} failed:\n{err.read_text()}")
    return seconds, usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_dask_sweep(sweep: Path, out: Path, address: str) -> tuple[float, float]:
    """Wall and CPU time of a sweep sent to a cluster: the command's CPU plus the
    workers' (their rusage before and after) plus this process's (scheduler, nannies)."""
    from distributed import Client

    def worker_cpu() -> float:
        with Client(address) as client:
            cpu = client.run(lambda: sum(__import__("resource").getrusage(0)[:2]))
        return sum(cpu.values())

    before, mine = worker_cpu(), _self_cpu()
    seconds, command_cpu = time_sweep_command(sweep, out, "--scheduler", address)
    return seconds, command_cpu + worker_cpu() - before + _self_cpu() - mine


def _table(out: Path):
    from sim.experiments.sweeps import read_outcomes

    keys = ["run_id", "arm", "year", "start_band"]
    return read_outcomes(out).sort_values(keys).reset_index(drop=True)


def bench_sweeps(sweep: Path, workers: int = 2) -> dict:
    """Serial, local pool and LocalCluster wall times of one sweep file."""
    from distributed import LocalCluster

    from sim.experiments.sweeps import load_sweep

    spec, _ = load_sweep(sweep)  # bad input fails here, before any timing
    rows = []
    with tempfile.TemporaryDirectory(prefix="plsim-bench-sweeps-") as tmp:
        tmp = Path(tmp)
        load_before = os.getloadavg()[0]
        serial, cpu = time_sweep_command(sweep, tmp / "serial", "--workers", "1")
        rows.append({"mode": "serial", "workers": 1, "seconds": serial, "cpu_seconds": cpu})
        pool, cpu = time_sweep_command(sweep, tmp / "pool", "--workers", str(workers))
        rows.append({"mode": "local pool", "workers": workers, "seconds": pool,
                     "cpu_seconds": cpu})

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=logging.ERROR)
        startup = time.perf_counter() - t0
        try:
            address = cluster.scheduler_address
            for name, mode in (("dask_cold", "LocalCluster, cold workers"),
                               ("dask_warm", "LocalCluster, warm workers")):
                seconds, cpu = time_dask_sweep(sweep, tmp / name, address)
                rows.append({"mode": mode, "workers": workers, "seconds": seconds,
                             "cpu_seconds": cpu})
        finally:
            cluster.close()

        reference = _table(tmp / "serial")
        identical = all(reference.equals(_table(tmp / name))
                        for name in ("pool", "dask_cold", "dask_warm"))
    for row in rows:
        row["ratio_to_serial"] = serial / row["seconds"]
        # the speed-up this CPU total allows on an otherwise idle machine
        row["ideal_ratio"] = min(row["workers"], row["workers"] * rows[0]["cpu_seconds"]
                                 / row["cpu_seconds"])
    runs = len(reference.run_id.unique())
    return {"sweep": str(sweep), "name": spec.name, "runs": runs, "rows": rows,
            "cluster_startup_seconds": startup, "identical_outcomes": identical,
            "pool_ratio": serial / pool, "goal_pool_ratio": GOAL_POOL_RATIO,
            "cpus": os.cpu_count(), "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0]}


def format_sweeps(res: dict) -> str:
    lines = [f"Sweep {res['name']} ({res['sweep']}): {res['runs']} runs, "
             f"{res['cpus']} CPUs",
             f"{'mode':<28} {'workers':>7} {'wall s':>8} {'serial/this':>11} "
             f"{'CPU s':>7} {'CPU-bound ratio':>15}"]
    for r in res["rows"]:
        lines.append(f"{r['mode']:<28} {r['workers']:>7} {r['seconds']:>8.2f} "
                     f"{r['ratio_to_serial']:>11.2f} {r['cpu_seconds']:>7.1f} "
                     f"{r['ideal_ratio']:>15.2f}")
    lines.append("CPU-bound ratio: workers x serial CPU / this CPU, the speed-up the work "
                 "allows on an idle machine")
    goal = "met" if res["pool_ratio"] >= res["goal_pool_ratio"] else "NOT met"
    lines.append(f"LocalCluster start-up (not in the times above): "
                 f"{res['cluster_startup_seconds']:.2f} s")
    lines.append(f"Pool speed-up {res['pool_ratio']:.2f} (goal >= {res['goal_pool_ratio']}: "
                 f"{goal}); outcomes identical across all four: "
                 f"{'yes' if res['identical_outcomes'] else 'NO'}; "
                 f"1-min load average before/after: {res['load_average_before']:.2f}/"
                 f"{res['load_average_after']:.2f}")
    return "\n".join(lines)


# --- 2. one run at growing sizes -------------------------------------------------------
def scaling_scenario(students: int) -> dict:
    """Scenario data: about ``students`` students, every grade personalized, one year."""
    grades = list(range(0, 9))
    per_school = len(grades) * CLASSES_PER_GRADE * CLASS_SIZE
    schools = min(2000, max(1, round(students / per_school)))
    return {"name": f"scaling-{students}", "seed": 0, "years": 1,
            "calendar": {"burn_in_years": 0},
            "district": {"schools": schools, "grades": grades,
                         "classes_per_grade": CLASSES_PER_GRADE, "class_size": CLASS_SIZE,
                         "program_grades": grades},
            "arms": [ARM]}


def _maxrss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024  # Linux: KiB


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes; None if absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_run(spec_path: str) -> None:
    """In a child process: build and run one district; write timings as JSON."""
    import numpy as np

    from sim.config.scenario import validate_scenario
    from sim.district.model import District

    spec = json.loads(Path(spec_path).read_text())
    scenario = validate_scenario(spec["scenario"], "<scaling>")
    with open(spec["reference"], "rb") as f:
        reference = pickle.load(f)
    reset = _reset_peak()  # imports' transient peak does not count against the run
    before = _status_bytes("VmRSS") if reset else None
    t0 = time.perf_counter()
    district = District(scenario, scenario.arms[0], 0, reference=reference)
    t1 = time.perf_counter()
    rows = district.run()
    t2 = time.perf_counter()
    run_peak = _status_bytes("VmHWM") if reset else None
    state = sum(v.nbytes for obj in (district.students, district.record)
                for v in vars(obj).values() if isinstance(v, np.ndarray))
    Path(spec["result"]).write_text(json.dumps({
        "students": int(district.students.n), "years": scenario.years,
        "build_seconds": t1 - t0, "run_seconds": t2 - t1,
        "rows": len(rows["student_years"] if isinstance(rows, dict) else rows),
        "rss_before_bytes": before, "run_peak_rss_bytes": run_peak,
        "state_bytes": int(state)}))


def measure_size(students: int, reference_path: Path, tmp: Path) -> dict:
    spec = tmp / f"spec-{students}.json"
    result = tmp / f"result-{students}.json"
    spec.write_text(json.dumps({"scenario": scaling_scenario(students),
                                "reference": str(reference_path), "result": str(result)}))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", spec])
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the {students}-student run failed (status {proc.returncode})")
    out = json.loads(result.read_text())
    n = out["students"]
    out["requested"] = students
    out["peak_rss_bytes"] = _maxrss_bytes(usage.ru_maxrss)
    if out["run_peak_rss_bytes"] is None:  # no /proc: the whole child's peak
        out["rss_before_bytes"] = 0
        out["run_peak_rss_bytes"] = out["peak_rss_bytes"]
    out["bytes_per_student"] = (out["run_peak_rss_bytes"] - out["rss_before_bytes"]) / n
    out["state_bytes_per_student"] = out["state_bytes"] / n
    out["seconds_per_year"] = out["run_seconds"] / out["years"]
    out["microseconds_per_student_year"] = 1e6 * out["seconds_per_year"] / n
    return out


def measure_size_best(students: int, reference_path: Path, tmp: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` runs (least disturbed by other load); every time kept."""
    tries = [measure_size(students, reference_path, tmp) for _ in range(repeat)]
    best = dict(min(tries, key=lambda r: r["run_seconds"]))
    best["all_run_seconds"] = [r["run_seconds"] for r in tries]
    return best


def bench_scaling(sizes: list[int], repeat: int = 1) -> dict:
    from sim.config.scenario import validate_scenario
    from sim.district.reference import state_reference

    sizes = sorted(sizes)
    with tempfile.TemporaryDirectory(prefix="plsim-bench-scaling-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        reference = state_reference(validate_scenario(scaling_scenario(sizes[0]), "<scaling>"))
        ref_seconds = time.perf_counter() - t0
        ref_path = tmp / "reference.pickle"
        ref_path.write_bytes(pickle.dumps(reference))
        rows = []
        for s in sizes:
            rows.append(measure_size_best(s, ref_path, tmp, repeat))
            print(f"  {rows[-1]['students']:>9,} students: {rows[-1]['run_seconds']:.1f} s",
                  file=sys.stderr, flush=True)
    return {"rows": rows, "reference_seconds": ref_seconds, **linearity(rows),
            "load_average_after": os.getloadavg()[0]}


def linearity(rows: list[dict]) -> dict:
    """Log-log slopes of the run time against students (1 = linear)."""
    pts = [(r["students"], r["run_seconds"]) for r in rows]
    asked = [r["requested"] for r in rows]
    slopes = [math.log(t2 / t1) / math.log(n2 / n1)
              for (n1, t1), (n2, t2) in zip(pts, pts[1:], strict=False)]
    big = [pt for pt, a in zip(pts, asked, strict=True) if a >= 10_000] or pts
    if len(big) >= 2:
        xs = [math.log(n) for n, _ in big]
        ys = [math.log(t) for _, t in big]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        fit = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
               / sum((x - mx) ** 2 for x in xs))
    else:
        fit = float("nan")
    return {"consecutive_slopes": slopes, "slope_from_10000": fit,
            "about_linear": bool(0.85 <= fit <= 1.15) if not math.isnan(fit) else None}


def format_scaling(res: dict) -> str:
    lines = ["One run: personalized arm (floor 3), all grades in the program, 1 year, no "
             f"burn-in (reference computed once in {res['reference_seconds']:.1f} s, "
             "excluded)",
             f"{'students':>10} {'build s':>8} {'s/year':>8} {'us/stud-yr':>10} "
             f"{'child MB':>8} {'run MB':>7} {'B/student':>9} {'state B/st':>10}"]
    for r in res["rows"]:
        lines.append(f"{r['students']:>10,} {r['build_seconds']:>8.2f} "
                     f"{r['seconds_per_year']:>8.2f} {r['microseconds_per_student_year']:>10.1f} "
                     f"{r['peak_rss_bytes'] / 2**20:>8.0f} "
                     f"{(r['run_peak_rss_bytes'] - r['rss_before_bytes']) / 2**20:>7.0f} "
                     f"{r['bytes_per_student']:>9.0f} "
                     f"{r['state_bytes_per_student']:>10.0f}")
    lines.append("child MB: the child's ru_maxrss (imports included); run MB: its peak RSS "
                 "during build + run above its RSS before; B/student = run MB / students")
    slopes = ", ".join(f"{s:.2f}" for s in res["consecutive_slopes"])
    lines.append(f"log-log slope of time vs students: consecutive {slopes}; fit from 10,000: "
                 f"{res['slope_from_10000']:.2f} (about linear: {res['about_linear']}); "
                 f"1-min load average after: {res['load_average_after']:.2f}")
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP, help="sweep file to time")
    p.add_argument("--workers", type=int, default=2, help="pool processes and Dask workers")
    p.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES,
                   help="students per run (add 1000000 for the largest; several minutes)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per size; the fastest is reported (default 1)")
    p.add_argument("--skip-sweeps", action="store_true", help="only the scaling runs")
    p.add_argument("--skip-scaling", action="store_true", help="only the sweep timings")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_run(args.child)
        return 0
    if any(s < 1 for s in args.sizes) or args.workers < 1 or args.repeat < 1:
        p.error("--sizes, --workers and --repeat must be >= 1")
    results: dict = {}
    if not args.skip_sweeps:
        results["sweeps"] = bench_sweeps(args.sweep.resolve(), args.workers)
        if not args.json:
            print(format_sweeps(results["sweeps"]), flush=True)
    if not args.skip_scaling:
        results["scaling"] = bench_scaling(args.sizes, args.repeat)
        if not args.json:
            print(("\n" if "sweeps" in results else "") + format_scaling(results["scaling"]))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
