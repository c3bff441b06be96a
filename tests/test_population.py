"""The synthetic population reproduces the calibration facts it is built on."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.scenario import load_scenario
from sim.engine.curriculum import NO_SKILL, generate_curriculum
from sim.engine.outcomes import start_band
from sim.validation.calibration import entry_variance_split, traditional_run

TOLERANCE = 0.05  # absolute, on each variance share


@pytest.fixture(scope="module")
def floor_strategies():
    return load_scenario("scenarios/floor_strategies.toml")


def test_entry_achievement_splits_62_18_20_within_classrooms_teachers_and_schools(
        floor_strategies):
    split = entry_variance_split(floor_strategies, grade=5, schools=200)
    assert split["within_class"] == pytest.approx(0.62, abs=TOLERANCE)
    assert split["between_teachers"] == pytest.approx(0.18, abs=TOLERANCE)
    assert split["between_schools"] == pytest.approx(0.20, abs=TOLERANCE)


def test_the_case_study_district_starts_about_one_quarter_proficient():
    # the case's own district (floor_strategies' six larger schools start about a third
    # proficient at the steady state: 0.32, its description says so)
    case = load_scenario("scenarios/tepp_case_study.toml")
    shares = []
    for replicate in (0, 1):
        _, rows = traditional_run(case, years=1, replicate=replicate)
        prog = rows[rows.in_program]
        shares.append(prog.proficient.astype(float).mean())
    # two replicates here (0.31); the calibration fact, at 10 replicates in `plsim validate`,
    # holds it at 0.285 in 0.25 +- 0.05; at the old one-year spin-up these two gave 0.25
    assert 0.2 <= np.mean(shares) <= 0.36


def test_the_statewide_reference_district_is_about_half_proficient(floor_strategies):
    _, rows = traditional_run(floor_strategies, mean_offset_sd=0.0, years=1)
    # one replicate of floor_strategies' district at the state's mean: 0.58 at the steady
    # state (the reference that sets the cut is spun up as long, §7.10), 0.5 before
    assert rows.proficient.dropna().astype(float).mean() == pytest.approx(0.5, abs=0.1)


def test_bands_cut_at_three_and_one_years_below_and_one_above():
    got = start_band(np.array([-3.5, -3.0, -2.0, -1.0, 0.0, 0.99, 1.0, 2.5]))
    assert list(got) == ["3+ below", "1-3 below", "1-3 below", "on grade", "on grade",
                         "on grade", "above", "above"]


def test_prerequisites_come_earlier_and_ancestors_are_their_closure():
    cur = generate_curriculum(np.random.default_rng(3))
    ids = np.arange(cur.n_skills)[:, None]
    pre = cur.prereqs.astype(int)
    assert ((pre == NO_SKILL) | (pre < ids)).all()
    # every prerequisite of a prerequisite is an ancestor
    for s in range(0, cur.n_skills, 7):
        anc = set(cur.ancestors[s][cur.ancestors[s] >= 0].tolist())
        for p in pre[s][pre[s] >= 0]:
            assert p in anc
            assert set(cur.ancestors[p][cur.ancestors[p] >= 0].tolist()) <= anc
    # prerequisites reach into earlier grades
    grade_gap = cur.skill_grade[:, None] - np.where(pre >= 0, cur.skill_grade[pre], 99)
    assert (grade_gap == 1).any()
