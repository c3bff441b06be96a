"""The run contract: ``run(scenario) -> Results``, used by notebooks, tests and sweeps;
``run_to_directory``, used by ``plsim run``, streams the same tables to disk.

Each (replicate, arm) is one task: a fresh ``District`` seeded from the
scenario seed and the replicate number, so every arm of a replicate sees the
same students and the same random streams (common random numbers), and a
task gives the same rows whichever process runs it: serially, in a local
process pool, or on a Dask cluster (``map_unordered``, shared with sweeps).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import mesa
import pandas as pd

from sim.config.scenario import ScenarioError
from sim.district.model import District
from sim.district.reference import StateReference, state_reference
from sim.engine.random_streams import replicate_seed
from sim.experiments.storage import TABLES, RunParts, StoredRun


@dataclass
class Results:
    """Tables of one scenario run."""

    scenario: object
    student_years: pd.DataFrame
    reference: StateReference
    seeds: dict = field(default_factory=dict)
    teacher_years: pd.DataFrame = field(default_factory=pd.DataFrame)
    school_years: pd.DataFrame = field(default_factory=pd.DataFrame)

    # the reading interface shared with ``StoredRun`` (a run streamed to disk)
    def frames(self, name: str, columns: list[str] | None = None):
        """The table ``name`` in one piece (``StoredRun`` gives one per part)."""
        t = getattr(self, name)
        yield t if columns is None else t[columns]

    def columns(self, name: str) -> list[str]:
        return list(getattr(self, name).columns)

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return next(self.frames(name, columns))

    def rows(self, name: str) -> int:
        return len(getattr(self, name))

    def write_parquet(self, name: str, target) -> None:
        getattr(self, name).to_parquet(target, index=False)


def run_arm(scenario, arm_index: int, replicate: int, reference=None) -> dict[str, pd.DataFrame]:
    """All years of one arm in one replicate: its student, teacher and school tables."""
    arm = scenario.arms[arm_index]
    model = District(scenario, arm, replicate,
                     reference=reference or state_reference(scenario))
    try:
        return model.run()
    finally:
        forget_model(model)


def forget_model(model) -> None:
    """Let a finished model be freed.

    Mesa 3.3's ``Agent`` keeps each model's agent-id counter in a class-level
    dict keyed by the model (``Agent._ids``), so every model ever built stays
    alive with all its arrays: a long-lived worker (a pool process, a Dask
    worker, a notebook) would grow by one district per task. Dropping the
    model's entry once it has run keeps memory bounded by the runs in flight.
    """
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)


def arm_task(task) -> tuple[tuple[int, int], dict[str, pd.DataFrame]]:
    """One (replicate, arm): ``((replicate, arm index), tables)``, arm as a categorical of
    every arm's label (so the parts of a run concatenate into the whole run's tables).

    ``task`` is ``(scenario, arm index, replicate, reference)``; a module-level
    function, so pools and Dask workers can run it.
    """
    scenario, arm_index, replicate, reference = task
    tables = run_arm(scenario, arm_index, replicate, reference)
    gc.collect()  # the district's arrays sit in reference cycles (agents <-> model): free now
    labels = [a.label for a in scenario.arms]
    for t in tables.values():
        t["arm"] = pd.Categorical(t["arm"], categories=labels)
    return (replicate, arm_index), tables


def arm_tasks(scenario, reference, skip=frozenset()) -> list[tuple]:
    """Every (replicate, arm) task not in ``skip``, replicate by replicate, arms in order."""
    return [(scenario, a, r, reference) for r in range(scenario.replicates)
            for a in range(len(scenario.arms)) if (r, a) not in skip]


def pool_context():
    """Fork worker processes on Linux: they start at once and inherit the imported
    package and the cached statewide reference. (Importing mesa switches Python's
    default to "spawn", which re-imports everything in every worker.)"""
    return multiprocessing.get_context("fork") if sys.platform == "linux" else None


def resolve_workers(workers: int | None) -> int:
    """``None`` or 1: serial; 0: all cores; otherwise that many processes."""
    if workers is None:
        return 1
    if workers == 0:
        return os.cpu_count() or 1
    return max(1, workers)


def run_seeds(scenario) -> dict:
    """The scenario seed and each replicate's ``SeedSequence`` (entropy, spawn key)."""
    return {"seed": scenario.seed,
            "replicate_entropy": {r: str(replicate_seed(scenario.seed, r).entropy)
                                  for r in range(scenario.replicates)},
            "replicate_spawn_key": {r: list(replicate_seed(scenario.seed, r).spawn_key)
                                    for r in range(scenario.replicates)}}


def run(scenario, workers: int | None = 1, progress: bool = False,
        scheduler: str | None = None,
        on_task: Callable[[int, int], None] | None = None) -> Results:
    """Run every arm and replicate of a scenario, keeping every table in memory.

    For runs too large for memory, ``run_to_directory`` streams each arm x
    replicate to disk instead (same tables).

    Args:
        scenario: a validated ``Scenario``.
        workers: processes (1 = serial, 0 = all cores). Results do not depend on it.
        progress: show a progress bar (tqdm) on stderr.
        scheduler: address of a Dask scheduler (then ``workers`` is ignored).
        on_task: called as ``on_task(done, total)`` (arm-replicates) after each one
            finishes (the app's progress bar); an exception it raises stops the run: the
            arm-replicates not yet started are cancelled and the exception propagates.
    """
    reference = state_reference(scenario)
    tasks = arm_tasks(scenario, reference)
    bar = progress_bar(len(tasks), progress)
    parts = {}
    try:
        for key, tables in map_unordered(arm_task, tasks, min(resolve_workers(workers),
                                                              len(tasks)), scheduler):
            parts[key] = tables
            bar.update()
            if on_task is not None:
                on_task(len(parts), len(tasks))
    finally:
        bar.close()
    ordered = [parts[k] for k in sorted(parts)]
    labels = [a.label for a in scenario.arms]
    tables = {}
    for name in TABLES:
        t = pd.concat([p[name] for p in ordered], ignore_index=True)
        t["arm"] = pd.Categorical(t["arm"], categories=labels)
        tables[name] = t
    return Results(scenario, tables["student_years"], reference, run_seeds(scenario),
                   tables["teacher_years"], tables["school_years"])


def run_to_directory(scenario, out, workers: int | None = 1, scheduler: str | None = None,
                     resume: bool = False, progress: bool = False,
                     source: str = "<scenario>") -> StoredRun:
    """Run every arm x replicate, writing each to disk as it finishes (see ``RunParts``).

    Memory holds only the runs in flight, never the whole run. With
    ``resume``, finished parts in ``out`` are kept and only the others run;
    a non-empty ``out`` without it is refused (``ScenarioError``).

    Returns:
        The stored run, for ``sim.experiments.output.write_results``; or None
        when ``out`` already holds this run, finished (resume of a complete run).
    """
    parts = RunParts.open(out, scenario, resume, source)
    if parts is None:
        return None
    reference = state_reference(scenario)
    done = parts.finished()
    tasks = arm_tasks(scenario, reference, skip=done)
    total = scenario.replicates * len(scenario.arms)
    bar = progress_bar(total, progress, initial=total - len(tasks))
    try:
        for key, tables in map_unordered(arm_task, tasks, min(resolve_workers(workers),
                                                              max(len(tasks), 1)), scheduler):
            parts.write(key, tables)
            bar.update()
    finally:
        bar.close()
    return StoredRun(scenario, reference, run_seeds(scenario), parts,
                     ran=len(tasks), skipped=total - len(tasks))


# --- executing tasks: serial, a local process pool, or a Dask cluster --------------------
def map_unordered(fn, tasks, workers: int = 1, scheduler: str | None = None) -> Iterator:
    """``fn(task)`` for every task, yielded as each finishes (in any order).

    Serial when ``workers`` <= 1; else a pool of that many forked processes
    (0 = all cores); on the Dask cluster at ``scheduler`` when given. At most
    twice as many tasks as workers are in flight, so memory holds a bounded
    number of results whatever the number of tasks. Dask workers are
    long-lived processes: the package stays imported and per-process caches
    (the statewide reference) stay warm between tasks.
    """
    if scheduler:
        yield from _dask_map(fn, tasks, scheduler)
        return
    n = resolve_workers(workers)
    if n <= 1:
        for task in tasks:
            yield fn(task)
        return
    with ProcessPoolExecutor(max_workers=n, mp_context=pool_context()) as pool:
        in_flight = set()
        try:
            for task in tasks:
                in_flight.add(pool.submit(fn, task))
                if len(in_flight) >= 2 * n:
                    yield from _finished(in_flight)
            while in_flight:
                yield from _finished(in_flight)
        except BaseException:  # stopped early (or closed): drop the tasks not yet started
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _finished(in_flight: set) -> Iterator:
    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
    for fut in done:
        in_flight.discard(fut)
        yield fut.result()


def _dask_map(fn, tasks, address: str) -> Iterator:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise ScenarioError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                            f"({exc}); finished runs are kept, use --resume") from None
    with client:
        limit = 2 * max(1, sum(client.nthreads().values()))
        pending = as_completed()
        for task in tasks:
            pending.add(client.submit(fn, task, pure=False))
            if pending.count() >= limit:
                yield from _drain(pending, keep=limit - 1)
        yield from _drain(pending, keep=0)


def _drain(pending, keep: int) -> Iterator:
    while pending.count() > keep:
        yield next(pending).result()


def progress_bar(total: int, enabled: bool, desc: str = "arm-replicates", initial: int = 0):
    """A tqdm progress bar on stderr (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="run", disable=not enabled,
                dynamic_ncols=True)
