"""``plsim bench``'s rates for the runs researchers make, in CPU-seconds (issue 28).

* **A shipped scenario end to end** (``end_to_end``): ``plsim run
  scenarios/floor_strategies.toml --replicates 2 --workers 1 --no-report`` in a child
  process, as the shared check ``perf-throughput`` runs it: the whole process (start,
  statewide reference, item bank, each replicate's spin-up, every arm, the tables
  written), with an empty cache folder of its own, so nothing computed earlier is
  reused (the compiled kernels excepted: numba's cache). Reported student-days are
  the sum of ``days_present`` over every student-year it writes (the spin-up's years
  are not written); CPU-seconds are the child's user plus system time
  (``RUSAGE_CHILDREN``, what ``/usr/bin/time`` reports).
* **A Sobol sweep** (``sobol_cost``): the cost of a 1,000-sample Sobol analysis of
  ``scenarios/sweep_floor_sobol.toml``'s design (1,000 x (D + 2) = 5,000 points x 2
  replicates = 10,000 runs of both arms), measured on a few of its runs in a fresh
  process: SALib's Sobol sampler takes powers of two, so the design drawn is the
  1,024-sample one (10,240 runs), and ``runs`` of them are measured, half the samples
  spaced evenly through it, each with both replicates. What a sweep does once (the
  process's start, the design and its folder, the statewide reference, each
  replicate's spin-up, shared by every sample) is measured once; each measured run
  includes writing its sealed outcome part. The estimate: the once-only CPU-seconds
  plus 10,000 times the measured runs' mean, in core-minutes (the sweep's report,
  ``--no-report``'s part, is left out).

Both are CPU-seconds on one core (the BLAS on one thread, as every run sets it), so
another job on the machine hardly moves them, where it would move wall time.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import sim
from sim.config.scenario import ScenarioError

E2E_SCENARIO = "floor_strategies.toml"
E2E_REPLICATES = 2
E2E_TIMEOUT_S = 1800  # the shared check's limit
SWEEP_FILE = "sweep_floor_sobol.toml"
SWEEP_SAMPLES = 1_000  # the analysis the goal prices (Sobol base samples)
SWEEP_DRAWN = 1_024  # the power of two SALib's Sobol sampler takes, nearest 1,000
DEFAULT_SWEEP_RUNS = 8  # runs measured by default (an even number: both replicates)


def scenario_path(name: str) -> Path:
    """A shipped scenario file; the bench runs from a source checkout."""
    path = Path(sim.__file__).resolve().parents[1] / "scenarios" / name
    if not path.is_file():
        raise ScenarioError(f"{path}: the bench needs this scenario file (plsim bench runs "
                            "from a source checkout)")
    return path


# --- a shipped scenario, end to end ----------------------------------------------------
def children_cpu_seconds() -> float:
    """User plus system CPU-seconds of this process's finished children so far."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def end_to_end(replicates: int = E2E_REPLICATES, scenario: str = E2E_SCENARIO,
               settings: tuple[str, ...] = ()) -> dict:
    """``floor_strategies`` at ``replicates`` replicates on one core, the whole process.

    ``scenario`` (a shipped file's name) and ``settings`` (``--set PATH=VALUE``
    overrides) exist for the tests' small runs; the bench uses the defaults.

    Returns ``scenario``, ``replicates``, ``reported_student_days`` (the sum of
    ``days_present`` over the student-years written), ``cpu_seconds`` (the child's
    user + system), ``wall_seconds`` and ``student_days_per_cpu_s``.
    """
    import pandas as pd

    path = scenario_path(scenario)
    with tempfile.TemporaryDirectory(prefix="plsim-bench-") as tmp:
        out = Path(tmp) / "run"
        env = {**os.environ, "PLSIM_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("PLSIM_NO_CACHE", None)
        command = [sys.executable, "-m", "sim", "run", str(path), "--out", str(out),
                   "--replicates", str(replicates), "--no-report", "--workers", "1",
                   *(f"--set={s}" for s in settings)]
        cpu0, t0 = children_cpu_seconds(), time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=E2E_TIMEOUT_S, check=False)
        wall, cpu = time.perf_counter() - t0, children_cpu_seconds() - cpu0
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-2:])
            raise RuntimeError(f"plsim run {path.name} failed ({done.returncode}): {tail}")
        days = pd.read_parquet(out / "student_years.parquet", columns=["days_present"])
        reported = float(days["days_present"].sum())
    return {"scenario": path.stem, "replicates": replicates, "workers": 1,
            "reported_student_days": reported, "cpu_seconds": cpu, "wall_seconds": wall,
            "student_days_per_cpu_s": reported / cpu}


# --- a Sobol sweep, priced from a few runs ---------------------------------------------
def measured_runs(runs_per_sample: int, samples: int, replicates: int,
                  runs: int) -> list[int]:
    """Run ids of ``runs`` runs spread through the design: ``runs / replicates`` design
    points evenly spaced over ``samples x runs_per_sample`` points (the middle of each
    stretch), each with every replicate (run id = point x replicates + replicate)."""
    points = max(1, runs // replicates)
    total = samples * runs_per_sample
    chosen = ((np.arange(points) + 0.5) * total / points).astype(int)
    return [int(p) * replicates + r for p in chosen for r in range(replicates)]


def sobol_cost(runs: int = DEFAULT_SWEEP_RUNS) -> dict:
    """Core-minutes of a 1,000-sample Sobol of ``sweep_floor_sobol``'s design, from
    ``runs`` of its runs (see the module's docstring). Run it in a fresh process: the
    process's own start counts as once-only work.

    Returns ``sweep``, ``samples`` (1,000), ``runs_in_analysis`` (10,000),
    ``design_drawn`` (1,024 samples, its runs), ``runs_measured`` and their ids,
    ``once_cpu_seconds``, ``run_cpu_seconds`` (each measured run), ``mean_run_cpu_s``,
    and ``core_minutes``.
    """
    from sim.experiments import sweeps

    with (tempfile.TemporaryDirectory(prefix="plsim-bench-") as tmp,
          threadpool_limits(limits=1, user_api="blas"),
          fresh_cache(Path(tmp) / "cache")):
        sweep, base = sweeps.load_sweep(scenario_path(SWEEP_FILE))
        full = sweep.model_copy(update={"samples": SWEEP_DRAWN})
        out = Path(tmp) / "sweep"
        exp = sweeps.prepare(full, base, out, False, "<bench>")
        fingerprint = sweeps.sweep_fingerprint(full, base)
        per_sample = len(exp) // (SWEEP_DRAWN * full.replicates)
        ids = measured_runs(per_sample, SWEEP_DRAWN, full.replicates, runs)
        _spin_up_once(full, base, exp)
        once = time.process_time()
        seconds = []
        chosen = set(ids)
        for task in sweeps.tasks(full, base, exp, set(exp.run_id) - chosen):
            t0 = time.process_time()
            run_id, frame = sweeps._run_task(task)
            sweeps.write_part(out, run_id, frame, fingerprint)
            seconds.append(time.process_time() - t0)
    total_runs = SWEEP_SAMPLES * per_sample * full.replicates
    mean = float(np.mean(seconds))
    return {"sweep": Path(SWEEP_FILE).stem, "samples": SWEEP_SAMPLES,
            "runs_in_analysis": total_runs, "design_drawn": {
                "samples": SWEEP_DRAWN, "runs": int(len(exp))},
            "runs_measured": len(seconds), "run_ids": ids, "once_cpu_seconds": once,
            "run_cpu_seconds": seconds, "mean_run_cpu_s": mean,
            "core_minutes": (once + total_runs * mean) / 60}


@contextlib.contextmanager
def fresh_cache(folder: Path):
    """This process's disk cache in ``folder`` (empty: nothing earlier is reused) for
    the block's duration; the environment restored after."""
    old = {k: os.environ.get(k) for k in ("PLSIM_CACHE_DIR", "PLSIM_NO_CACHE")}
    os.environ["PLSIM_CACHE_DIR"] = str(folder)
    os.environ.pop("PLSIM_NO_CACHE", None)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _spin_up_once(sweep, base: dict, exp) -> None:
    """The statewide reference and each replicate's spin-up, as a sweep's first runs
    compute them (shared by every sample: the sweep varies only arm fields)."""
    from sim.district.reference import state_reference
    from sim.district.spinup import spun_up
    from sim.experiments import sweeps

    row = exp[[f"x:{p.path}" for p in sweep.parameters]].to_numpy(float)[0]
    scenario = sweeps.scenario_for(sweep, base, row)
    reference = state_reference(scenario)
    for replicate in range(sweep.replicates):
        spun_up(scenario, replicate, reference)



def rate_lines(e2e: dict | None, sweep: dict | None) -> list[str]:
    """The end-to-end and sweep measurements in words (nothing for one not run)."""
    lines = []
    if e2e:
        lines += ["", f"End to end ({e2e['scenario']}, {e2e['replicates']} replicates, one "
                      "core, the whole process, an empty cache):",
                  f"  {e2e['reported_student_days'] / 1e6:.1f}M reported student-days in "
                  f"{e2e['cpu_seconds']:.1f} CPU-s ({e2e['wall_seconds']:.0f} s wall): "
                  f"{e2e['student_days_per_cpu_s'] / 1e6:.2f}M per CPU-second"]
    if sweep:
        runs = sweep["run_cpu_seconds"]
        lines += ["", f"Sweep: a {sweep['samples']:,}-sample Sobol of {sweep['sweep']} "
                      f"({sweep['runs_in_analysis']:,} runs), from {len(runs)} runs spread "
                      f"through the {sweep['design_drawn']['samples']:,}-sample design:",
                  f"  once: {sweep['once_cpu_seconds']:.1f} CPU-s (start, reference, "
                  f"spin-ups); a run: {sweep['mean_run_cpu_s']:.3f} CPU-s "
                  f"({min(runs):.3f}-{max(runs):.3f}); estimate "
                  f"{sweep['core_minutes']:.1f} core-minutes"]
    return lines
