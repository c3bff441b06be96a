"""Regimes do what their names promise, on every assignment of a simulated year."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.scenario import validate_scenario
from sim.district.reference import district_for
from sim.engine.random_streams import DailyDraws
from sim.policies.limits import GradualFloor
from sim.policies.regimes import assign_day

TEST_DAY = 100
DAYS = 140


def scenario(**arm):
    return validate_scenario({
        "name": "t", "seed": 5, "years": 1,
        "district": {"schools": 2, "classes_per_grade": 2, "class_size": 20,
                     "program_grades": [5, 6, 7, 8]},
        "calendar": {"days": DAYS, "state_test_day": TEST_DAY, "spring_test_day": DAYS - 2,
                     "benchmark_every_days": 30, "burn_in_years": 0},
        "assessment": {"reference_students_per_grade": 300},
        "arms": [{"label": "arm", **arm}],
    })


def capture(sc):
    """Run the burn-in and one year, recording every program assignment.

    Returns arrays: day, slot, skill, enrolled grade, and whether the record
    showed the skill mastered at the time it was assigned.
    """
    model = district_for(sc, sc.arms[0])
    model.burn_in()
    log = {k: [] for k in ("day", "slot", "skill", "grade", "believed")}
    original = model._assign

    def spy(present, teacher):
        skills, modality = original(present, teacher)
        prog = model.in_program[present]
        log["day"].append(np.full(prog.sum(), model.day))
        log["slot"].append(present[prog])
        log["skill"].append(skills[prog])
        log["grade"].append(model.students.grade[present[prog]].astype(int))
        log["believed"].append(model.record.believed[present[prog], skills[prog]])
        return skills, modality

    model._assign = spy
    model.run_days()
    out = {k: np.concatenate(v) for k, v in log.items()}
    out["offset"] = model.curriculum.skill_grade[out["skill"]] - out["grade"]
    out["model"] = model
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_floor_of_k_never_assigns_content_more_than_k_years_below_grade(k):
    got = capture(scenario(pacing="personalized", floor=k))
    assert got["offset"].min() == -k  # the floor binds: someone works right at it
    assert (got["offset"] >= -k).all()


def test_without_a_floor_content_goes_further_below_grade():
    got = capture(scenario(pacing="personalized"))
    assert got["offset"].min() < -3


def test_during_a_test_prep_window_every_assignment_is_at_grade_level():
    weeks = 4
    got = capture(scenario(pacing="personalized", floor=3, test_prep_weeks=weeks))
    window = (got["day"] >= TEST_DAY - 5 * weeks) & (got["day"] < TEST_DAY)
    assert window.sum() > 1000
    assert (got["offset"][window] == 0).all()
    before = got["day"] < TEST_DAY - 5 * weeks
    assert (got["offset"][before] < 0).mean() > 0.2  # outside it, personalization goes below


def test_the_gradual_floor_reaches_grade_level_by_the_test_day():
    got = capture(scenario(pacing="personalized", gradual_floor={"start_floor": 3}))
    model = got["model"]
    spg = model.curriculum.skills_per_grade
    position = (got["skill"] - model.curriculum.first_skill(got["grade"])) / spg
    floor = GradualFloor(3.0, 0, TEST_DAY - 5, TEST_DAY)  # default: a week before the test
    allowed = -np.array([floor.floor_on(d) for d in range(DAYS)])[got["day"]]
    # Bounds are rounded to whole skills: half a skill of slack.
    assert (position >= allowed - 0.5 / spg - 1e-9).all()
    last_week = (got["day"] >= TEST_DAY - 5) & (got["day"] < TEST_DAY)
    assert last_week.sum() > 500 and (got["offset"][last_week] >= 0).all()
    lowest_by_week = [got["offset"][(got["day"] // 20) == w].min() for w in range(TEST_DAY // 20)]
    assert lowest_by_week[0] == -3 and lowest_by_week[-1] >= -1
    assert all(a <= b for a, b in zip(lowest_by_week, lowest_by_week[1:], strict=False))


def test_grade_level_first_gives_below_grade_work_only_for_missing_prerequisites():
    got = capture(scenario(pacing="grade_level_first", floor=3))
    model = got["model"]
    cur, cal = model.curriculum, model.params.calendar
    below = np.flatnonzero((got["offset"] < 0) & (got["day"] < TEST_DAY))
    assert below.size > 500
    assert not got["believed"][below].any()  # the record lacked every one of them
    for i in below[:: max(1, below.size // 400)]:
        d, g, s = got["day"][i], got["grade"][i], got["skill"][i]
        unit = min(cur.units_per_grade - 1, d * cur.units_per_grade // cal.state_test_day)
        ancestors = set(cur.ancestors[cur.unit_skills(g, unit)].ravel().tolist())
        assert s in ancestors, (d, g, s)  # a prerequisite of the day's unit
    at_grade = (got["offset"] == 0) & (got["day"] < TEST_DAY)
    assert at_grade.mean() > 0.05


def test_traditional_pacing_keeps_the_class_on_grade_level_content_most_days():
    got = capture(scenario(pacing="traditional"))
    assert (got["offset"] == 0).mean() > 0.6
    assert (got["offset"] < 0).any()  # the reteach group
    # extension at most a grade ahead; reteaching at most reteach_depth_years (1) below
    assert got["offset"].max() == 1 and got["offset"].min() >= -1


def test_extension_reaches_as_far_as_extension_years_and_no_further():
    sc = scenario(pacing="traditional")
    far = sc.model_copy(update={"traditional": sc.traditional.model_copy(
        update={"extension_years": 3, "extension_share": 1.0})})
    got = capture(far)
    ahead = got["offset"][got["offset"] > 0]
    assert ahead.max() > 1  # students ahead of the guide now work past the next grade
    assert ahead.max() <= 3


def test_the_playlist_never_reads_true_mastery():
    """Scrambling true mastery after placement leaves the day's playlist unchanged."""
    sc = scenario(pacing="personalized", floor=3)
    plans = []
    for scramble in (False, True):
        model = district_for(sc, sc.arms[0])
        model.start_year()
        if scramble:
            model.students.mastery[:] = 0
        model.day = 1
        model.draws = DailyDraws(model.streams, model.year, 1, model.students.n)
        slots = np.flatnonzero(model.in_program)
        assert slots.size > 100
        ctx = model._day_context(slots, model._supervise(slots, model.draws["rotation"]))
        plans.append(assign_day([(model.regime, model.in_program)], ctx)[0])
    np.testing.assert_array_equal(plans[0], plans[1])


def test_exit_slips_not_true_mastery_advance_the_playlist():
    """With slips that always pass, students advance even when they learn nothing."""
    streak = 2
    sc = scenario(pacing="personalized")
    sc = sc.model_copy(update={
        "assessment": sc.assessment.model_copy(update={
            "exit_slip_guess": 1.0, "exit_slip_slip": 0.0, "mastery_streak": streak}),
        "learning": sc.learning.model_copy(update={"base_rate": 1e-6, "backfill_rate": 0.0}),
        "calendar": sc.calendar.model_copy(update={"benchmark_every_days": 0}),
        "population": sc.population.model_copy(update={"attendance_mean": 1.0})})
    model = district_for(sc, sc.arms[0])
    model.start_year()
    slots = np.flatnonzero(model.in_program)
    assert slots.size > 100
    believed_before = model.record.believed[slots].sum()
    mastered_before = (model.students.mastery[slots] > 0).sum()
    days = 10
    for d in range(days):
        model.day = d
        model.step()
    gained_record = (model.record.believed[slots].sum() - believed_before) / slots.size
    gained_true = ((model.students.mastery[slots] > 0).sum() - mastered_before) / slots.size
    assert gained_record == pytest.approx(days / streak, abs=0.5)
    assert gained_true < 0.05
