"""The rooms' daily scheduler and what a room costs (``sim.engine.teachers``).

Teacher-led students of a room are grouped by skill and the groups shared among
the team; only the groups a teacher leads count against their distinct paces;
software and peer work counts against no one; a traditional class is unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.engine import learning
from sim.engine.teachers import capacity_ratio, room_cost, schedule_groups
from sim.policies.pacing import PEER, SMALL_GROUP, SOFTWARE, WHOLE_CLASS

SPU = 5  # skills per unit


def one_room(units, team, rng, led=None):
    """Present students of room 0 (team: teachers 0..team-1) at the given units, in a
    shuffled order; each student's supervisor drawn at random from the team."""
    units = np.asarray(units, np.int64)
    n = units.size
    skills = units * SPU + rng.integers(0, SPU, n)
    order = rng.permutation(n)
    skills = skills[order]
    supervisor = rng.integers(0, team, n).astype(np.int64)
    led = np.ones(n, bool) if led is None else np.asarray(led, bool)[order]
    return supervisor, skills, led, np.zeros(n, np.int64)


def paces(teacher, skills, mask, n_teachers):
    """Distinct units per teacher among ``mask``."""
    return np.array([np.unique(skills[mask & (teacher == t)] // SPU).size
                     for t in range(n_teachers)])


@pytest.mark.parametrize("k, team", [(10, 4), (7, 3), (13, 4), (3, 4)])
def test_groups_are_one_unit_and_each_member_leads_a_run_of_neighbouring_units(k, team):
    rng = np.random.default_rng(k * 10 + team)
    units = np.concatenate([np.arange(k), rng.integers(0, k, 30)])  # every unit present
    sup, skills, led, room = one_room(units, team, rng)
    teacher = schedule_groups(sup, skills, led, room, np.array([0]), np.array([team]), SPU,
                              1000)
    p = paces(teacher, skills, led, team)
    assert p.max() <= math.ceil(k / team) and p.sum() == k  # no unit split between members
    assert np.abs(p - k / team).max() < 1  # balanced: floor or ceil of k / team
    lows = [skills[teacher == t].min() // SPU for t in range(team) if p[t]]
    highs = [skills[teacher == t].max() // SPU for t in range(team) if p[t]]
    assert all(h < lo for h, lo in zip(highs[:-1], lows[1:], strict=True))  # runs in order
    random_paces = paces(sup, skills, led, team)  # the rotation's draw, for comparison
    assert random_paces.max() > p.max()


def test_a_large_unit_is_split_into_groups_of_at_most_the_group_size():
    rng = np.random.default_rng(1)
    units = [0] * 20 + [1, 1, 2, 3]  # one crowded unit, three small ones
    sup, skills, led, room = one_room(units, 4, rng)
    teacher = schedule_groups(sup, skills, led, room, np.array([0]), np.array([4]), SPU, 6)
    # groups: 6+6+6+2 at unit 0, then units 1, 2, 3: seven groups over four members
    at0 = np.bincount(teacher[skills // SPU == 0], minlength=4)
    assert sorted(at0[at0 > 0].tolist()) == [8, 12]  # two members share unit 0, 2 groups each
    assert paces(teacher, skills, led, 4).max() <= math.ceil(7 / 4)


def test_software_and_peer_students_keep_their_supervisor_and_count_against_no_one():
    rng = np.random.default_rng(2)
    units = np.arange(12)
    led = np.arange(12) < 4  # four teacher-led students, eight unled at eight other units
    sup, skills, led, room = one_room(units, 2, rng, led)
    teacher = schedule_groups(sup, skills, led, room, np.array([0]), np.array([2]), SPU, 6)
    assert np.array_equal(teacher[~led], sup[~led])
    cap = np.array([2.0, 2.0])
    marks = np.zeros((2, 12), bool)
    ratio, key = capacity_ratio(teacher, skills // SPU, room, led, cap, marks,
                                np.zeros((1, 12), bool), np.array([4.0]), np.array([0.5]), 0.0)
    # each member leads two of the four led units: capacity 2 over 2 paces; unled: 1
    assert np.all(ratio[key] == 1.0)
    ratio_all, key_all = capacity_ratio(teacher, skills // SPU, room, np.ones(12, bool), cap,
                                        marks, np.zeros((1, 12), bool), np.array([4.0]),
                                        np.array([0.5]), 0.0)
    assert ratio_all[key_all].max() < 0.5  # had the unled students counted: 2 / 6 paces or less


def test_a_traditional_class_is_unchanged():
    rng = np.random.default_rng(3)
    n = 25
    skills = rng.integers(0, 8 * SPU, n)
    teacher = np.zeros(n, np.int64)
    room = np.full(n, -1, np.int64)
    led = rng.random(n) < 0.5  # whatever the modality, a class counts every student
    out = schedule_groups(teacher, skills, led, room, np.array([0]), np.array([1]), SPU, 6)
    assert np.array_equal(out, teacher)
    units = np.unique(skills // SPU).size
    ratio, key = capacity_ratio(teacher, skills // SPU, room, led, np.array([3.0]),
                                np.zeros((1, 8), bool), np.zeros((1, 8), bool), np.array([3.0]),
                                np.array([0.5]), 0.5)
    np.testing.assert_array_equal(ratio[key], min(1.0, 3.0 / units))
    assert room_cost(True, False, 0, 0.05, 0.05) == room_cost(False, False, 0, 0.05, 0.05) == 1.0


def test_what_a_room_costs():
    assert room_cost(True, True, 4, 0.05, 0.1) == pytest.approx(0.95)
    assert room_cost(False, True, 4, 0.05, 0.1) == pytest.approx(0.95 * 0.9)
    assert room_cost(False, True, 1, 0.05, 0.1) == pytest.approx(0.95)  # a one-teacher room
    rules = learning.RateRules(0.5, 0.5, 0.6, 0.2, WHOLE_CLASS, SMALL_GROUP, 0.05, 0.1)
    trust = np.array([0.5, 0.5])
    # a colleague (pair trust 0.5) leading the group: 1 - 0.2 x 0.5 kept, times the room's 0.95
    assert learning.continuity_of.py_func(1, 0, 0, 4, SMALL_GROUP, trust, rules) == (
        pytest.approx(0.9 * 0.95))
    assert learning.continuity_of.py_func(0, 0, 0, 4, SOFTWARE, trust, rules) == (
        pytest.approx(0.95 * 0.9))
    assert learning.continuity_of.py_func(0, 0, -1, 0, PEER, trust, rules) == 1.0


def test_a_district_day_groups_every_room_and_leaves_classes_with_their_teacher():
    """On the days of a small mix arm (rooms of teams and traditional classes): every
    teacher-led group is one unit, each member leads at most ceil(groups / team) of them,
    and students outside rooms keep their teacher of record."""
    from sim.district.reference import state_reference
    from sim.engine.random_streams import DailyDraws
    from sim.experiments import bench

    mix = bench.mix_scenario(900, seed=5)
    d = bench.mix_district(mix, 1, state_reference(mix))
    d.start_year()
    spu, size = d.curriculum.skills_per_unit, d.params.teams.group_size
    checked = 0
    for day in range(3):
        d.day = day
        draws = d.draws = DailyDraws(d.streams, d.year, day, d.students.n)
        present = np.flatnonzero(draws["attendance"] < d.students.attendance)
        skills, modality = d._assign(present, d._supervise(present, draws["rotation"]))
        teacher = d._schedule(present, d._supervise(present, draws["rotation"]), skills,
                              modality)
        room = d.students.room[present]
        assert np.array_equal(teacher[room < 0], d.students.teacher[present][room < 0])
        led = (room >= 0) & (modality == SMALL_GROUP)
        for r in np.unique(room[led]):
            mine = led & (room == r)
            units = skills[mine] // spu
            groups = sum(-(-c // size) for c in np.unique(units, return_counts=True)[1])
            team = d.room_team_size[r]
            first = d.room_first_teacher[r]
            assert np.all((teacher[mine] >= first) & (teacher[mine] < first + team))
            led_units = [np.unique(units[teacher[mine] == t]).size
                         for t in range(first, first + team)]
            assert max(led_units) <= -(-groups // team)
            checked += team > 1
        d._teach(present, skills, d._learning_rate(present, modality, teacher, skills), draws)
    assert checked >= 3  # rooms of a team were checked (9: three a day)


def test_the_mesa_reference_schedules_as_the_engine_does():
    """The per-agent reference's scheduler (``MesaDistrict.schedule``, the rules'
    ``.py_func``) gives every student the leader and every teacher the paces the compiled
    ``schedule_groups`` and ``capacity_ratio`` give for the same day's plans."""
    from sim.district.reference import state_reference
    from sim.experiments import bench

    scenario = bench.bench_scenario(1_500)
    district = bench.new_district(scenario, state_reference(scenario))
    district.start_year()
    model = bench.build_mesa(district)
    model.agents.do("plan")
    here = [a for a in model.students if a.present]
    rotation = np.array([a.supervisor for a in here], np.int64)
    skills = np.array([a.skill for a in here], np.int64)
    modality = np.array([a.modality for a in here], np.int8)
    room = np.array([a.room for a in here], np.int64)
    led = (modality == SMALL_GROUP) | (modality == WHOLE_CLASS)
    assert (room >= 0).all() and 0.2 < led.mean() < 0.5
    assert district.curriculum.skills_per_unit == SPU  # paces() counts units of SPU skills
    want = schedule_groups(rotation, skills, led, room, district.room_first_teacher,
                           district.room_team_size, SPU, model.group_size)
    model.schedule()
    got = np.array([a.supervisor for a in here], np.int64)
    assert np.array_equal(got, want) and not np.array_equal(got, rotation)
    assert [len(u) for u in model.units] == paces(want, skills, led,
                                                  len(model.units)).tolist()
