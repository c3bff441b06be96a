"""Pareto dominance under replicate noise: how sure each "non-dominated" is, and racing.

Every point (a candidate policy or a shipped strategy) has replicate values (replicates x
objectives) run on common random numbers: replicate ``r`` has the same students and random
streams for every point, so differences between points are paired. A front read off the
replicate means can call a point non-dominated, or a strategy beaten, on luck alone.

``front_probability`` says how sure: each point's mean is estimated with the replicates'
common shocks taken out (the pairing common random numbers buy), with its uncertainty
(``point_estimates``); draws of the means count the share in which each point is
non-dominated. ``dominance_probability`` does the same for "this point beats
that one". A probability at or above ``LEVEL`` (or at or below ``1 - LEVEL``) is
*decided*; between, *undecided*.

``race`` spends a stated budget of extra runs on the undecided points, the points near the
front, adding common replicates (``r = n, n + 1, ...``: the same for every point, so pairs
stay paired) until every point's place is decided, the budget is spent or each undecided
point has ``max_replicates``: racing in the sense of Maron & Moore (1997) and of the
"re-evaluate near the front" schemes of noisy multi-objective optimisation (Fieldsend &
Everson 2015). It needs nothing but a function that runs more replicates.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np

LEVEL = 0.95         # a probability this far from 1/2 (either side) is decided
DRAWS = 2000         # draws of the means
CHUNK = 250          # draws compared at once (memory: CHUNK x points^2 x objectives)


def _oriented(maximize) -> np.ndarray:
    return np.where(np.asarray(maximize, bool), 1.0, -1.0)


SHRINK_DF = 4       # a point's own covariance is shrunk toward the pooled one with this weight


def _table(reps: list[np.ndarray]) -> np.ndarray:
    """(points x replicates x objectives), NaN where a point has no such replicate."""
    m = reps[0].shape[1]
    out = np.full((len(reps), max(len(r) for r in reps), m), np.nan)
    for i, r in enumerate(reps):
        out[i, :len(r)] = r
    return out


def point_estimates(reps: list[np.ndarray], sweeps: int = 50):
    """Each point's mean with the replicates' common shocks taken out, and the covariance
    of that estimate: (points x objectives), (points x objectives x objectives).

    The additive model x[i, r] = mu[i] + c[r] + e is fitted by backfitting (the shock
    c[r] of replicate r, shared by every point run on it, is what common random numbers
    make common); the residuals' covariance is pooled over points and each point's own
    is shrunk toward it (weight ``SHRINK_DF``), so that two replicates of a point do not
    make its noise look like nothing. A replicate only one point has tells nothing about
    that point against the others: the information ``n_eff`` counts ``1 - 1/k`` for a
    replicate ``k`` points share. Points with a NaN value are NaN.
    """
    with warnings.catch_warnings():  # a failed point's row is all NaN: its mean is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return _point_estimates(reps, sweeps)


def _point_estimates(reps: list[np.ndarray], sweeps: int):
    x = _table(reps)
    bad = np.array([np.isnan(r).any() for r in reps])
    x[bad] = np.nan
    have = ~np.isnan(x[..., 0])
    mu = np.nanmean(x, axis=1) if have.any() else np.zeros(x.shape[::2])
    c = np.zeros(x.shape[1:])
    share = have.sum(axis=0)
    for _ in range(sweeps):
        c = np.nan_to_num(np.nanmean(x - mu[:, None], axis=0))
        common = have[~bad].all(axis=0)
        c -= c[common if common.any() else share > 0].mean(axis=0)
        mu = np.nanmean(x - c[None], axis=1)
    e = np.where(have[..., None], x - mu[:, None] - c[None], 0.0)
    n_eff = (have * np.where(share > 0, 1 - 1 / np.maximum(share, 1), 0)).sum(axis=1)
    df = max(int(have.sum() - (~bad).sum() - (share > 0).sum() + 1), 1)
    pooled = np.einsum("irm,irn->mn", e, e) / df
    own_df = np.maximum(have.sum(axis=1) - 1, 0)
    own = np.einsum("irm,irn->imn", e, e)
    cov = (own + SHRINK_DF * pooled) / (own_df + SHRINK_DF)[:, None, None]
    cov /= np.maximum(n_eff, 1e-9)[:, None, None]
    mu[bad] = np.nan
    return mu, cov


def mean_draws(reps: list[np.ndarray], draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """Draws of every point's mean, (draws x points x objectives): each point's estimate
    plus normal noise with its covariance (``point_estimates``)."""
    mu, cov = point_estimates(reps)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, len(reps), mu.shape[1]))
    jitter = 1e-12 * np.eye(mu.shape[1])
    chol = np.stack([np.linalg.cholesky(c + jitter) if np.isfinite(c).all() else
                     np.zeros_like(c) for c in cov])
    return mu[None] + np.einsum("imn,dim->din", chol, z)


def _dominates(g: np.ndarray) -> np.ndarray:
    """(draws x points x points): [d, j, i] is True when point j dominates point i."""
    ge = (g[:, :, None, :] >= g[:, None, :, :]).all(axis=3)
    gt = (g[:, :, None, :] > g[:, None, :, :]).any(axis=3)
    return ge & gt


def front_probability(reps: list[np.ndarray], maximize, draws: int = DRAWS,
                      seed: int = 0) -> np.ndarray:
    """Share of draws of the means in which each point is non-dominated (NaN points: NaN)."""
    means = mean_draws(reps, draws, seed) * _oriented(maximize)
    bad = np.isnan(means).any(axis=(0, 2))
    g = np.where(np.isnan(means), -np.inf, means)
    hits = np.zeros(len(reps))
    for start in range(0, draws, CHUNK):
        dom = _dominates(g[start:start + CHUNK])
        dom[:, bad, :] = False  # a failed point beats nobody
        hits += (~dom.any(axis=1)).sum(axis=0)
    p = hits / draws
    p[bad] = np.nan
    return p


def dominance_probability(reps: list[np.ndarray], maximize, draws: int = DRAWS,
                          seed: int = 0) -> np.ndarray:
    """(points x points): [j, i] the share of draws of the means in which j dominates i."""
    means = mean_draws(reps, draws, seed) * _oriented(maximize)
    g = np.where(np.isnan(means), -np.inf, means)
    total = np.zeros((len(reps), len(reps)))
    for start in range(0, draws, CHUNK):
        total += _dominates(g[start:start + CHUNK]).sum(axis=0)
    return total / draws


def verdict(p: float, level: float = LEVEL) -> str:
    """"yes" (at least ``level``), "no" (at most 1 - level), "undecided" or "failed"."""
    if np.isnan(p):
        return "failed"
    return "yes" if p >= level else "no" if p <= 1 - level else "undecided"


RunMore = Callable[[list[tuple[Hashable, range]]], Mapping[Hashable, np.ndarray]]


@dataclass
class Race:
    """What racing did: every point's replicates (all of them, in replicate order), its
    front probability and verdict, and the extra runs spent."""

    reps: dict[Hashable, np.ndarray]
    probability: dict[Hashable, float]
    spent: int = 0
    rounds: int = 0
    undecided_before: int = 0
    log: list[str] = field(default_factory=list)

    def verdicts(self, level: float = LEVEL) -> dict[Hashable, str]:
        return {k: verdict(p, level) for k, p in self.probability.items()}


@dataclass(frozen=True)
class RaceRules:
    """The budget: ``budget`` extra point-replicate runs in all, at most ``max_replicates``
    per point, replicates added ``step`` at a time (at least one); ``level`` decides."""

    budget: int
    max_replicates: int
    step: int = 2
    level: float = LEVEL
    draws: int = DRAWS
    seed: int = 0


def race(reps: Mapping[Hashable, np.ndarray], maximize, run_more: RunMore,
         rules: RaceRules) -> Race:
    """Add common replicates to undecided points until decided or the budget is spent.

    ``run_more([(key, range(n, m)), ...])`` returns, per key, the values of replicates
    ``n..m-1`` ((m - n) x objectives). The points closest to a probability of 1/2 are run
    first when the budget does not reach them all.
    """
    keys = list(reps)
    state = {k: np.asarray(reps[k], float) for k in keys}
    out = Race(state, {})
    left = rules.budget
    while True:
        values = [state[k] for k in keys]
        p = front_probability(values, maximize, rules.draws, rules.seed)
        out.probability = dict(zip(keys, map(float, p), strict=True))
        open_ = [i for i, k in enumerate(keys)
                 if verdict(out.probability[k], rules.level) == "undecided"]
        if out.rounds == 0:
            out.undecided_before = len(open_)
        order = _contenders(values, maximize, p, open_, rules)
        order = [keys[i] for i in order if len(state[keys[i]]) < rules.max_replicates]
        batch = []
        for k in order:
            n = len(state[k])
            m = min(n + max(1, rules.step), rules.max_replicates)
            if m - n > left:
                m = n + left
            if m > n:
                batch.append((k, range(n, m)))
                left -= m - n
        if not batch:
            out.log.append(f"stopped: {len(open_)} undecided, {rules.budget - left} of "
                           f"{rules.budget} extra runs spent")
            return out
        new = run_more(batch)
        for k, r in batch:
            state[k] = np.vstack([state[k], np.asarray(new[k], float).reshape(len(r), -1)])
        out.spent = rules.budget - left
        out.rounds += 1
        out.log.append(f"round {out.rounds}: {len(batch)} points re-run, "
                       f"{out.spent} extra runs spent")


def _contenders(values: list[np.ndarray], maximize, p: np.ndarray, open_: list[int],
                rules: RaceRules) -> list[int]:
    """The undecided points (closest to 1/2 first), then the points that may dominate one
    of them (a noisy estimate of a point decided itself can keep its neighbours open)."""
    if not open_:
        return []
    dom = dominance_probability(values, maximize, rules.draws, rules.seed)
    threat = dom[:, open_].max(axis=1)
    threat[open_] = 0
    first = sorted(open_, key=lambda i: abs(p[i] - 0.5))
    then = [int(i) for i in np.argsort(-threat, kind="stable") if threat[i] > 1 - rules.level]
    return first + then
