"""Teachers grow with the years: returns to experience, to the program's practice, trust.

The rules (``sim.engine.teachers``: ``experience_return``, ``effect_now``,
``grow_trust``) are tested on their numbers; the year-end bookkeeping
(``Accountability._mature`` and ``_replace``) on a small simulated district, traditional
against personalized, three reported years.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.accountability.sensemaking import experience_profile
from sim.config.parameters import SensemakingParams, TeacherParams, TeamParams
from sim.config.scenario import validate_scenario
from sim.engine.teachers import (
    EXPERIENCE_MAX,
    Workforce,
    capacity_now,
    draw_teachers,
    effect_now,
    experience_return,
    experience_share,
    grow_trust,
)
from sim.experiments.runner import run

TP = TeacherParams()
SP = SensemakingParams()
WORKFORCE = Workforce(experience_profile(SP, EXPERIENCE_MAX), SP.novice_capacity)


def draw(schools, grades, lines):
    return draw_teachers(np.random.default_rng(0), np.random.default_rng(1), TP,
                         (schools, grades, lines), 0.5, WORKFORCE)


# ==== the curve ============================================================================
def test_returns_to_experience_are_steep_early_and_slower_later():
    r = experience_return(np.array([0, 1, 3, 10, 30]), TP)
    assert r[0] == 0.0
    # about 0.08 over the first three years (Rockoff 2004, Papay & Kraft 2015)
    assert r[2] == pytest.approx(0.08 * (1 - np.exp(-2)) + 0.05 * 0.3, abs=1e-12)
    assert 0.07 < r[2] < 0.1
    # the rest of the decade adds about another 0.05, then nothing
    assert r[3] == pytest.approx(0.08 * (1 - np.exp(-10 / 1.5)) + 0.05, abs=1e-12)
    assert 0.04 < r[3] - r[2] < 0.06
    assert r[4] - r[3] == pytest.approx(0.0, abs=2e-4)  # after 10 years: flat
    steps = np.diff(experience_return(np.arange(12), TP))
    assert (steps > 0).all() and (np.diff(steps) < 0).all()  # every year less than the last


def test_the_drawn_workforce_keeps_mean_effect_zero_and_novices_start_lower():
    staff = draw(200, list(range(9)), 4)
    assert abs(staff.effect.mean()) < 0.005  # 7,200 teachers: SE of the mean about 0.0018
    assert staff.effect.std() == pytest.approx(0.153, abs=0.004)  # 0.15 plus experience
    rbar = staff.workforce_return
    np.testing.assert_allclose(staff.effect - staff.ability,
                               experience_return(staff.experience, TP) - rbar)
    assert 0.07 < rbar < 0.1  # a novice's deficit: the steady workforce is young


def test_the_workforce_starts_in_the_exits_steady_state():
    """Experience is drawn from the stationary profile of the exits' hazard by experience:
    a year of exits (novices in at 0) and ageing leaves the profile where it was."""
    p = WORKFORCE.profile
    assert p.shape == (EXPERIENCE_MAX,) and p.sum() == pytest.approx(1.0)
    hazard = SP.exit_base + SP.exit_novice * (np.arange(EXPERIENCE_MAX) < SP.novice_exit_years) \
        + SP.exit_late * (np.arange(EXPERIENCE_MAX) >= SP.late_exit_years)
    survivors = p * (1 - hazard)
    after = np.concatenate([[(p * hazard).sum()], survivors[:-1]])  # leavers -> novices
    # exact but for the profile's end at EXPERIENCE_MAX (a share of about 2e-4 beyond it)
    np.testing.assert_allclose(after, p, atol=5e-4)
    mean_years = p @ np.arange(EXPERIENCE_MAX)
    assert 6 < mean_years < 9  # US teachers: median about 10-14 years (NCES SASS); a
    # single-district model without mid-career entrants is younger
    staff = draw(200, list(range(9)), 4)
    assert staff.experience.mean() == pytest.approx(mean_years, abs=0.4)


def test_capacity_grows_with_experience_from_a_novices_to_the_workforces():
    staff = draw(200, list(range(9)), 4)
    cap = capacity_now(staff, TP)
    assert cap.mean() == pytest.approx(TP.capacity_mean, abs=0.06)  # the workforce's mean
    staff.experience[:] = 0  # all novices now: novice_capacity on average
    assert capacity_now(staff, TP).mean() == pytest.approx(SP.novice_capacity, abs=0.08)
    staff.experience[:] = 10
    ten = capacity_now(staff, TP).mean()
    assert TP.capacity_mean < ten < TP.capacity_mean + 1.5  # about 6: the workforce is young
    shares = experience_share(np.array([0, 1, 3, 10, EXPERIENCE_MAX]), TP)
    assert shares[0] == 0 and shares[-1] == 1 and (np.diff(shares) > 0).all()


def test_a_new_practice_counts_only_the_years_taught_in_it():
    staff = draw(1, [6], 3)
    staff.ability[:] = 0.0
    staff.experience[:] = [0, 10, 10]
    staff.program_years[:] = [0, 0, 3]
    practising = np.array([True, True, True])
    s, rbar = TP.specific_experience_share, staff.workforce_return
    r = experience_return(np.array([0, 3, 10]), TP)
    np.testing.assert_allclose(effect_now(staff, practising, TP),
                               [-rbar, (1 - s) * r[2] - rbar, (1 - s) * r[2] + s * r[1] - rbar])
    # outside the program the whole career counts: a veteran loses s x r(10), about 0.034
    outside = effect_now(staff, ~practising, TP)
    assert outside[1] - effect_now(staff, practising, TP)[1] == pytest.approx(
        0.26 * r[2], abs=1e-12)
    assert outside[1] == pytest.approx(r[2] - rbar)


def test_trust_closes_a_fifth_of_its_gap_each_year_together():
    trust = np.array([0.2, 0.5, 1.0, 0.5])
    together = np.array([True, True, True, False])
    g = TeamParams().trust_growth
    np.testing.assert_allclose(grow_trust(trust, together, g), [0.36, 0.6, 1.0, 0.5])
    x = np.array([0.2])
    for _ in range(3):
        x = grow_trust(x, np.array([True]), g)
    assert x[0] == pytest.approx(1 - 0.8 * 0.8 ** 3)  # 0.59: the gap about halved in 3 years


# ==== the year-end bookkeeping in a district ===============================================
@pytest.fixture(scope="module")
def teacher_years():
    sc = validate_scenario({
        "name": "t", "seed": 5, "years": 3, "replicates": 1,
        "district": {"schools": 2, "classes_per_grade": 4, "class_size": 20,
                     "grades": [4, 5, 6, 7, 8], "program_grades": [6, 7, 8],
                     "room_size": 40},
        "assessment": {"reference_students_per_grade": 300},
        "arms": [{"label": "trad", "pacing": "traditional"},
                 {"label": "pers", "pacing": "personalized", "floor": 3}]})
    return run(sc, workers=1).teacher_years.sort_values(["arm", "teacher", "year"])


def _pairs(ty):
    """Each position's row next to its row the year before (same arm)."""
    prev = ty.copy()
    prev["year"] += 1
    return ty.merge(prev, on=["arm", "teacher", "year"], suffixes=("", "_before"))


def test_experience_grows_a_year_a_year_and_novices_start_at_zero(teacher_years):
    p = _pairs(teacher_years)
    stay = ~p.novice
    assert stay.sum() > 50 and p.novice.sum() > 3
    np.testing.assert_array_equal(p.experience[stay], p.experience_before[stay] + 1)
    assert (p.experience[p.novice] == 0).all()
    assert (p.program_years[p.novice] == 0).all()


def test_program_years_grow_only_where_the_program_is_practised(teacher_years):
    ty = teacher_years
    # the traditional arm and the grades outside the program never practise a new one
    assert (ty[ty.arm == "trad"].program_years == 0).all()
    assert (ty[~ty.grade.isin([6, 7, 8])].program_years == 0).all()
    p = _pairs(ty[ty.arm == "pers"])
    grow = p.program & ~p.novice
    assert grow.sum() > 20
    np.testing.assert_array_equal(p.program_years[grow], p.program_years_before[grow] + 1)
    # at year 3 a program teacher who stayed has taught it two years
    y3 = ty[(ty.arm == "pers") & (ty.year == 3) & ty.program]
    # (about 20% leave a year in a young workforce: about 64% stay both years)
    assert set(y3.program_years) <= {0, 1, 2} and (y3.program_years == 2).mean() > 0.4


def test_team_members_trust_grows_and_the_effect_follows_the_years(teacher_years):
    g = TeamParams().trust_growth
    p = _pairs(teacher_years[teacher_years.arm == "pers"])
    team = (p.team_before >= 0) & ~p.novice
    assert team.sum() > 20
    np.testing.assert_allclose(p.trust[team], p.trust_before[team]
                               + g * (1 - p.trust_before[team]))
    alone = (p.team_before < 0) & ~p.novice
    np.testing.assert_array_equal(p.trust[alone], p.trust_before[alone])
    # a staying teacher's effect moves by exactly the returns to their added years
    s = TP.specific_experience_share
    stay = p[~p.novice]

    def returns(exp, prog, practising):
        practice = np.where(practising, prog, exp)
        return ((1 - s) * experience_return(exp.to_numpy(), TP)
                + s * experience_return(practice, TP))

    change = (returns(stay.experience, stay.program_years, stay.program)
              - returns(stay.experience_before, stay.program_years_before,
                        stay.program_before))
    np.testing.assert_allclose(stay.true_effect - stay.true_effect_before, change, atol=1e-12)
    assert (change[stay.program.to_numpy()] > 0).all()


def test_a_dropped_program_stops_adding_program_years_and_its_teachers_practice_returns():
    """Every school fails its first review (a gain of the whole share proficient required)
    at the end of year 1: that year still counts, later years do not, and from year 2 the
    teachers teach the practice of their whole career again."""
    sc = validate_scenario({
        "name": "t", "seed": 5, "years": 3, "replicates": 1,
        "district": {"schools": 2, "classes_per_grade": 2, "class_size": 20,
                     "grades": [5, 6, 7, 8], "program_grades": [6, 7, 8]},
        "assessment": {"reference_students_per_grade": 300},
        "arms": [{"label": "pers", "pacing": "personalized", "floor": 3,
                  "review": {"after_years": 1, "timing_spread": 0, "min_improvement": 1.0,
                             "leniency_sd": 0.0}}]})
    res = run(sc, workers=1)
    assert res.school_years.groupby("year").program_active.sum().to_dict() == {1: 2, 2: 0,
                                                                               3: 0}
    ty = res.teacher_years
    prog = ty[ty.grade.isin([6, 7, 8])].sort_values(["teacher", "year"])
    assert prog[prog.year == 1].program.all() and not prog[prog.year > 1].program.any()
    wide = prog.pivot(index="teacher", columns="year", values="program_years")
    novice = prog.pivot(index="teacher", columns="year", values="novice").astype(bool)
    stayed = ~novice[2] & ~novice[3]
    assert stayed.sum() > 5
    assert (wide[1] == 0).all() and (wide.loc[stayed, 2] == 1).all()
    assert (wide.loc[stayed, 3] == 1).all()  # no year added once dropped
    # outside the program the effect counts the whole career: ability + r(experience) - r̄
    y3 = prog[prog.year == 3]
    e3 = y3.true_effect.to_numpy()
    r = experience_return(y3.experience.to_numpy(), TP)
    y2 = prog[prog.year == 2].set_index("teacher").loc[y3.teacher]
    r2 = experience_return(y2.experience.to_numpy(), TP)  # r̄ cancels
    same = ~y3.novice.to_numpy()
    np.testing.assert_allclose((e3 - r)[same], (y2.true_effect.to_numpy() - r2)[same],
                               atol=1e-12)  # the ability left over is the same person's
