"""How parallel a ``plsim run`` or ``plsim sweep`` is, in CPU-seconds (docs/performance.md).

Runs one plsim command in this process with CPU timers (``time.process_time``, the
process's own CPU-seconds) on its phases: the parent's start (Python, the imports, the
plan, until the first run), the parent's work while the runs go on (writing each
finished part), the runs in each pool worker, the parent's final stage (tables,
summaries, manifest, report) and the figures drawn in workers. Then prints:

* one process: every phase's CPU-seconds added up, what one worker costs;
* the two-worker critical path: the parent's start and final stage, the busier
  worker's runs (or half of the runs and the parent's writing, whichever is more)
  and the busier figure worker's figures (a run's own, then its report's);
* their ratio: the speed-up two idle cores would give if a run cost the same
  CPU-seconds on either core alone or both together.

CPU-seconds, unlike wall time, hardly depend on what else the machine runs (they
grow a little when other processes share the caches), so this measures the
parallel structure on a shared machine, where a one-against-two-workers wall-time
comparison is meaningless. Run the command with ``--workers 2`` (local workers, forked:
they inherit the timers).

Usage::

    .venv/bin/python benchmarks/critical_path.py sweep scenarios/sweep_quick.toml \\
        --workers 2 --out /tmp/cp-sweep --quiet
    .venv/bin/python benchmarks/critical_path.py run scenarios/floor_strategies.toml \\
        --no-report --workers 2 --out /tmp/cp-floor --quiet
"""

from __future__ import annotations

import collections
import functools
import json
import os
import sys
import tempfile
import time

# (module, name, phase): the functions timed; a worker's runs and figures are told
# apart from the parent's work by the process that ran them
TIMED = (("sim.experiments.sweeps", "run_sweep", "pool"),
         ("sim.experiments.runner", "run_to_directory", "pool"),
         ("sim.experiments.sweeps", "_run_task", "run"),
         ("sim.experiments.runner", "arm_task", "run"),
         ("sim.analysis.figures", "draw_job", "figure"),
         ("sim.presentation.figures", "drawn_job", "figure"),
         ("sim.presentation.report", "report_figure", "report figure"))


def _timed(log: str, function, phase: str):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            record = {"pid": os.getpid(), "phase": phase, "cpu": time.process_time() - start,
                      "at": time.process_time()}
            with open(log, "a") as f:  # one short line: appends from processes do not mix
                f.write(json.dumps(record) + "\n")
    return timed


def instrument(log: str) -> None:
    """Wrap every ``TIMED`` function when its module is imported, by plsim itself (this
    script importing them would add their imports, matplotlib's say, to the start it
    measures); pool workers forked later inherit the wrapped functions and the hook."""
    def wrap(mod) -> None:
        for module, name, phase in TIMED:
            if module == mod.__name__ and hasattr(mod, name):  # (an older checkout may
                setattr(mod, name, _timed(log, getattr(mod, name), phase))  # lack one)

    for mod in [sys.modules[m] for m in {t[0] for t in TIMED} if m in sys.modules]:
        wrap(mod)
    sys.meta_path.insert(0, _AfterImport({t[0] for t in TIMED} - set(sys.modules), wrap))


class _AfterImport:
    """A meta path finder that calls ``then(module)`` once each of ``names`` is imported
    (it finds nothing itself: the other finders' spec, its loader wrapped)."""

    def __init__(self, names: set[str], then):
        self.names, self.then = names, then

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if finder is not self and find else None
            if spec is not None:
                break
        else:
            return None
        run, then = spec.loader.exec_module, self.then

        def exec_module(module):
            run(module)
            then(module)

        spec.loader.exec_module = exec_module  # a loader instance per module
        return spec


def critical_path(records: list[dict], parent: int, total: float) -> dict:
    """One process's CPU-seconds and the two-worker critical path from the records;
    ``total``: the parent's CPU-seconds at the end. A run's own figures and its report's
    are drawn by two pools, one after the other: each adds its busier worker."""
    pool = next(r for r in records if r["pid"] == parent and r["phase"] == "pool")
    runs, figures = collections.Counter(), collections.Counter()
    report = collections.Counter()
    for r in records:
        if r["pid"] == parent:
            continue
        phase = {"run": runs, "figure": figures, "report figure": report}.get(r["phase"])
        if phase is not None:
            phase[r["pid"]] += r["cpu"]
    start, writing = pool["at"] - pool["cpu"], pool["cpu"]
    final = total - pool["at"]
    work = sum(runs.values())
    one = start + writing + work + final + sum(figures.values()) + sum(report.values())
    two = (start + max(max(runs.values(), default=0.0), (work + writing) / 2) + final
           + max(figures.values(), default=0.0) + max(report.values(), default=0.0))
    return {"start": start, "writing": writing, "runs": sorted(runs.values(), reverse=True),
            "final": final, "figures": sorted(figures.values(), reverse=True),
            "report_figures": sorted(report.values(), reverse=True),
            "one_process": one, "two_workers": two, "ratio": one / two if two else float("nan")}


def main(argv: list[str]) -> int:
    from sim.cli import main as plsim

    handle, log = tempfile.mkstemp(prefix="plsim-critical-path-", suffix=".jsonl")
    os.close(handle)
    instrument(log)
    code = plsim(argv)
    total = time.process_time()
    with open(log) as f:
        records = [json.loads(line) for line in f]
    os.unlink(log)
    if not any(r["phase"] == "run" and r["pid"] != os.getpid() for r in records):
        print("no runs in pool workers: give --workers 2", file=sys.stderr)
        return 2
    cp = critical_path(records, os.getpid(), total)
    print(f"CPU-seconds: start {cp['start']:.2f}; parent while the runs go on "
          f"{cp['writing']:.2f}; runs by worker "
          + " ".join(f"{c:.2f}" for c in cp["runs"])
          + f"; final stage in the parent {cp['final']:.2f}; figures by worker "
          + (" ".join(f"{c:.2f}" for c in cp["figures"]) or "none")
          + "; report figures by worker "
          + (" ".join(f"{c:.2f}" for c in cp["report_figures"]) or "none"))
    print(f"one process {cp['one_process']:.2f} CPU-s, two-worker critical path "
          f"{cp['two_workers']:.2f}: {cp['ratio']:.2f}x")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
