"""Out-of-school learning (``sim.engine.outside``, docs/model.md §7.11): a persistent
intensity per student, tied to the district's offset, that moves mastery on the student's
own frontier each summer."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.parameters import LearningParams
from sim.config.scenario import load_scenario
from sim.district.model import District
from sim.engine import outside
from sim.engine.students import MASTERED_BEFORE, MASTERED_THIS_YEAR

SD = 0.3  # the default outside_sd_years (grade-years per summer)


def _district(offset: float, *sets: str) -> District:
    scenario = load_scenario("scenarios/quick.toml", [
        "district.schools=30", f"district.mean_offset_sd={offset}", "district.mobility=0",
        f"learning.outside_sd_years={SD}", *sets])
    return District(scenario, scenario.arms[0], reference=None)


def _mastered(d: District) -> np.ndarray:
    return (d.students.mastery != 0).sum(axis=1)


def _summer_changes(d: District, summers: int) -> np.ndarray:
    """Each student's change in skills mastered over each summer (students x summers), from
    grade 2 (a kindergartner far behind has little to lose) to the last grade that stays
    (a graduate's slot takes a newcomer)."""
    stay = (d.students.grade >= 2) & (d.students.grade < d.grades[-1] - summers + 1)
    out = []
    for _ in range(summers):
        before = _mastered(d)
        d.summer()
        out.append(_mastered(d) - before)
    return np.stack(out, axis=1)[stay]


def test_intensity_has_the_set_sd_statewide_and_the_district_its_offset():
    lp = LearningParams(outside_sd_years=SD, outside_community_weight=1.0)
    rng = np.random.default_rng(5)
    w_s = 0.2
    school = np.sqrt(w_s) * rng.standard_normal(2000).repeat(100)  # 2000 schools of 100
    state = outside.draw_intensity(np.random.default_rng(6), school, lp, w_s)
    assert state.mean() == pytest.approx(0.0, abs=0.01)
    assert state.std() == pytest.approx(SD, rel=0.03)
    district = outside.draw_intensity(np.random.default_rng(6), school - 1.0, lp, w_s)
    assert district.mean() == pytest.approx(-SD, abs=0.01)  # 1 SD below, out of school too
    half = outside.draw_intensity(np.random.default_rng(6), school - 1.0,
                                  LearningParams(outside_sd_years=SD,
                                                 outside_community_weight=0.5), w_s)
    assert half.mean() == pytest.approx(-SD / 2, abs=0.01)


def test_counts_round_at_random_to_the_exact_mean():
    intensity = np.full(200_000, 0.13, np.float32)  # 2.6 skills of 20 a grade
    counts = outside.summer_counts(intensity, 20, np.random.default_rng(1).random(200_000))
    assert set(np.unique(counts)) == {2, 3}
    assert counts.mean() == pytest.approx(2.6, abs=0.01)
    assert outside.summer_counts(-intensity, 20, np.full(200_000, 0.5)).tolist()[:1] == [-3]


def test_gains_fill_the_lowest_gaps_and_losses_take_the_highest_skills():
    m = np.array([[1, 0, 1, 0, 0, 1, 0, 0],
                  [1, 0, 1, 0, 0, 1, 0, 0],
                  [1, 1, 1, 1, 0, 0, 0, 0]], np.uint8)
    fam = np.zeros_like(m)
    done = outside.apply_summer(m, fam, np.array([3, -2, 0]), 6)
    assert done.tolist() == [3, -2, 0]
    assert m.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0],   # the gaps at 1 and 3, then 4 beyond
                          [1, 0, 0, 0, 0, 0, 0, 0],   # the island at 5 and the skill at 2
                          [1, 1, 1, 1, 0, 0, 0, 0]]
    assert fam[0].tolist() == [0, 6, 0, 6, 6, 0, 0, 0] and not fam[1:].any()
    assert (m[0][[1, 3, 4]] == MASTERED_BEFORE).all() and MASTERED_THIS_YEAR not in m
    everything = np.ones((1, 4), np.uint8)
    assert outside.apply_summer(everything, np.zeros_like(everything), np.array([2]),
                                6).tolist() == [0]  # the curriculum has run out


def test_summer_change_varies_across_students_and_persists_across_summers():
    on = _summer_changes(_district(0.0), 2)
    off = _summer_changes(_district(0.0, "learning.outside_sd_years=0"), 2)
    # the spread the mechanism adds: 0.3 grade-years of 20 skills = 6 skills a summer
    added = np.sqrt(on.var(axis=0) - off.var(axis=0))
    assert added == pytest.approx([SD * 20] * 2, rel=0.1)
    # the same students gain or lose again the next summer (the source: 52% lost ground in
    # all five summers observed); without the mechanism a summer's change is mostly noise
    assert np.corrcoef(on[:, 0], on[:, 1])[0, 1] > 0.8
    assert np.corrcoef(off[:, 0], off[:, 1])[0, 1] < 0.3
    assert ((on < 0).all(axis=1).mean() > 0.35)  # the statewide mean change is ~0 here


@pytest.mark.parametrize("weight", [1.0, LearningParams().outside_community_weight])
def test_a_district_below_the_state_loses_ground_every_summer_by_its_offset(weight):
    state = _summer_changes(_district(0.0, f"learning.outside_community_weight={weight}"),
                            1).mean()
    poor = _summer_changes(_district(-1.0, f"learning.outside_community_weight={weight}"),
                           1).mean()
    # 1 SD below the state: weight x 0.3 grade-years (6 skills at weight 1, 4.2 at the
    # default 0.7) more lost each summer
    assert poor - state == pytest.approx(-weight * SD * 20, abs=0.6)
