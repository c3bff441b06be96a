"""Known answer: history matching recovers the planted plausible region of a cheap simulator.

The simulator is f(x) = x1 + x2^2 and g(x) = x1 - x2 with Gaussian noise, a third
parameter it ignores; the targets are f = 1 ± 0.2 and g > -0.3, so the plausible region
is known exactly: 0.8 <= x1 + x2^2 <= 1.2 and x1 - x2 >= -0.3.
"""

import numpy as np

from sim.analysis.history_matching import (
    CUTOFF,
    Emulator,
    Matcher,
    Target,
    max_implausibility,
    plausible_ranges,
)

NOISE = 0.03
BOUNDS = [(0.0, 1.0), (0.0, 1.0), (0.0, 5.0)]
TARGETS = [Target("f", 0.8, 1.2, 1.0, 0.2), Target("g", -0.3, np.inf)]


def truth(x):
    x = np.atleast_2d(x)
    return np.column_stack([x[:, 0] + x[:, 1] ** 2, x[:, 0] - x[:, 1]])


def in_region(x):
    y = truth(x)
    return (np.abs(y[:, 0] - 1.0) <= 0.2) & (y[:, 1] >= -0.3)


def test_history_matching_recovers_the_planted_region():
    rng = np.random.default_rng(5)

    def simulate(x):
        return truth(x) + rng.normal(0.0, NOISE, (len(x), 2))

    m = Matcher(["x1", "x2", "x3"], BOUNDS, TARGETS, simulate, seed=1, pool=5000)
    hm = m.run([30, 20, 20], sample=500)
    test = np.random.default_rng(9).random((3000, 3)) * [1, 1, 5]
    ok = np.ones(len(test), bool)
    for w in hm.waves:
        ok &= max_implausibility(w.emulators, TARGETS, test) <= CUTOFF
    inside = in_region(test)
    # no plausible point is ruled out (history matching's promise) ...
    assert ok[inside].mean() >= 0.97
    # ... and points well outside the band are ruled out
    far = np.abs(truth(test)[:, 0] - 1.0) > 0.2 + 0.15
    assert ok[far].mean() <= 0.05
    # the region's true share of the box is about 0.30; the estimate is near it
    assert abs(hm.waves[-1].nroy_share - inside.mean()) < 0.12
    assert hm.waves[-1].nroy_share < hm.waves[0].nroy_share + 1e-9
    # the plausible range of x1 is the region's: from 0.36 (where x1 + x2^2 = 0.8 meets
    # x1 - x2 = -0.3, x2 = 0.66) to 1 (the box)
    lo, hi = plausible_ranges(hm.nroy, hm.names)["x1"]
    assert abs(lo - 0.36) < 0.08 and hi > 0.95
    # the NROY sample lies (nearly all) in the true region widened by the noise
    y = truth(hm.nroy)
    assert np.mean(np.abs(y[:, 0] - 1.0) <= 0.2 + 3 * NOISE) >= 0.95
    # the emulators' held-out standardized errors mostly lie within 3
    v = [c for w in hm.waves for c in w.validation if c.name == "f"]
    assert v and min(c.within_3 for c in v) >= 0.8


def test_implausibility_is_the_band_with_a_perfect_emulator():
    t = Target("f", 0.8, 1.2, 1.0, 0.2)
    i = t.implausibility(np.array([1.0, 1.19, 1.21, 0.5]), np.zeros(4))
    assert np.all((i <= CUTOFF) == [True, True, False, False])
    one = Target("g", -0.3, np.inf)
    j = one.implausibility(np.array([0.0, -0.3, -0.4]), np.full(3, 0.01))
    assert j[0] == 0 and j[1] == 0 and abs(j[2] - 1.0) < 1e-9


def test_emulator_learns_the_noise_level():
    rng = np.random.default_rng(2)
    x = rng.random((80, 2))
    y = np.sin(3 * x[:, 0]) + rng.normal(0, 0.1, 80)
    em = Emulator(np.array([(0.0, 1.0), (0.0, 1.0)])).fit(x, y)
    mean, var, noise = em.predict(x[:5])
    assert 0.004 < noise[0] < 0.025  # true noise variance 0.01
    assert np.all(np.abs(mean - np.sin(3 * x[:5, 0])) < 0.15)


def test_a_shared_seed_rules_out_the_region_unless_its_noise_is_the_floor():
    """Common random numbers: every design run shares one draw of the noise (here 0.25 on
    f, five times the band's third), which the emulator takes for part of the mean. Without
    a floor the whole plausible region is ruled out; with the one-run variance as the
    emulators' noise floor, the region's points are kept."""
    shared = np.array([0.25, 0.0])

    def simulate(x):
        return truth(x) + shared

    test = np.random.default_rng(9).random((3000, 3)) * [1, 1, 5]
    inside = in_region(test)
    kept = []
    for floor in (None, [0.25 ** 2, 0.0]):
        m = Matcher(["x1", "x2", "x3"], BOUNDS, TARGETS, simulate, seed=1, pool=5000,
                    noise_floor=floor)
        hm = m.run([30, 20], sample=200)
        ok = np.ones(len(test), bool)
        for w in hm.waves:
            ok &= max_implausibility(w.emulators, TARGETS, test) <= CUTOFF
        kept.append(ok[inside].mean())
    assert kept[0] <= 0.6 and kept[1] >= 0.97
    em = Emulator(np.array([(0.0, 1.0)]), noise_floor=0.04).fit(np.zeros((2, 1)), np.ones(2))
    assert em.predict(np.zeros((3, 1)))[2].tolist() == [0.04] * 3  # a constant output too
