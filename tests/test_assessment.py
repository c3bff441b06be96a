"""Assessments measure what they claim to, and the cut is the state's, not the scenario's."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.scenario import load_scenario
from sim.district.reference import district_for, state_reference
from sim.engine import assessment, learning
from sim.engine.curriculum import generate_curriculum
from sim.engine.students import StudentState


@pytest.fixture(scope="module")
def quick():
    return load_scenario("scenarios/quick.toml")


def _scores(model, seed=1):
    st = model.students
    tested = np.isin(st.grade, model.params.assessment.tested_grades)
    return assessment.state_test(np.random.default_rng(seed), st, model.curriculum,
                                 model.params.assessment, 6.0, tested), tested


def test_the_state_test_samples_only_the_enrolled_grade(quick):
    model = district_for(quick, quick.arms[0])
    before, tested = _scores(model)
    st, cur = model.students, model.curriculum
    own = cur.skill_grade[None, :] == st.grade[:, None]
    st.mastery[~own] = 1 - np.minimum(st.mastery[~own], 1)  # flip every other grade's skills
    st.familiarity[~own] = 200
    after, _ = _scores(model)
    np.testing.assert_array_equal(before[tested], after[tested])
    st.mastery[own] = 1  # master the enrolled grade
    mastered, _ = _scores(model)
    assert np.nanmean(mastered) > np.nanmean(before) + 10
    assert np.isnan(before[~tested]).all() and not np.isnan(before[tested]).any()


def test_familiarity_without_mastery_raises_state_scores(quick):
    model = district_for(quick, quick.arms[0])
    st, cur = model.students, model.curriculum
    own = cur.skill_grade[None, :] == st.grade[:, None]
    st.mastery[own] = 0
    st.familiarity[own] = 0
    unseen, tested = _scores(model)
    st.familiarity[own] = 10
    seen, _ = _scores(model)
    a = model.params.assessment
    assert np.nanmean(unseen) < 100 * a.state_guess
    assert np.nanmean(seen) == pytest.approx(100 * (a.state_guess + a.familiarity_gain), abs=1.5)


def test_readiness_raises_learning():
    cur = generate_curriculum(np.random.default_rng(0))
    n = 20000
    st = StudentState(n, cur.n_skills)
    skill = int(np.flatnonzero((cur.prereqs >= 0).sum(axis=1) >= 2)[0] + 0)
    skills = np.full(n, skill)
    slots = np.arange(n)
    ready = slots < n // 2
    pre = cur.prereqs[skill][cur.prereqs[skill] >= 0]
    st.mastery[np.ix_(np.flatnonzero(ready), pre)] = 1
    r, missing = learning.prerequisite_status(st.mastery, slots, skills, cur.prereqs)
    assert (r[ready] == 1).all() and (r[~ready] == 0).all()
    u = np.random.default_rng(1).random((2, n))
    rate = np.full(n, 0.3, np.float32)
    _, gained = learning.learn(st, slots, skills, rate, r, missing, u[0], u[1], 0.15, 0.0,
                            cur.prereqs)
    p_ready, p_unready = 1 - np.exp(-0.3), 1 - np.exp(-0.3 * 0.15)
    assert gained[ready].mean() == pytest.approx(p_ready, abs=0.015)
    assert gained[~ready].mean() == pytest.approx(p_unready, abs=0.01)
    assert (st.familiarity[slots, skills] == 1).all()  # exposure counts, mastered or not


def test_exit_slips_pass_at_one_minus_slip_or_guess():
    u = np.random.default_rng(2).random(100000)
    mastered = np.arange(100000) % 2 == 0
    passed = assessment.exit_slip(u, mastered, guess=0.25, slip=0.1)
    assert passed[mastered].mean() == pytest.approx(0.9, abs=0.01)
    assert passed[~mastered].mean() == pytest.approx(0.25, abs=0.01)


def test_the_cut_is_fixed_by_the_state_not_by_the_district_or_arms(quick):
    other = quick.model_copy(update={
        "seed": 999, "district": quick.district.model_copy(update={"mean_offset_sd": 1.0,
                                                                   "schools": 5}),
        "arms": quick.arms[:1]})
    a, b = state_reference(quick), state_reference(other)
    np.testing.assert_array_equal(a.cut_by_grade, b.cut_by_grade)
    tested = quick.assessment.tested_grades
    assert np.isfinite(a.cut_by_grade[tested]).all()
    assert np.isnan(np.delete(a.cut_by_grade, tested)).all()
