"""Pareto dominance under replicate noise (sim.analysis.noisy_front): a noisy ZDT1 front."""

import numpy as np
import pytest

from sim.analysis.noisy_front import (
    RaceRules,
    dominance_probability,
    front_probability,
    race,
    verdict,
)

X1 = np.linspace(0.05, 0.95, 8)
# ZDT1's g (1 on the true front) and a shift of x1: a far point is worse than the front
# point beside it on both objectives; a mid one too, by less than two replicates can tell
G = {"front": (1.0, 0.0), "mid": (1.15, 0.05), "far": (1.6, 0.1)}


def zdt1(x1: np.ndarray, g: float) -> np.ndarray:
    return np.column_stack([x1, g * (1 - np.sqrt(x1 / g))])


def noisy_zdt(sd: float = 0.06, seed: int = 11):
    """Points of ZDT1 (both objectives minimised) and a run_more that draws replicate r's
    noise from (seed, r): a shock shared by every point (common random numbers) plus each
    point's own."""
    points = {(kind, i): zdt1(X1[i:i + 1] + dx, g)[0] for kind, (g, dx) in G.items()
              for i in range(len(X1))}
    keys = sorted(points)

    def replicate(r: int) -> dict:
        rng = np.random.default_rng([seed, r])
        shared = rng.normal(0, sd, 2)
        own = rng.normal(0, sd, (len(keys), 2))
        return {k: points[k] + shared + own[j] for j, k in enumerate(keys)}

    calls = []

    def run_more(batch):
        calls.append(batch)
        return {k: np.array([replicate(r)[k] for r in rng_]) for k, rng_ in batch}

    start = {k: np.array([replicate(r)[k] for r in range(2)]) for k in keys}
    return points, start, run_more, calls


def test_noiseless_points_are_decided_exactly():
    reps = [np.array([[0.1, 0.9], [0.1, 0.9]]), np.array([[0.9, 0.1]] * 2),
            np.array([[0.5, 0.95]] * 2)]  # the third is beaten by the first
    p = front_probability(reps, [False, False], draws=200)
    assert p.tolist() == [1.0, 1.0, 0.0]
    d = dominance_probability(reps, [False, False], draws=200)
    assert d[0, 2] == 1.0 and d[2, 0] == 0.0 and d[0, 1] == 0.0
    assert [verdict(x) for x in (0.97, 0.03, 0.5, np.nan)] == ["yes", "no", "undecided",
                                                              "failed"]


def test_failed_points_beat_nobody():
    reps = [np.array([[np.nan, np.nan]] * 2), np.array([[0.5, 0.5]] * 2)]
    p = front_probability(reps, [True, True], draws=100)
    assert np.isnan(p[0]) and p[1] == 1.0


def test_racing_decides_a_noisy_zdt_front_within_its_budget():
    points, start, run_more, calls = noisy_zdt()
    rules = RaceRules(budget=240, max_replicates=20, step=3, seed=1)
    before = front_probability(list(start.values()), [False, False], seed=rules.seed)
    out = race(start, [False, False], run_more, rules)
    v = out.verdicts()
    assert out.spent <= 240 and out.spent == sum(len(r) for b in calls for _, r in b)
    assert all(len(out.reps[k]) <= 20 for k in out.reps)
    # replicates are added in order, after the ones a point has
    seen = {k: 2 for k in start}
    for batch in calls:
        for k, r in batch:
            assert r.start == seen[k] and len(r) >= 1
            seen[k] = r.stop
    undecided_before = int(((before > 0.05) & (before < 0.95)).sum())
    undecided_after = sum(x == "undecided" for x in v.values())
    assert out.undecided_before == undecided_before > 0
    assert undecided_after <= undecided_before
    # no point of the true front is called dominated; every far point is
    assert not [k for k in points if k[0] == "front" and v[k] == "no"]
    assert all(v[k] == "no" for k in points if k[0] == "far")
    # only points of the true front are decided non-dominated
    assert {k[0] for k in points if v[k] == "yes"} == {"front"}
    front_yes = sum(v[k] == "yes" for k in points if k[0] == "front")
    front_yes_before = sum(verdict(p) == "yes" for k, p in zip(start, before, strict=True)
                           if k[0] == "front")
    assert front_yes == 8 > front_yes_before


def test_racing_is_reproducible_and_a_zero_budget_runs_nothing():
    _, start, run_more, calls = noisy_zdt()
    a = race(start, [False, False], run_more, RaceRules(budget=60, max_replicates=8))
    b = race(start, [False, False], run_more, RaceRules(budget=60, max_replicates=8))
    assert a.probability == b.probability and a.spent == b.spent == 60
    assert all(np.array_equal(a.reps[k], b.reps[k]) for k in a.reps)
    calls.clear()
    none = race(start, [False, False], run_more, RaceRules(budget=0, max_replicates=8))
    assert calls == [] and none.spent == 0 and none.rounds == 0


@pytest.mark.parametrize("sd", [0.0, 0.3])
def test_more_noise_leaves_more_undecided(sd):
    points, start, _, _ = noisy_zdt(sd=sd)
    p = front_probability(list(start.values()), [False, False])
    undecided = int(((p > 0.05) & (p < 0.95)).sum())
    assert (undecided == 0) if sd == 0 else (undecided >= 6)
