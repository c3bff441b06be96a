"""PRIM (the patient rule induction method) for scenario discovery.

Given experiments ``x`` (one row per run, one column per varied input) and a
yes/no outcome ``y`` (the case of interest: "the program survives its
review"), PRIM looks for boxes of input space — a range per numeric input, a
set of values per categorical one — where the case of interest is dense
(Friedman and Fisher 1999; Bryant and Lempert 2010). Each box is reported
with

* **coverage**: share of all cases of interest that fall in the box (0-1);
* **density**: share of the box's runs that are cases of interest (0-1);
* **mass**: share of all runs in the box (0-1);

and its **peeling trajectory**, the sequence of ever smaller boxes PRIM went
through, which shows the trade-off between coverage and density.

Peeling and pasting follow Friedman and Fisher (1999). Peeling starts from the box
holding every run and, at each step, removes ``peel_alpha`` of the box's runs from
one side of one input (the runs below the ``peel_alpha`` quantile, or above the
``1 - peel_alpha`` one, of a numeric input; one category of a categorical input),
choosing the peel that leaves the highest box mean (density). When peels differ in
size (ties in a discrete input, a category), their criterion is Friedman and Fisher's
gain in mean per run removed, which is the same choice for equal peels (EMA
Workbench's "lenient1"). Peeling goes on, even through a step that lowers the mean,
until the next box would hold fewer runs than the minimum support (``mass_min`` of
all runs, and at least ``min_runs``): the *trajectory*. A box is chosen on it (the
highest coverage whose density reaches ``min_density``; when none does, the densest
box of at least the minimum support, flagged), then pasted: a run-quantile strip of
``paste_alpha`` is added back along a restricted input while that raises the box
mean. Later boxes are found the same way on the runs outside earlier ones.

Every bound is a data value (an input's value of some run, never an interpolated or
rounded quantile), so a box's written bounds select exactly its runs. A box with
fewer than ``min_runs`` runs or a mass under ``mass_min`` (possible only when the
data are that small) carries a warning (:meth:`PrimBox.support_warning`), and each
density a 95% Wilson interval.

It is a small, self-contained implementation on numpy because EMA Workbench brings
about 30 packages (platypus-opt, scikit-learn, statsmodels, seaborn, ...) for a few
hundred lines of algorithm, and its 2.5 series fails on pandas 3 integer columns.
Unlike the workbench, which peels to ``mass_min`` and pastes the last (smallest) box,
leaving the choice of a box to the user, :func:`find_boxes` picks one and pastes it.
``tests/test_discover.py`` checks it on planted boxes. On a noisy one (2,000 uniform
points in 5 inputs, a case of interest with probability 0.9 inside [0.2, 0.6] x [0.3,
0.8], 0.1 outside; seeds 0-4), this module's box has coverage 0.66-0.71 and density
0.81-0.87, restricts only the two planted inputs, with every bound within 0.05; EMA
Workbench 2.5.3 (same alphas and mass_min, its box of highest coverage at density >= 0.8
on its trajectory) has coverage 0.66-0.71 and density 0.82-0.84, restricts a noise input
in 4 of 5 seeds, and misses a bound by 0.066 in one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.analysis.shares import wilson

Limit = tuple[float, float] | frozenset
MIN_RUNS = 10  # fewest runs a box may hold (below: a small-sample warning)


@dataclass(frozen=True)
class Step:
    """One box on a peeling (or pasting) trajectory.

    Attributes:
        limits: per input, an inclusive (low, high) range or a frozenset of values.
        inside: mask over all runs: in this box and not in an earlier box.
        coverage, density, mass: shares (0-1), see the module docstring.
        restricted: inputs whose limits are narrower than the full data's.
        phase: "start", "peel" or "paste".
    """

    limits: dict[str, Limit]
    inside: np.ndarray
    coverage: float
    density: float
    mass: float
    restricted: tuple[str, ...]
    phase: str


@dataclass(frozen=True)
class PrimBox:
    """A box PRIM found: the chosen step of its trajectory, and the trajectory."""

    number: int
    chosen: int
    trajectory: list[Step] = field(repr=False)
    meets_density: bool = True
    min_runs: int = MIN_RUNS
    mass_min: float = 0.05

    @property
    def step(self) -> Step:
        return self.trajectory[self.chosen]

    @property
    def coverage(self) -> float:
        return self.step.coverage

    @property
    def density(self) -> float:
        return self.step.density

    @property
    def mass(self) -> float:
        return self.step.mass

    @property
    def n_runs(self) -> int:
        return int(self.step.inside.sum())

    @property
    def hits(self) -> int:
        """Cases of interest in the box."""
        return int(round(self.density * self.n_runs))

    def density_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the density (cases of interest among the box's runs)."""
        return wilson(self.hits, self.n_runs)

    def support_warning(self) -> str:
        """Words when the box is too small to trust (fewer than ``MIN_RUNS`` runs, or than
        ``min_runs`` when larger, or a mass under ``mass_min``), else ''."""
        least = max(self.min_runs, MIN_RUNS)
        if self.n_runs >= least and self.mass >= self.mass_min - 1e-12:
            return ""
        lo, hi = self.density_interval()
        return (f"small box: {self.n_runs} runs ({self.mass:.0%} of all), under the minimum "
                f"support of {least} runs and {self.mass_min:.0%} of the runs; its "
                f"density could be anywhere from {lo:.0%} to {hi:.0%} (95%)")

    def restrictions(self) -> dict[str, Limit]:
        """The limits of the restricted inputs only."""
        return {k: self.step.limits[k] for k in self.step.restricted}


class _Data:
    """Inputs split into numeric columns (float) and categorical ones (object)."""

    def __init__(self, x: pd.DataFrame, y: np.ndarray):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)} values")
        if len(x) == 0:
            raise ValueError("no runs to analyse")
        self.names = [str(c) for c in x.columns]
        self.numeric = {}
        self.categorical = {}
        for c, name in zip(x.columns, self.names, strict=True):
            col = x[c]
            if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
                self.categorical[name] = col.astype(str).to_numpy(object)
            else:  # integers too (the workbench's pandas-3 trouble with int64 avoided here)
                v = col.to_numpy(float)
                if np.isnan(v).any():
                    raise ValueError(f"input {name!r} has missing values")
                self.numeric[name] = v
        self.y = np.asarray(y, bool)
        self.n = self.y.size
        self.init = {**{k: (float(v.min()), float(v.max())) for k, v in self.numeric.items()},
                     **{k: frozenset(v) for k, v in self.categorical.items()}}

    def restricted(self, limits: dict[str, Limit]) -> tuple[str, ...]:
        return tuple(k for k in self.names if limits[k] != self.init[k])

    def in_limits(self, limits: dict[str, Limit], skip: str | None = None) -> np.ndarray:
        """Mask of the runs inside ``limits`` (ignoring input ``skip``)."""
        m = np.ones(self.n, bool)
        for k, lim in limits.items():
            if k == skip or lim == self.init[k]:
                continue
            if k in self.numeric:
                v = self.numeric[k]
                m &= (v >= lim[0]) & (v <= lim[1])
            else:
                m &= np.isin(self.categorical[k], list(lim))
        return m


def _lenient1(y_old: np.ndarray, y_new: np.ndarray) -> float:
    """Change in density per run removed (peeling) or added (pasting)."""
    dn = abs(y_old.size - y_new.size)
    if dn == 0 or y_new.size == 0:
        return 0.0
    return float((y_new.mean() - y_old.mean()) / dn)


def _peels(d: _Data, limits: dict[str, Limit], inside: np.ndarray, alpha: float):
    """Candidate boxes one peel smaller: (limits, inside) pairs."""
    for k in d.names:
        if k in d.numeric:
            v = d.numeric[k][inside]
            distinct = np.unique(v)
            if distinct.size < 2:
                continue
            lo, hi = limits[k]
            new_lo = float(np.quantile(v, alpha, method="higher"))
            if new_lo <= distinct[0]:
                new_lo = float(distinct[1])
            new_hi = float(np.quantile(v, 1 - alpha, method="lower"))
            if new_hi >= distinct[-1]:
                new_hi = float(distinct[-2])
            for lim in ((new_lo, hi), (lo, new_hi)):
                yield {**limits, k: lim}, inside & (d.numeric[k] >= lim[0]) & (
                    d.numeric[k] <= lim[1])
        else:
            present = sorted(set(d.categorical[k][inside]))
            if len(present) < 2:
                continue
            for cat in present:
                kept = frozenset(c for c in limits[k] if c != cat)
                yield {**limits, k: kept}, inside & (d.categorical[k] != cat)


def _pastes(d: _Data, limits: dict[str, Limit], remaining: np.ndarray, alpha: float):
    """Candidate boxes one paste larger along a restricted input."""
    for k in d.restricted(limits):
        others = remaining & d.in_limits(limits, skip=k)
        if k in d.numeric:
            v = d.numeric[k]
            lo, hi = limits[k]
            below, above = others & (v < lo), others & (v > hi)
            if below.any():
                new_lo = float(np.quantile(v[below], 1 - alpha, method="lower"))
                lim = (new_lo, hi)
                yield {**limits, k: lim}, others & (v >= new_lo) & (v <= hi)
            if above.any():
                new_hi = float(np.quantile(v[above], alpha, method="higher"))
                lim = (lo, new_hi)
                yield {**limits, k: lim}, others & (v >= lo) & (v <= new_hi)
        else:
            c = d.categorical[k]
            for cat in sorted(set(c[others]) - set(limits[k])):
                kept = frozenset({*limits[k], cat})
                yield {**limits, k: kept}, others & np.isin(c, list(kept))


def _best(d: _Data, candidates, y_old: np.ndarray):
    """The candidate with the highest objective (ties: fewer restricted inputs, then the
    first in input order), or None."""
    best, best_key = None, None
    for limits, inside in candidates:
        key = (_lenient1(y_old, d.y[inside]), -len(d.restricted(limits)))
        if best_key is None or key > best_key:
            best, best_key = (limits, inside), key
    return best, (best_key[0] if best_key else 0.0)


def _step(d: _Data, limits: dict[str, Limit], inside: np.ndarray, phase: str) -> Step:
    total = max(int(d.y.sum()), 1)
    n_in = int(inside.sum())
    coi = int(d.y[inside].sum())
    return Step(limits, inside, coi / total, coi / n_in if n_in else 0.0, n_in / d.n,
                d.restricted(limits), phase)


def peel(d: _Data, remaining: np.ndarray, peel_alpha: float, floor: int) -> list[Step]:
    """The peeling trajectory from the box holding every remaining run: the best peel at
    each step (even one that lowers the mean) until the next box would hold fewer than
    ``floor`` runs."""
    limits, inside = dict(d.init), remaining.copy()
    steps = [_step(d, limits, inside, "start")]
    while True:
        best, _ = _best(d, _peels(d, limits, inside, peel_alpha), d.y[inside])
        if best is None:
            break
        n_new = int(best[1].sum())
        if n_new < floor or n_new >= int(inside.sum()):
            break
        limits, inside = best
        steps.append(_step(d, limits, inside, "peel"))
    return steps


def paste(d: _Data, start: Step, remaining: np.ndarray, paste_alpha: float) -> list[Step]:
    """Pasting from ``start``: the paste that raises the box mean most per run added, while
    one does."""
    limits, inside = start.limits, start.inside
    steps = []
    while True:
        best, obj = _best(d, _pastes(d, limits, remaining, paste_alpha), d.y[inside])
        if best is None or obj <= 0 or int(best[1].sum()) <= int(inside.sum()):
            break
        limits, inside = best
        steps.append(_step(d, limits, inside, "paste"))
    return steps


def trajectory(d: _Data, remaining: np.ndarray, peel_alpha: float, paste_alpha: float,
               mass_min: float, min_runs: int = 1) -> list[Step]:
    """Peel from the box holding every remaining run to the minimum support, then paste
    the last box (EMA Workbench's sequence); every box on the way."""
    steps = peel(d, remaining, peel_alpha, support_floor(d.n, mass_min, min_runs))
    return steps + paste(d, steps[-1], remaining, paste_alpha)


def support_floor(n: int, mass_min: float, min_runs: int) -> int:
    """Fewest runs a box may hold: ``mass_min`` of all ``n`` runs, and ``min_runs``."""
    return max(int(math.ceil(mass_min * n - 1e-9)), int(min_runs), 1)


def choose(steps: list[Step], min_density: float, floor: int = 1) -> tuple[int, bool]:
    """Among the steps holding at least ``floor`` runs (all steps when none does): the one
    with the highest coverage among those of density >= ``min_density`` (ties: fewer
    restricted inputs, then the later step); else the densest (ties: higher coverage)."""
    sizes = [int(s.inside.sum()) for s in steps]
    pool = [i for i, n in enumerate(sizes) if n >= floor] or list(range(len(steps)))
    ok = [i for i in pool if steps[i].density >= min_density - 1e-12]
    if ok:
        return max(ok, key=lambda i: (steps[i].coverage, -len(steps[i].restricted), i)), True
    return max(pool, key=lambda i: (steps[i].density, steps[i].coverage)), False


def find_boxes(x: pd.DataFrame, y, *, peel_alpha: float = 0.05, paste_alpha: float = 0.05,
               mass_min: float = 0.05, min_density: float = 0.8, max_boxes: int = 3,
               min_runs: int = MIN_RUNS) -> list[PrimBox]:
    """PRIM boxes where ``y`` holds, one after the other on the runs left outside.

    Args:
        x: inputs, one row per run; numeric columns get ranges, others (strings,
            booleans) sets of values.
        y: the case of interest per run (booleans).
        peel_alpha: share of a box's runs peeled off per step (0-1).
        paste_alpha: share of the runs just outside a side pasted back per step (0-1).
        mass_min: smallest box, as a share of all runs (0-1).
        min_density: density a box must reach to be reported (0-1); the first box is
            reported anyway, with ``meets_density`` False.
        max_boxes: most boxes to find.
        min_runs: smallest box, in runs (with ``mass_min``, the minimum support).

    Returns:
        The boxes, in the order found (empty when no run is a case of interest). Each
        box's trajectory is its peeling trajectory followed by the pasting of the box
        chosen on it.
    """
    for name, v in (("peel_alpha", peel_alpha), ("paste_alpha", paste_alpha),
                    ("mass_min", mass_min)):
        if not 0 < v < 1:
            raise ValueError(f"{name} must be between 0 and 1 (got {v})")
    if not 0 <= min_density <= 1:
        raise ValueError(f"min_density must be between 0 and 1 (got {min_density})")
    if min_runs < 1:
        raise ValueError(f"min_runs must be at least 1 (got {min_runs})")
    d = _Data(x, y)
    floor = support_floor(d.n, mass_min, min_runs)
    remaining = np.ones(d.n, bool)
    boxes: list[PrimBox] = []
    while len(boxes) < max_boxes and d.y[remaining].any():
        steps = peel(d, remaining, peel_alpha, floor)
        chosen, ok = choose(steps, min_density, floor)
        pasted = paste(d, steps[chosen], remaining, paste_alpha)
        if pasted:
            steps, chosen = steps + pasted, len(steps) + len(pasted) - 1
        if not ok and boxes:
            break
        boxes.append(PrimBox(len(boxes) + 1, chosen, steps, ok, min_runs, mass_min))
        if not ok:
            break
        remaining &= ~steps[chosen].inside
        if not steps[chosen].restricted:  # the whole remaining space: nothing left to find
            break
    return boxes


def describe_limit(name: str, limit: Limit, full: Limit, fmt=lambda v: f"{v:.3g}") -> str:
    """A restriction in words: ``'x from 1 to 2'``, ``'x ≤ 2'``, ``'c is a or b'``."""
    if isinstance(limit, frozenset):
        vals = sorted(limit)
        return f"{name} is {vals[0]}" if len(vals) == 1 else \
            f"{name} is {', '.join(vals[:-1])} or {vals[-1]}"
    lo, hi = limit
    if lo != full[0] and hi != full[1]:
        return f"{name} from {fmt(lo)} to {fmt(hi)}"
    if lo != full[0]:
        return f"{name} ≥ {fmt(lo)}"
    return f"{name} ≤ {fmt(hi)}"


def full_limits(x: pd.DataFrame) -> dict[str, Limit]:
    """The unrestricted limits of the data (what a box's limits are compared with)."""
    return _Data(x, np.zeros(len(x), bool)).init
