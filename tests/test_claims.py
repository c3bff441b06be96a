"""A claim's verdict is computed from intervals across replicates, never written in."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.config.scenario import ScenarioError
from sim.experiments.runner import run
from sim.validation.claims import (
    VERDICT_LINE,
    ClaimRuns,
    above,
    at_least,
    below,
    contains,
    estimate,
    paired,
    scenario_with,
    student_metric,
    sweep_slopes,
    verdict,
)

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.toml"
SMALL = ("district.schools=1", "years=1", "calendar.burn_in_years=0",
         "assessment.reference_students_per_grade=200")


def test_estimate_is_the_t_interval_of_replicate_values():
    e = estimate([1.0, 2.0, 3.0], "x")
    assert e.mean == pytest.approx(2.0)
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert (e.lo, e.hi) == pytest.approx((2.0 - half, 2.0 + half))
    assert estimate([np.nan, 5.0], "y").n == 1 and np.isnan(estimate([5.0], "y").lo)


def test_paired_difference_lines_up_replicates():
    a = pd.Series([1.0, 2.0, 4.0], index=[0, 1, 2])
    b = pd.Series([0.5, 1.0, 1.0], index=[2, 1, 0])  # same replicates, another order
    e = paired(a, b, "a - b")
    assert e.mean == pytest.approx(np.mean([1.0 - 1.0, 2.0 - 1.0, 4.0 - 0.5]))


def test_a_claim_holds_only_when_every_interval_is_on_its_side():
    up = estimate([0.2, 0.3, 0.25], "gain")
    straddles = estimate([-0.1, 0.3, 0.1], "mixed")
    assert above(up).holds and not below(up).holds
    assert not above(straddles).holds and not below(straddles).holds
    assert contains(straddles, 0.0).holds and not contains(up, 0.0).holds
    assert at_least(estimate([-3, -3], "lowest"), -3).holds
    assert not at_least(estimate([-3, -4], "lowest"), -3).holds
    assert not above(estimate([1.0], "one replicate")).holds  # no interval, no verdict
    v = verdict(7, "a gain and a mixed bag", above(up), above(straddles))
    assert v.word == "falls short"
    last = str(v).splitlines()[-1]
    assert re.match(VERDICT_LINE, last) and last.endswith("a gain and a mixed bag: falls short")
    assert verdict(8, "a gain", above(up)).word == "holds"
    assert verdict(9, "nothing to show").word == "falls short"


def test_scenario_with_keeps_the_named_arms_in_order_and_applies_overrides():
    sc = scenario_with(QUICK, ["test_prep", "traditional"], ["arms.test_prep.floor=2"], 3)
    assert [a.label for a in sc.arms] == ["test_prep", "traditional"]
    assert sc.arms[0].floor == 2 and sc.replicates == 3
    with pytest.raises(ScenarioError, match="no arm"):
        scenario_with(QUICK, ["nope"])


def test_claim_runs_give_each_arm_the_rows_of_a_whole_run():
    runs = ClaimRuns(overrides=SMALL, replicates=1)
    part = runs.tables(QUICK, ["test_prep", "traditional"])
    again = runs.tables(QUICK, ["traditional"])  # cached: not re-run
    whole = run(scenario_with(QUICK, None, SMALL, 1)).student_years
    for arm in ("traditional", "test_prep"):
        mine = part.student_years[part.student_years.arm == arm].reset_index(drop=True)
        theirs = whole[whole.arm == arm].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine.drop(columns="arm"), theirs.drop(columns="arm"))
    assert list(part.student_years.arm.cat.categories) == ["test_prep", "traditional"]
    assert len(again.student_years) == (part.student_years.arm == "traditional").sum()
    per_rep = student_metric(part.student_years, "growth_sd", "test_prep", 1)
    mine = part.student_years
    by_hand = mine[mine.program_grade & (mine.arm == "test_prep")].groupby("replicate").growth_sd
    assert per_rep.to_numpy() == pytest.approx(by_hand.mean().to_numpy())


def test_sweep_slopes_recover_a_known_linear_outcome():
    rng = np.random.default_rng(1)
    rows = []
    for rep in range(3):
        for sample in range(12):
            x1, x2 = rng.uniform(0, 5), rng.uniform(0, 8)
            rows.append({"arm": "policy", "year": 1, "start_band": "all students",
                         "replicate": rep, "sample": sample, "floor": x1, "weeks": x2,
                         "proficient": 0.3 + 0.02 * x2 - 0.01 * x1 + 0.001 * rep})
    slopes = sweep_slopes(pd.DataFrame(rows), ["floor", "weeks"], "proficient", "policy", 1)
    assert slopes.shape == (3, 2)
    assert slopes["weeks"].to_numpy() == pytest.approx([0.02] * 3)
    assert slopes["floor"].to_numpy() == pytest.approx([-0.01] * 3)
