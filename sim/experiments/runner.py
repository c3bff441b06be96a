"""The run contract: ``run(scenario) -> Results``, used by the CLI, notebooks and sweeps.

Each (replicate, arm) is one task: a fresh ``District`` seeded from the
scenario seed and the replicate number, so every arm of a replicate sees the
same students and the same random streams (common random numbers), and a
task gives the same rows whichever process runs it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from sim.district.model import District
from sim.district.reference import StateReference, state_reference
from sim.engine.random_streams import replicate_seed

TABLES = ("student_years", "teacher_years", "school_years")


@dataclass
class Results:
    """Tables of one scenario run."""

    scenario: object
    student_years: pd.DataFrame
    reference: StateReference
    seeds: dict = field(default_factory=dict)
    teacher_years: pd.DataFrame = field(default_factory=pd.DataFrame)
    school_years: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_arm(scenario, arm_index: int, replicate: int, reference=None) -> dict[str, pd.DataFrame]:
    """All years of one arm in one replicate: its student, teacher and school tables."""
    arm = scenario.arms[arm_index]
    model = District(scenario, arm, replicate,
                     reference=reference or state_reference(scenario))
    return model.run()


def _task(args):
    scenario, arm_index, replicate, reference = args
    return run_arm(scenario, arm_index, replicate, reference)


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


def run(scenario, workers: int | None = 1, progress: bool = False,
        on_task: Callable[[int, int], None] | None = None) -> Results:
    """Run every arm and replicate of a scenario.

    Args:
        scenario: a validated ``Scenario``.
        workers: processes (1 = serial, 0 = all cores). Results do not depend on it.
        progress: show a progress bar (tqdm) on stderr.
        on_task: called as ``on_task(done, total)`` (arm-replicates) after each one
            finishes (the app's progress bar); an exception it raises stops the run: the
            arm-replicates not yet started are cancelled and the exception propagates.
    """
    reference = state_reference(scenario)
    tasks = [(scenario, a, r, reference) for r in range(scenario.replicates)
             for a in range(len(scenario.arms))]
    n_workers = min(resolve_workers(workers), len(tasks))
    parts = []
    stream = _iterate(tasks, n_workers, progress)
    try:
        for part in stream:
            parts.append(part)
            if on_task is not None:
                on_task(len(parts), len(tasks))
    finally:
        stream.close()
    labels = [a.label for a in scenario.arms]
    tables = {}
    for name in TABLES:
        t = pd.concat([p[name] for p in parts], ignore_index=True)
        t["arm"] = pd.Categorical(t["arm"], categories=labels)
        tables[name] = t
    rows = tables["student_years"]
    seeds = {"seed": scenario.seed,
             "replicate_entropy": {r: str(replicate_seed(scenario.seed, r).entropy)
                                   for r in range(scenario.replicates)},
             "replicate_spawn_key": {r: list(replicate_seed(scenario.seed, r).spawn_key)
                                     for r in range(scenario.replicates)}}
    return Results(scenario, rows, reference, seeds, tables["teacher_years"],
                   tables["school_years"])


def _iterate(tasks, n_workers: int, progress: bool):
    bar = progress_bar(len(tasks), progress)
    try:
        if n_workers <= 1:
            for t in tasks:
                yield _task(t)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=pool_context()) as pool:
                try:
                    for frame in pool.map(_task, tasks):
                        yield frame
                        bar.update()
                except BaseException:  # stopped early: drop the tasks not yet started
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()


def progress_bar(total: int, enabled: bool, desc: str = "arm-replicates", initial: int = 0):
    """A tqdm progress bar on stderr (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="run", disable=not enabled,
                dynamic_ncols=True)
