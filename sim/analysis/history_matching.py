"""History matching: every parameter set whose outputs are consistent with their targets.

Generic (it knows nothing of schools): a simulator maps points of a box of parameters to
outputs, each output has a band it must fall in. In *waves* (Craig et al. 1997; Vernon,
Goldstein & Bower 2010; Andrianakis et al. 2015): run the simulator at design points,
fit an emulator of each output (a Gaussian process, scikit-learn, around a linear trend
once there are ``TREND_RUNS`` runs per coefficient, else around the mean, with a
white-noise term that learns the simulator's run-to-run noise, at least a given floor
where the runs share their seeds and cannot show it), and rule out
every point whose *implausibility* for some output exceeds ``CUTOFF`` (3, Pukelsheim's
three-sigma rule): for a two-sided band ``target ± tolerance``

    I(x) = |E[f(x)] - target| / sqrt(var_emulator(x) + var_noise + (tolerance / 3)^2)

so that, with a perfect emulator and no noise, ``I <= 3`` is exactly "inside the band";
for a one-sided band (``> low``) the distance outside the band over
``sqrt(var_emulator + var_noise)``. A point is *not ruled out yet* (NROY) when every
wave's emulators leave it at ``I <= 3`` for every output; the next wave's design is
drawn from there, spread out (greedy maximin), and its emulators are fitted to all runs
so far, sharper where it matters. The share of the original box still NROY after each
wave is estimated on a fixed uniform sample.

Each wave's emulators are checked on held-out runs before they are refitted to all:
the standardized error ``(y - E[f]) / sqrt(var_emulator + var_noise)`` of a held-out
run should mostly lie within ±3 (``Validation``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

CUTOFF = 3.0
HOLDOUT = 0.2  # share of a wave's runs held out to validate its emulators
POOL = 20_000  # uniform points of the box on which the NROY share is estimated
TREND_RUNS = 4  # a linear trend only with at least this many runs per coefficient
REFILL_SCALE = 0.05  # step (share of each range) of the perturbations that refill a small NROY
SEARCH_ROUNDS = 40  # rounds of the emulator search for NROY points when the pool has none


@dataclass(frozen=True)
class Target:
    """One output's band: ``target ± tolerance``, or one-sided ``low < f`` / ``f < high``."""

    name: str
    low: float
    high: float
    target: float | None = None
    tolerance: float | None = None

    def implausibility(self, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        var = np.maximum(np.asarray(var, float), 1e-12)
        if self.target is not None:
            return np.abs(mean - self.target) / np.sqrt(var + (self.tolerance / CUTOFF) ** 2)
        gap = np.maximum(0.0, np.maximum(self.low - mean, mean - self.high))
        return gap / np.sqrt(var)

    def holds(self, value: float) -> bool:
        return bool(np.isfinite(value) and self.low <= value <= self.high)


class Emulator:
    """One output: a linear trend plus a Gaussian process on the unit box (inputs scaled by
    ``bounds``); ``predict`` gives the mean, the emulator's variance and the noise variance
    (the white-noise level fitted to the runs, at least ``noise_floor``), in the output's
    units. ``noise_floor``: the variance of one run around its mean where the runs cannot
    show it, e.g. every design point run on the same seeds (common random numbers), whose
    one shared draw the process takes for part of the mean."""

    def __init__(self, bounds: np.ndarray, seed: int = 0, noise_floor: float = 0.0):
        self.lo, self.span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        self.seed = seed
        self.floor = float(noise_floor) if np.isfinite(noise_floor) else 0.0
        self.gp = None
        self.noise = 0.0
        self.coef = np.zeros(bounds.shape[0] + 1)
        self.constant = math.nan  # set when every run gave the same value (or only one)

    def _unit(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, float) - self.lo) / self.span

    def fit(self, x: np.ndarray, y: np.ndarray) -> Emulator:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        keep = np.isfinite(y)
        u, y = self._unit(x[keep]), np.asarray(y, float)[keep]
        if y.size < 3 or np.ptp(y) == 0:
            self.constant = float(y.mean()) if y.size else math.nan
            return self
        design = np.column_stack([np.ones(len(u)), u])
        if len(u) >= TREND_RUNS * design.shape[1]:
            ridge = 1e-6 * np.eye(design.shape[1])
            self.coef = np.linalg.solve(design.T @ design + ridge, design.T @ y)
        else:  # few runs: a trend would nearly interpolate them and leave the GP no spread
            self.coef = np.r_[y.mean(), np.zeros(u.shape[1])]
        resid = y - design @ self.coef
        scale = float(np.var(resid)) or 1.0
        d = u.shape[1]
        kernel = (ConstantKernel(scale, (1e-4 * scale, 1e2 * scale))
                  * RBF(np.full(d, 0.5), (0.05, 1e3))
                  + WhiteKernel(0.3 * scale, (1e-6 * scale, 10 * scale)))
        self.gp = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=1,
                                           random_state=self.seed)
        # one BLAS thread: the matrices are small, and threads spun on every core for them
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore")  # a length scale at its bound: output ignores it
            self.gp.fit(u, resid)
        self.noise = float(self.gp.kernel_.k2.noise_level)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, emulator variance and noise variance at points ``x`` (n x d)."""
        n = len(x)
        if self.gp is None:
            return np.full(n, self.constant), np.zeros(n), np.full(n, self.floor)
        u = self._unit(x)
        with threadpool_limits(limits=1, user_api="blas"):
            mean, sd = self.gp.predict(u, return_std=True)
        total = sd ** 2  # the fitted kernel's diagonal includes the white noise
        mean = mean + np.column_stack([np.ones(n), u]) @ self.coef
        return (mean, np.maximum(total - self.noise, 0.0),
                np.full(n, max(self.noise, self.floor)))


@dataclass
class Validation:
    """Held-out check of one output's emulator: standardized errors of held-out runs."""

    name: str
    held_out: int
    within_3: float  # share with |z| <= 3
    max_abs_z: float
    rmse: float


@dataclass
class Wave:
    design: np.ndarray  # points run in this wave (n x d)
    outputs: np.ndarray  # their outputs (n x m)
    emulators: list[Emulator]
    validation: list[Validation]
    nroy_share: float  # share of the box's uniform sample still NROY after this wave
    nroy_found: int  # candidates NROY after this wave (before any refill)
    empty: bool = False  # none NROY, even searched: the least implausible points stood in
    least: float = math.nan  # with none NROY in the pool: the search's least implausibility
    # per output: share of the NROY space before this wave (uniform points of the box
    # when it is the first) that this wave's emulator of the output alone leaves at I <= 3
    output_share: list[float] = field(default_factory=list)


@dataclass
class HistoryMatch:
    names: list[str]
    bounds: np.ndarray  # d x 2
    targets: list[Target]
    integer: np.ndarray  # d booleans: whole-number parameters
    waves: list[Wave] = field(default_factory=list)
    nroy: np.ndarray | None = None  # NROY points after the last wave (a sample)

    def all_runs(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.vstack([w.design for w in self.waves]),
                np.vstack([w.outputs for w in self.waves]))


def max_implausibility(emulators: Sequence[Emulator], targets: Sequence[Target],
                       x: np.ndarray) -> np.ndarray:
    """Largest implausibility over the outputs at each point (NaN means: implausible)."""
    worst = np.zeros(len(x))
    for em, t in zip(emulators, targets, strict=True):
        mean, var, noise = em.predict(x)
        i = t.implausibility(mean, var + noise)
        worst = np.maximum(worst, np.where(np.isfinite(i), i, np.inf))
    return worst


def _mean_var(em: Emulator, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, var, noise = em.predict(x)
    return mean, var + noise


def snap(x: np.ndarray, bounds: np.ndarray, integer: np.ndarray) -> np.ndarray:
    """Points clipped to the box, whole-number parameters rounded."""
    x = np.clip(np.asarray(x, float), bounds[:, 0], bounds[:, 1])
    x[:, integer] = np.round(x[:, integer])
    return x


def uniform(n: int, bounds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return bounds[:, 0] + rng.random((n, len(bounds))) * (bounds[:, 1] - bounds[:, 0])


def latin_hypercube(n: int, bounds: np.ndarray, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    u = qmc.LatinHypercube(d=len(bounds), seed=seed).random(n)
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def maximin(points: np.ndarray, n: int, bounds: np.ndarray, rng: np.random.Generator,
            keep: np.ndarray | None = None) -> np.ndarray:
    """``n`` of ``points`` spread out (greedy farthest point on the unit box), away from
    ``keep`` (points already run)."""
    if len(points) <= n:
        return points
    pool = points[rng.choice(len(points), size=min(len(points), 4000), replace=False)]
    u = (pool - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])
    if keep is not None and len(keep):
        k = (keep - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])
        dist = np.min(((u[:, None, :] - k[None, :, :]) ** 2).sum(-1), axis=1)
        chosen = []
    else:
        chosen = [int(rng.integers(len(u)))]
        dist = ((u - u[chosen[0]]) ** 2).sum(-1)
    while len(chosen) < n:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, ((u - u[j]) ** 2).sum(-1))
    return pool[chosen]


class Matcher:
    """Runs the waves. ``simulate(points) -> outputs`` (n x d -> n x m, NaN allowed) is
    the caller's: it may run the points in parallel."""

    def __init__(self, names: list[str], bounds, targets: list[Target],
                 simulate: Callable[[np.ndarray], np.ndarray], integer=None, seed: int = 0,
                 say: Callable[[str], None] = lambda _m: None, pool: int = POOL,
                 noise_floor: Sequence[float] | None = None):
        bounds = np.asarray(bounds, float)
        self.floor = (np.zeros(len(targets)) if noise_floor is None
                      else np.asarray(noise_floor, float))
        integer = np.zeros(len(bounds), bool) if integer is None else np.asarray(integer, bool)
        self.hm = HistoryMatch(list(names), bounds, list(targets), integer)
        self.simulate, self.say = simulate, say
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.pool = snap(uniform(pool, bounds, self.rng), bounds, integer)
        self.least = math.nan  # smallest largest-implausibility the last search found
        self.searched = np.empty((0, len(bounds)))  # NROY points the last search found

    def _snap(self, x):
        return snap(x, self.hm.bounds, self.hm.integer)

    def _nroy(self, x: np.ndarray) -> np.ndarray:
        ok = np.ones(len(x), bool)
        for w in self.hm.waves:
            ok &= max_implausibility(w.emulators, self.hm.targets, x) <= CUTOFF
        return ok

    def _worst(self, x: np.ndarray) -> np.ndarray:
        """Largest implausibility over the outputs and every wave's emulators."""
        worst = np.zeros(len(x))
        for w in self.hm.waves:
            worst = np.maximum(worst, max_implausibility(w.emulators, self.hm.targets, x))
        return worst

    def candidates(self, need: int) -> tuple[np.ndarray, int, bool]:
        """At least ``need`` NROY points if they can be found: the uniform pool's NROY
        points, refilled by small random steps from them. With none in the pool (a region
        smaller than 1 / POOL of the box), the emulators are searched from the pool's
        least implausible hundredth (each point a chain of random steps, a step kept when
        it lowers the implausibility, a few dozen rounds; emulator evaluations only) and
        the NROY points found are kept for the next call; with none found, the least
        implausible points are returned (flagged ``empty``)."""
        if not self.hm.waves:
            return self.pool, len(self.pool), False
        inside = self.pool[self._nroy(self.pool)]
        found = len(inside)
        span = self.hm.bounds[:, 1] - self.hm.bounds[:, 0]
        if found == 0 and len(self.searched):  # NROY points an earlier search found
            inside = self.searched[self._nroy(self.searched)]
        if len(inside) == 0:
            keep = max(need, len(self.pool) // 100)
            worst = self._worst(self.pool)
            order = np.argsort(worst)[:keep]
            best, best_i = self.pool[order].copy(), worst[order]
            for _ in range(SEARCH_ROUNDS):  # each point its own chain: keeps them apart
                if (best_i <= CUTOFF).mean() >= 0.5:
                    break
                step = self.rng.normal(0.0, REFILL_SCALE, best.shape) * span
                trial = self._snap(best + step)
                trial_i = self._worst(trial)
                better = trial_i < best_i
                best[better], best_i[better] = trial[better], trial_i[better]
            self.least = float(best_i.min())
            inside = best[best_i <= CUTOFF]
            self.searched = inside
            if len(inside) == 0:
                return best[np.argsort(best_i)[:need]], 0, True
        for _ in range(20):
            if len(inside) >= need:
                break
            step = self.rng.normal(0.0, REFILL_SCALE, (max(need, 200), len(span))) * span
            start = inside[self.rng.integers(len(inside), size=len(step))]
            trial = self._snap(start + step)
            inside = np.vstack([inside, trial[self._nroy(trial)]])
        return inside, found, False

    def wave(self, n: int, extra: np.ndarray | None = None) -> Wave:
        """Run one wave of ``n`` design points (plus ``extra`` points, e.g. a start)."""
        k = len(self.hm.waves) + 1
        if not self.hm.waves:
            pool = self.pool
            design = self._snap(latin_hypercube(n, self.hm.bounds, self.seed))
        else:
            pool, _, _ = self.candidates(4 * n)
            design = maximin(pool, n, self.hm.bounds, self.rng, self.hm.all_runs()[0])
        if extra is not None and len(extra):
            design = np.vstack([self._snap(extra), design])
        self.say(f"wave {k}: running {len(design)} design points")
        outputs = np.asarray(self.simulate(design), float)
        x = design if not self.hm.waves else np.vstack([self.hm.all_runs()[0], design])
        y = outputs if not self.hm.waves else np.vstack([self.hm.all_runs()[1], outputs])
        validation = self._validate(x, y, k)
        emulators = [Emulator(self.hm.bounds, self.seed + k, self.floor[j]).fit(x, y[:, j])
                     for j in range(y.shape[1])]
        w = Wave(design, outputs, emulators, validation, math.nan, 0)
        if len(pool):  # the candidates the design was drawn from (NROY, or least implausible)
            w.output_share = [float(np.mean(t.implausibility(*_mean_var(em, pool)) <= CUTOFF))
                              for em, t in zip(emulators, self.hm.targets, strict=True)]
        self.hm.waves.append(w)
        ok = self._nroy(self.pool)
        w.nroy_share, w.nroy_found = float(ok.mean()), int(ok.sum())
        if w.nroy_found == 0:  # search the emulators for the region the pool missed
            _, _, w.empty = self.candidates(200)
            w.least = self.least
        self.say(f"wave {k}: {100 * w.nroy_share:.3g}% of the box not ruled out yet"
                 + (f" (searched: smallest implausibility {w.least:.2f})"
                    if w.nroy_found == 0 else ""))
        return w

    def _validate(self, x: np.ndarray, y: np.ndarray, k: int) -> list[Validation]:
        """Fit on all but a held-out share of the runs, score the held-out ones."""
        rng = np.random.default_rng(self.seed + 1000 * k)
        held = rng.random(len(x)) < HOLDOUT
        if held.sum() < 3 or (~held).sum() < 5:
            return []
        out = []
        for j, t in enumerate(self.hm.targets):
            em = Emulator(self.hm.bounds, self.seed + k, self.floor[j]).fit(x[~held],
                                                                          y[~held, j])
            mean, var, noise = em.predict(x[held])
            ok = np.isfinite(y[held, j])
            z = (y[held, j][ok] - mean[ok]) / np.sqrt(np.maximum(var + noise, 1e-12))[ok]
            err = y[held, j][ok] - mean[ok]
            out.append(Validation(t.name, int(ok.sum()),
                                  float(np.mean(np.abs(z) <= CUTOFF)) if ok.any() else math.nan,
                                  float(np.max(np.abs(z))) if ok.any() else math.nan,
                                  float(np.sqrt(np.mean(err ** 2))) if ok.any() else math.nan))
        return out

    def run(self, sizes: Sequence[int], extra: np.ndarray | None = None,
            sample: int = 2000) -> HistoryMatch:
        """Waves of ``sizes`` design points; then a sample of the final NROY space."""
        for i, n in enumerate(sizes):
            self.wave(n, extra if i == 0 else None)
        self.hm.nroy = self.candidates(sample)[0]
        return self.hm


def plausible_ranges(points: np.ndarray, names: list[str]) -> dict[str, tuple[float, float]]:
    """Each parameter's smallest and largest value among ``points``."""
    return {n: (float(points[:, j].min()), float(points[:, j].max()))
            for j, n in enumerate(names)}
