"""The run contract: ``run(scenario) -> Results``, used by notebooks, tests and sweeps;
``run_to_directory``, used by ``plsim run``, streams the same tables to disk.

Each (replicate, arm) is one task: a fresh ``District`` seeded from the
scenario seed and the replicate number, started from the replicate's spun-up
state (``district.spinup``: computed once per replicate, cached, the same for
every arm), so every arm of a replicate sees the
same students and the same random streams (common random numbers), and a
task gives the same rows whichever process runs it: serially, in a local
process pool, or on a Dask cluster (``map_unordered``, shared with sweeps).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field

import mesa
import pandas as pd
from threadpoolctl import threadpool_limits

from sim.analysis.summaries import part_means, teacher_records
from sim.config.scenario import ScenarioError
from sim.district.model import District
from sim.district.reference import StateReference, state_reference
from sim.district.spinup import spun_up
from sim.engine.random_streams import replicate_seed
from sim.experiments.executor import (  # noqa: F401 (map_unordered: shared with sweeps)
    Executor,
    map_unordered,
    pool_context,
    resolve_workers,
)
from sim.experiments.run_parts import RunParts, StoredRun
from sim.experiments.storage import TABLES


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
    """All years of one arm in one replicate: its student, teacher and school tables.

    The BLAS runs on one thread here: a run's products (the tests' knowledge product)
    are small, and OpenBLAS's threads spun on every core for them (sweep_quick with one
    worker: 18.4 s wall and 32.3 CPU-s, against 11.9 s and 11.9 CPU-s on one thread),
    which also left a second worker no core to run on. The sums are exact in any order
    (docs/model.md §7.12), so the tables do not depend on it."""
    arm = scenario.arms[arm_index]
    reference = reference or state_reference(scenario)
    with threadpool_limits(limits=1, user_api="blas"):
        start = spun_up(scenario, replicate, reference)  # once per replicate, shared by arms
        model = District(scenario, arm, replicate, reference=reference, start=start)
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


def stored_arm_task(task) -> tuple[tuple[int, int], dict[str, pd.DataFrame], tuple]:
    """``arm_task`` and the part's summary means and teacher records (``part_means``,
    ``teacher_records``), made in the worker that ran it: the final summaries then
    wait on no serial pass over every part."""
    key, tables = arm_task(task)
    return key, tables, (part_means(tables["student_years"]),
                         teacher_records(tables["teacher_years"]))


def arm_tasks(scenario, reference, skip=frozenset()) -> list[tuple]:
    """Every (replicate, arm) task not in ``skip``, replicate by replicate, arms in order."""
    return [(scenario, a, r, reference) for r in range(scenario.replicates)
            for a in range(len(scenario.arms)) if (r, a) not in skip]


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
    total = scenario.replicates * len(scenario.arms)
    done = parts.finished()  # every part's checksums verified: damaged ones are redone
    ran, means, records = 0, {}, {}
    bar = progress_bar(total, progress, initial=len(done))
    try:
        with Executor(workers, scheduler) as executor:
            for _ in range(3):  # again for any part damaged before the tables are built
                tasks = arm_tasks(scenario, reference, skip=done)
                executor.workers = min(executor.workers, max(len(tasks), 1))
                for key, tables, made in executor.map_unordered(stored_arm_task, tasks):
                    parts.write(key, tables)
                    means[key], records[key] = made
                    ran += 1
                    bar.update()
                done = parts.finished()
                if len(done) == total:
                    break
            else:
                raise ScenarioError(f"{source}: --out {out}: parts keep failing their "
                                    "checksums after being written (a failing disk?)")
    finally:
        bar.close()
    return StoredRun(scenario, reference, run_seeds(scenario), parts,
                     ran=ran, skipped=total - ran, means=means, teacher_records=records)


def progress_bar(total: int, enabled: bool, desc: str = "arm-replicates", initial: int = 0):
    """A tqdm progress bar on stderr (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="run", disable=not enabled,
                dynamic_ncols=True)
