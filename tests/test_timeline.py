"""The program as implemented: leaders' timeline of compromises and its calibration facts.

Leaders' new responses (gradual floors, grade-level-first units), the program's
pilots spread across schools in turn and offered from a given year, the second
escalation list (supplements), the decision before program year 1 on the
results before the program, and the timeline facts measured on a known history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.accountability import leaders
from sim.config.parameters import CalendarParams, Leaders
from sim.config.scenario import validate_scenario
from sim.experiments.runner import run
from sim.policies import limits
from sim.policies.limits import UNLIMITED, FloorCeiling, GradualFloor
from sim.policies.pacing import GradeLevelFirst, Playlist
from sim.policies.regimes import Regime
from sim.validation import facts as F
from sim.validation.patterns import CALIBRATION

PILOT = ["gradual_floor", "grade_level_first"]


def scenario(years=4, anticipation=1.0, target=0.95, schools=3, responsiveness=100):
    """A small district whose leaders respond almost surely to any shortfall."""
    arm = {"label": "led", "pacing": "personalized", "floor": 3,
           "leaders": {"responses": ["test_prep", PILOT], "supplements": ["tutoring"],
                       "pilots_from_year": 3, "responsiveness": responsiveness}}
    return validate_scenario({
        "name": "t", "seed": 4, "years": years, "replicates": 1,
        "district": {"schools": schools, "classes_per_grade": 2, "class_size": 20,
                     "grades": [5, 6, 7, 8], "program_grades": [6, 7, 8]},
        "assessment": {"reference_students_per_grade": 300},
        "sensemaking": {"target_proficiency": target},
        "leadership": {"anticipation": anticipation},
        "arms": [arm]})


# --- the responses -------------------------------------------------------------------------------
def test_a_gradual_floor_replaces_the_window_and_rises_from_the_fixed_floor():
    cal, lead = CalendarParams(), Leaders()
    base = Regime("arm", Playlist(), [FloorCeiling(3.0, UNLIMITED)], [])
    prep = leaders.apply_response(base, "test_prep", lead, cal)
    gf = leaders.apply_response(prep, "gradual_floor", lead, cal)
    assert prep.window_days() == 30 and gf.window_days() == 0
    assert gf.gradual_floor() and not prep.gradual_floor() and not base.gradual_floor()
    rising = [x for x in gf.limits if isinstance(x, GradualFloor)]
    assert len(rising) == 1
    g = rising[0]
    assert g.floor_on(0) == 3.0 and g.floor_on(cal.state_test_day - 5) == 0.0  # a week before
    assert g.floor_on(70) == pytest.approx(3.0 * (1 - 70 / 145))
    assert gf.floor() == 3.0  # the fixed floor is kept
    again = leaders.apply_response(gf, "gradual_floor", lead, cal)
    assert sum(isinstance(x, GradualFloor) for x in again.limits) == 1


def test_grade_level_first_units_replace_the_window_and_keep_the_floor():
    cal, lead = CalendarParams(), Leaders()
    base = Regime("arm", Playlist(), [FloorCeiling(3.0, UNLIMITED)], [])
    prep = leaders.apply_response(base, "test_prep", lead, cal)
    gl = leaders.apply_response(prep, "grade_level_first", lead, cal)
    assert isinstance(gl.pacing, GradeLevelFirst) and gl.grade_level_first
    assert not prep.grade_level_first and isinstance(prep.pacing, Playlist)
    assert gl.window_days() == 0 and gl.floor() == 3.0
    assert not any(isinstance(x, limits.TestPrepWindow) for x in gl.limits)
    assert gl.personalized  # still team rooms and individual paths


def test_pilots_are_offered_from_their_year_and_spread_across_schools_in_turn():
    lead = Leaders(pilots_from_year=3)
    assert not leaders.offered(PILOT, 2, lead) and leaders.offered(PILOT, 3, lead)
    assert not leaders.offered("gradual_floor", 1, lead)
    assert leaders.offered("test_prep", 1, lead) and leaders.offered("tutoring", 1, lead)
    taken = [leaders.alternative(PILOT, turn) for turn in range(5)]
    assert taken.count("gradual_floor") == 3 and taken.count("grade_level_first") == 2
    assert leaders.alternative("test_prep", 4) == "test_prep"


def test_offered_pilots_replace_the_window_with_or_without_the_leaders_decision():
    lead, entries = Leaders(pilots_from_year=3), ["test_prep", PILOT, "raise_floor"]
    # a school with a window moves to the pilot once offered, whatever its leader decides
    assert leaders.next_step(entries, 1, 3, lead, has_window=True, acts=False) == 1
    assert leaders.next_step(entries, 1, 2, lead, has_window=True, acts=True) is None  # waits
    # a leader who would ask for a window takes the offered pilot instead
    assert leaders.next_step(entries, 0, 3, lead, has_window=False, acts=True) == 1
    assert leaders.next_step(entries, 0, 2, lead, has_window=False, acts=True) == 0
    assert leaders.next_step(entries, 0, 3, lead, has_window=False, acts=False) is None
    # past the pilots, the list goes on as before
    assert leaders.next_step(entries, 2, 4, lead, has_window=False, acts=True) == 2
    assert leaders.next_step(entries, 3, 4, lead, has_window=False, acts=True) is None
    assert leaders.pilot_step(entries, 2, 4, lead) is None


def test_a_list_of_alternatives_is_checked_as_responses():
    for bad in (["gradual_floor", "pray"], []):
        with pytest.raises(ValueError):
            Leaders(responses=["test_prep", bad])
    assert Leaders(responses=["test_prep", PILOT]).responses[1] == PILOT


# --- the rules in a run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timeline_run():
    return run(scenario())


def test_leaders_act_before_year_one_on_the_results_before_the_program(timeline_run):
    sy = timeline_run.school_years.sort_values(["year", "school"])
    y1 = sy[sy.year == 1]
    assert (y1.proficiency < 0.9).all()  # far below target: every leader acts
    assert (y1.test_prep_weeks == 6.0).all() and (y1.tutoring == 2.0).all()  # from year 1


def test_pilots_wait_for_their_year_then_replace_the_window(timeline_run):
    sy = timeline_run.school_years.set_index(["year", "school"]).sort_index()
    assert (sy.loc[2].test_prep_weeks == 6.0).all()  # year 2: pilots not offered yet
    assert not sy.loc[2].gradual_floor.any() and not sy.loc[2].grade_level_first.any()
    assert (sy.loc[1].response == "").all()  # nothing left to take for year 2
    assert sy.loc[2].response.tolist() == ["gradual_floor", "grade_level_first",
                                           "gradual_floor"]  # taken for year 3, in turn
    y3 = sy.loc[3]
    assert y3.gradual_floor.tolist() == [True, False, True]
    assert y3.grade_level_first.tolist() == [False, True, False]
    assert (y3.test_prep_weeks == 0.0).all() and (y3.tutoring == 2.0).all()
    assert (sy.loc[3].response == "").all() and (sy.loc[4].gradual_floor.sum() == 2)


def test_a_leader_without_a_window_takes_the_offered_pilot_instead():
    sc = scenario(years=2, anticipation=0.0)
    sc.arms[0].leaders.pilots_from_year = 2
    sy = run(sc).school_years.set_index(["year", "school"]).sort_index()
    assert (sy.loc[1].test_prep_weeks == 0).all()  # no decision before year 1
    assert sy.loc[1].response.tolist() == ["gradual_floor+tutoring",
                                           "grade_level_first+tutoring",
                                           "gradual_floor+tutoring"]
    y2 = sy.loc[2]
    assert (y2.test_prep_weeks == 0).all() and y2.gradual_floor.tolist() == [True, False, True]
    assert y2.grade_level_first.tolist() == [False, True, False] and (y2.tutoring == 2).all()


def test_without_anticipation_or_shortfall_no_leader_acts_before_year_one():
    for kw in ({"anticipation": 0.0}, {"target": 0.01}):
        sy = run(scenario(years=1, **kw)).school_years
        assert (sy.test_prep_weeks == 0).all() and (sy.tutoring == 0).all(), kw


# --- the facts, on a known history ---------------------------------------------------------------
def history() -> pd.DataFrame:
    """Two replicates of five schools over four years, with known compromises."""
    rows = []
    for rep, window1 in ((0, {0, 1}), (1, {0, 1, 2})):
        for year in (1, 2, 3, 4):
            for school in range(5):
                window = school in window1 if year == 1 else (year == 2 and school < 4)
                rows.append({
                    "replicate": rep, "year": year, "school": school,
                    "test_prep_weeks": 6.0 if window else 0.0,
                    "gradual_floor": year >= 3 and school in (0, 2, 4),
                    "grade_level_first": year >= 3 and school in (1, 3) and rep == 0,
                    "tutoring": 2.0 if year >= 2 or school == 0 else 0.0,
                    "program_active": year <= 3 or (year == 4 and school < 2 and rep == 1),
                    "dropped": year == 3 and school >= 2 or year == 4 and rep == 1 and school == 0})
    return pd.DataFrame(rows)


def test_timeline_facts_are_measured_right_on_a_known_history():
    by_name = {f.pattern.name: f for f in F.facts() if f.study == "timeline"}
    assert len(by_name) == 8
    h = history()
    expect = {  # per replicate, counts of 5
        "schools with a test-prep window, year 1 (of 5)": [2.0, 3.0],
        "schools with a test-prep window, year 2 (of 5)": [4.0, 4.0],
        "schools with a gradual floor instead of a test-prep window, year 3 (of 5)": [3.0, 3.0],
        "schools with grade-level-first units instead of a test-prep window, year 3 (of 5)":
            [2.0, 0.0],
        "schools with supplemental grade-level tutoring, year 3 (of 5)": [5.0, 5.0],
        "schools running the program through the study, year 3 (of 5)": [5.0, 5.0],
        "schools running the program in the year after the study, year 4 (of 5)": [0.0, 2.0],
        "schools still running the program after the year after the study (of 5)": [0.0, 1.0],
    }
    assert set(expect) == set(by_name)
    for name, values in expect.items():
        f = by_name[name]
        assert f.table == "school_years" and f.pattern.kind == CALIBRATION
        assert f.values(h, None) == values, name
    assert np.isnan(F.schools_with(h, "window", 5))


def test_timeline_facts_quote_the_seed_and_name_the_window():
    tl = [f.pattern for f in F.facts() if f.study == "timeline"]
    assert sum("test-prep window" in p.name for p in tl) == 4
    assert all("main seed (000)" in p.source for p in tl)
    assert {p.target for p in tl} == {0.0, 2.0, 3.0, 4.0, 5.0}
    assert all(p.tolerance == pytest.approx(0.83) for p in tl)
    # the band holds k exactly when k is the binomial mode of 5 schools at mean k (5/6 rule)
    p = tl[0]
    assert p.low == pytest.approx(2 - 0.83) and p.high == pytest.approx(2 + 0.83)


def test_the_timeline_study_keeps_five_schools_and_the_years_it_needs_even_when_quick():
    from sim.validation.studies import TIMELINE, ParameterSet, Settings, shipped, timeline

    params = ParameterSet.load(overrides=["leadership.anticipation=0.25"])
    for quick in (True, False):
        sc = timeline(params, Settings.make(quick), shipped(TIMELINE))
        assert sc.district.schools == 5 and sc.years == 4, quick
        assert [a.label for a in sc.arms] == ["tepp"] and sc.arms[0].leaders is not None
        assert sc.district.grades == [5, 6, 7, 8] and sc.district.program_grades == [6, 7, 8]
        assert sc.arms[0].review.after_years == 3 and sc.arms[0].review.timing_spread == 0
        assert sc.leadership.anticipation == 0.25  # the common parameter set applies
        assert sc.district.classes_per_grade == (2 if quick else 4)
