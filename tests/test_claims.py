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
    FALLS_SHORT,
    HOLDS,
    UNDECIDED,
    VERDICT_LINE,
    ClaimRuns,
    above,
    at_least,
    below,
    contains,
    estimate,
    paired,
    scenario_with,
    share,
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


def test_a_claim_holds_falls_short_or_is_undecided_by_its_intervals():
    up = estimate([0.2, 0.3, 0.25], "gain")
    down = estimate([-0.2, -0.3, -0.25], "loss")
    straddles = estimate([-0.1, 0.3, 0.1], "mixed")
    assert (above(up).state, below(up).state) == (HOLDS, FALLS_SHORT)
    assert above(down).state == FALLS_SHORT and below(down).state == HOLDS
    assert above(straddles).state == UNDECIDED and below(straddles).state == UNDECIDED
    assert contains(up, 0.25, 0.5).state == HOLDS  # [0.13, 0.37] inside [-0.25, 0.75]
    assert contains(up, 1.0, 0.2).state == FALLS_SHORT  # wholly below 0.8
    assert contains(straddles, 0.0, 0.1).state == UNDECIDED  # wider than the band
    assert at_least(estimate([-3, -3], "lowest"), -3).state == HOLDS
    assert at_least(estimate([-4, -4], "lowest"), -3).state == FALLS_SHORT
    assert at_least(estimate([-3, -4], "lowest"), -3).state == UNDECIDED
    one = above(estimate([1.0], "one replicate"))
    assert one.state == UNDECIDED and "needs at least 2 replicates" in one.line()
    v = verdict(7, "a gain and a mixed bag", above(up), above(straddles))
    assert v.word == UNDECIDED
    last = str(v).splitlines()[-1]
    assert re.match(VERDICT_LINE, last) and last.endswith("a gain and a mixed bag: undecided")
    assert verdict(8, "a gain", above(up)).word == HOLDS
    assert verdict(10, "a gain and a loss", above(up), above(down), above(straddles)).word \
        == FALLS_SHORT
    assert verdict(9, "nothing to show").word == UNDECIDED


def test_an_undecided_condition_says_how_many_replicates_would_decide_it():
    e = estimate([0.05, 0.15], "growth")  # mean 0.1, sd 0.0707: t(1) x sd / sqrt(2) = 0.64
    c = above(e)
    n = c.replicates_to_decide()
    # smallest n with t(0.975, n-1) x 0.0707 / sqrt(n) < 0.1: n = 5 (0.0878), n = 4: 0.1125
    assert n == 5
    assert "about 5 replicates would decide it" in c.line()


def test_a_share_of_few_schools_gets_a_wilson_interval_inside_0_1():
    # the notebooks' quick case: 2 schools, 2 replicates, shares 0.5 and 1.0
    t = estimate([0.5, 1.0], "t-interval")
    assert t.lo < -0.5 and t.hi > 1.5  # the old interval: -2.43 to 3.93
    w = share(pd.Series([0.5, 1.0]), 2, "share of schools with a window")
    assert 0.0 <= w.lo < w.mean < w.hi <= 1.0
    # replicates disagree more than 2 independent schools would: design effect 0.125 /
    # (0.75 x 0.25 / 2) = 4/3, so 3 effective schools; Wilson of 2.25 in 3: [0.256, 0.963]
    assert w.mean == pytest.approx(0.75) and w.effective_units == pytest.approx(3.0)
    assert (w.lo, w.hi) == pytest.approx((0.256, 0.963), abs=0.001)
    none = share(pd.Series([0.0, 0.0]), 2, "none of 4 schools")
    assert none.lo == 0.0 and none.hi == pytest.approx(0.490, abs=0.001)  # Wilson 0 of 4
    logit = estimate([0.02, 0.10, 0.06], "proficient", share=True)
    assert 0.0 < logit.lo < 0.06 < logit.hi < 1.0
    assert estimate([0.02, 0.10, 0.06], "t").lo < 0.0  # the t-interval leaves 0-1


def test_a_claim_a_small_design_cannot_show_says_what_it_needs():
    w = share(pd.Series([0.5, 1.0]), 2, "share of schools with a window, year 2")
    c = contains(w, 0.8, 0.2, needs={"schools": 5})
    assert c.state == UNDECIDED
    assert "needs at least 5 schools per replicate (this run: 2)" in c.line()
    five = share(pd.Series([0.8, 0.8, 0.8, 1.0, 0.8, 0.6, 0.8, 0.8, 0.8, 0.8]), 5, "five")
    assert contains(five, 0.8, 0.2, needs={"schools": 5}).state == HOLDS  # [0.67, 0.88]
    v = verdict(9, "more schools ask for a window", c)
    assert v.word == UNDECIDED and "needs at least 5 schools" in str(v)


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


def test_summaries_give_shares_intervals_inside_0_1():
    """summary.csv's proficient, school_summary's shares of schools and teacher_summary's
    shares of teachers: intervals within 0-1 where the t-interval left it; means unchanged."""
    from sim.analysis.summaries import school_summary, summarise_replicates

    reps = pd.DataFrame({"arm": pd.Categorical(["a", "a"]), "replicate": [0, 1],
                         "year": 1, "start_band": "all students", "n_students": 100.0,
                         "growth_sd": [0.5, 0.7], "proficient": [0.02, 0.10],
                         "grade_level_share": 0.5, "mastered_share": 0.1, "switches": 1.0,
                         "engagement": 0.6})
    row = summarise_replicates(reps).iloc[0]
    assert row.proficient == pytest.approx(0.06)  # the mean is as before
    assert 0.0 < row.proficient_lo < 0.06 < row.proficient_hi < 1.0
    assert row.growth_sd_lo == pytest.approx(0.6 - 12.706 * 0.1414 / np.sqrt(2), abs=1e-3)
    schools = pd.DataFrame({"arm": "tepp", "year": 2, "replicate": [0, 0, 1, 1],
                            "school": [0, 1, 0, 1], "test_prep_weeks": [6, 0, 6, 6],
                            "tutoring": 0.0, "program_active": True, "response": "",
                            "dropped": False, "proficiency": [0.2, 0.3, 0.25, 0.2],
                            "mean_growth_sd": 0.6})
    s = school_summary(schools).iloc[0]
    assert s.window_share == pytest.approx(0.75)  # 0.5 and 1.0: the t-interval is -2.4..3.9
    assert (s.window_share_lo, s.window_share_hi) == pytest.approx((0.256, 0.963), abs=0.001)
    assert s.program_active_share_lo == pytest.approx(0.510, abs=0.001)  # Wilson 4 of 4
    assert s.program_active_share_hi == 1.0
