"""A study's last step: candidates near the front re-run until their place is decided.

After the search, every candidate and shipped strategy has the spec's ``replicates``;
with few replicates a front read off the means calls candidates non-dominated, and
strategies beaten, on luck. ``refine`` races them (``sim.analysis.noisy_front.race``):
points whose place on the front is undecided, and the points that may dominate them, get
more common replicates (replicate ``r`` is the same students and streams for every
point) until decided, ``refine_max_replicates`` or the spec's ``refine_budget`` of extra
runs is spent. Each extra run is a sealed part under ``refine/`` (``c-NNNNNN-rRRR`` for a
candidate, ``s-NNNNNN-rRRR`` for a strategy), so ``--resume`` replays the race without
running it again.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.noisy_front import Race, RaceRules, race
from sim.experiments.executor import Executor
from sim.experiments.optimize_spec import OptimizeSpec
from sim.experiments.storage import Seals, atomic_write

PART = re.compile(r"([cs])-(\d{6})-r(\d{3})\.parquet")


@dataclass(frozen=True)
class Point:
    """What one point of the race runs: its scenario, the spec its objectives are read
    with (a strategy reads its own arm), the arm read by default, and the years."""

    scenario: Any
    spec: OptimizeSpec
    arm: str
    years: int


@dataclass(frozen=True)
class Store:
    """The ``refine/`` parts of a study (folder ``out``, fingerprint ``fp``)."""

    out: Path
    fp: str

    def path(self, key: tuple[str, int], r: int) -> Path:
        return self.out / "refine" / f"{key[0]}-{key[1]:06d}-r{r:03d}.parquet"

    def read(self, key: tuple[str, int], r: int) -> np.ndarray | None:
        path = self.path(key, r)
        if not path.exists() or not Seals(self.out, self.fp).check(f"refine-{path.stem}",
                                                                   [path]):
            return None
        return pd.read_parquet(path)["value"].to_numpy(float)

    def write(self, key: tuple[str, int], r: int, values: list[float]) -> None:
        path = self.path(key, r)
        path.parent.mkdir(exist_ok=True)
        frame = pd.DataFrame({"value": np.asarray(values, float)})
        atomic_write(path, lambda p: frame.to_parquet(p, index=False))
        Seals(self.out, self.fp).seal(f"refine-{path.stem}", [path])


def rules_of(spec: OptimizeSpec) -> RaceRules:
    """The spec's racing budget (default: one generation's runs; at most four times the
    replicates a point, and at most 100)."""
    budget = spec.refine_budget if spec.refine_budget is not None \
        else spec.population * spec.replicates
    most = spec.refine_max_replicates or min(4 * spec.replicates, 100)
    return RaceRules(budget=budget, max_replicates=max(most, spec.replicates),
                     step=max(1, spec.replicates), seed=spec.seed)


def refine(reps: dict[Hashable, np.ndarray], points: dict[Hashable, Point],
           spec: OptimizeSpec, executor: Executor, store: Store, task) -> Race:
    """Race the points (``reps``: each point's replicate values so far); ``task`` is the
    study's run function ``(key, scenario, replicate, spec, arm, years) -> (key, r,
    values)``."""
    def run_more(batch):
        got: dict[Hashable, dict[int, np.ndarray]] = {k: {} for k, _ in batch}
        todo = []
        for key, rs in batch:
            for r in rs:
                stored = store.read(key, r)
                if stored is not None:
                    got[key][r] = stored
                else:
                    p = points[key]
                    todo.append((key, p.scenario, r, p.spec, p.arm, p.years))
        for key, r, vals in executor.map_unordered(task, todo):
            store.write(key, r, vals)
            got[key][r] = np.asarray(vals, float)
        return {key: np.vstack([got[key][r] for r in rs]) for key, rs in batch}

    maximize = [o.maximize for o in spec.objectives]
    return race(reps, maximize, run_more, rules_of(spec))


def replicate_values(spec: OptimizeSpec, row: dict) -> np.ndarray:
    """A row's stored replicate values (replicates x objectives)."""
    return np.array([[float(row[f"{o.name}_r{r}"]) for o in spec.objectives]
                     for r in range(spec.replicates)])
