"""The compiled kernels of the daily cycle compute exactly what their plain-numpy
counterparts compute (bit for bit), on random records and curricula."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim.engine import kernels
from sim.engine.curriculum import generate_curriculum
from sim.engine.learning import prerequisite_status, prerequisite_status_numpy
from sim.engine.records import pack
from sim.policies.pacing import (
    TraditionalPacing,
    first_missing_ancestor,
    first_missing_ancestor_numpy,
)


@pytest.fixture(scope="module")
def cur():
    return generate_curriculum(np.random.default_rng(5), 0, 8, 4, 5, 1, 0.3)


def _state(cur, n: int, seed: int, density: float):
    rng = np.random.default_rng(seed)
    mastery = (rng.random((n, cur.n_skills)) < density).astype(np.uint8) * rng.integers(
        1, 3, (n, cur.n_skills), dtype=np.uint8)
    believed = rng.random((n, cur.n_skills)) < density
    slots = rng.permutation(n)[: n // 2].astype(np.int64)
    skills = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    return rng, mastery, believed, slots, skills


@pytest.mark.parametrize("density", [0.0, 0.3, 0.9, 1.0])
def test_prerequisite_status_matches_numpy(cur, density):
    _, mastery, _, slots, skills = _state(cur, 400, 1, density)
    r, f = prerequisite_status(mastery, slots, skills, cur.prereqs)
    r0, f0 = prerequisite_status_numpy(mastery, slots, skills, cur.prereqs)
    assert r.dtype == r0.dtype == np.float32 and f.dtype == f0.dtype
    assert np.array_equal(r, r0) and np.array_equal(f, f0)


@pytest.mark.parametrize("density", [0.0, 0.5, 0.95, 1.0])
def test_first_missing_ancestor_matches_numpy(cur, density):
    rng, _, believed, slots, target = _state(cur, 400, 2, density)
    lo = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    lo[::3] = 0
    model = SimpleNamespace(record=SimpleNamespace(
        bits=pack(believed), knows=lambda r, s: believed.reshape(-1)[r * cur.n_skills + s]),
        curriculum=cur)
    got = first_missing_ancestor(model, slots, target, lo)
    assert np.array_equal(got, first_missing_ancestor_numpy(model, slots, target, lo))


def test_first_unknown_in(cur):
    _, _, believed, slots, _ = _state(cur, 300, 3, 0.7)
    start = np.random.default_rng(4).integers(0, cur.n_skills - 5, slots.size).astype(np.int64)
    got = kernels.first_unknown_in(pack(believed), slots, start, 5)
    cols = start[:, None] + np.arange(5)[None, :]
    open_ = ~believed[slots[:, None], cols]
    want = np.where(open_.any(axis=1), start + np.argmax(open_, axis=1), -1)
    assert np.array_equal(got, want)


def test_empty_inputs(cur):
    empty = np.zeros(0, np.int64)
    r, f = prerequisite_status(np.zeros((3, cur.n_skills), np.uint8), empty, empty, cur.prereqs)
    assert r.size == 0 and f.size == 0


@pytest.mark.parametrize("error_years", [0.0, 0.3, 2.0])
def test_diagnostic_read_matches_numpy(cur, error_years):
    from sim.engine.records import Diagnostic

    rng = np.random.default_rng(int(error_years * 10))
    diag = Diagnostic(cur, error_years, 0.5, 0.1)
    level = rng.uniform(cur.lowest_grade - 1, cur.highest_grade + 2, 600)
    truth = rng.random((600, cur.n_skills)) < 1 / (1 + np.exp(-(level[:, None]
                                                                 - diag.position[None, :])))
    level_error = rng.standard_normal(600).astype(np.float32)
    misread_u = rng.random((600, cur.n_skills), dtype=np.float32)
    misread_u[::7] = np.float32(0.1)  # on the misread boundary
    got = diag.read(truth, level_error, misread_u)
    want = diag.read_numpy(truth, level_error, misread_u)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == bool and np.array_equal(g, w)


@pytest.mark.parametrize("how", ["place", "place_keep", "benchmark"])
def test_diagnose_into_matches_numpy(cur, how):
    """The diagnostic read and written into the record row by row (``Record._diagnose``)
    against numpy's read, merge and pack (``_diagnose_numpy``): the same bits."""
    from sim.engine.records import Diagnostic, Record

    rng = np.random.default_rng(17)
    n = 2500  # more than one chunk of DIAGNOSE_ROWS
    diag = Diagnostic(cur, 0.3, 0.5, 0.1)
    level = rng.uniform(cur.lowest_grade - 1, cur.highest_grade + 2, n)
    mastered = rng.random((n, cur.n_skills)) < 1 / (1 + np.exp(-(level[:, None]
                                                                  - diag.position[None, :])))
    compiled, plain = Record(n, cur.n_skills), Record(n, cur.n_skills)
    old = rng.random((n, cur.n_skills)) < 0.5
    compiled.believed = plain.believed = old
    slots = np.sort(rng.choice(n, 2000, replace=False))
    keep = rng.random(slots.size) < 0.5 if how == "place_keep" else None
    replace_all = how != "benchmark"
    for run in (compiled._diagnose, plain._diagnose_numpy):
        run(np.random.default_rng(3), slots, lambda rows: mastered[rows], diag, replace_all,
            keep)
    assert np.array_equal(compiled.bits, plain.bits)
    changed = (compiled.believed != old).any(axis=1)
    assert changed[slots].mean() > 0.5 and not changed[np.setdiff1d(np.arange(n), slots)].any()


def _day_inputs(cur, n, seed):
    from sim.engine.students import StudentState

    rng = np.random.default_rng(seed)
    st = StudentState(n, cur.n_skills)
    st.mastery[:] = (rng.random((n, cur.n_skills)) < 0.5) * rng.integers(1, 3, (n, cur.n_skills))
    st.familiarity[:] = rng.integers(0, 256, (n, cur.n_skills))
    for name in ("engagement", "engagement_base", "anxiety", "anxiety_base"):
        getattr(st, name)[:] = rng.random(n, dtype=np.float32)
    slots = np.sort(rng.permutation(n)[: n * 3 // 4]).astype(np.int64)
    skills = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    return rng, st, slots, skills


def _copy(st):
    import copy

    twin = copy.copy(st)
    for k, v in vars(st).items():
        if isinstance(v, np.ndarray):
            setattr(twin, k, v.copy())
    return twin


def test_learn_matches_numpy(cur):
    from sim.engine.learning import learn, learn_numpy

    rng, st, slots, skills = _day_inputs(cur, 500, 11)
    twin = _copy(st)
    rate = rng.uniform(0, 0.5, slots.size).astype(np.float32)
    readiness, missing = prerequisite_status(st.mastery, slots, skills, cur.prereqs)
    u1, u2 = rng.random(slots.size, dtype=np.float32), rng.random(slots.size, dtype=np.float32)
    got = learn(st, slots, skills, rate, readiness, missing, u1, u2, 0.2, 0.5, cur.prereqs)
    want = learn_numpy(twin, slots, skills, rate, readiness, missing, u1, u2, 0.2, 0.5,
                       cur.prereqs)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert np.array_equal(st.mastery, twin.mastery)
    assert np.array_equal(st.familiarity, twin.familiarity)


def _block_state(d) -> list[np.ndarray]:
    """Everything the day's block writes: students, record, tracks, year log."""
    out = []
    for obj in (d.students, d.record, d.tracks, d.log):
        out += [v for v in vars(obj).values() if isinstance(v, np.ndarray)]
    return out


@pytest.mark.parametrize("scenario, arm, exponent", [
    ("floor_strategies.toml", "traditional", 1.0),
    ("floor_strategies.toml", "gradual_floor", 1.0),
    ("floor_strategies.toml", "tutoring", 2.0),
    ("floor_strategies.toml", "personalized", 1.5),
    ("michigan_pacing.toml", "secondary_move_on", 1.0),  # days on a skill, no send-backs
    ("michigan_pacing.toml", "secondary_teacher_paced", 1.0),  # no extension, no reteach
])
def test_fused_block_matches_numpy(scenario, arm, exponent):
    """The day's block, fused and compiled (``District._teach``), and traditional
    pacing's compiled day (``TraditionalPacing.assign``), against the same steps in
    plain numpy (``_teach_numpy``, ``assign_numpy``): every array they write, bit for
    bit, over the first weeks of a year (the fall test and a benchmark included), on
    two copies of one district that share their draws."""
    import copy

    from sim.config.scenario import load_scenario
    from sim.district.model import District
    from sim.district.reference import state_reference

    root = Path(__file__).resolve().parents[1] / "scenarios"
    sc = load_scenario(root / scenario, ["district.schools=1", "years=1",
                                         "calendar.burn_in_years=0",
                                         f"affect.change_exponent={exponent}"])
    chosen = next(a for a in sc.arms if a.label == arm)
    fused = District(sc, chosen, reference=state_reference(sc))
    fused.start_year()
    assert fused.any_move_on == (arm == "secondary_move_on")
    plain = copy.deepcopy(fused)
    plain._teach = plain._teach_numpy
    traditional = [regime.pacing for regime, _ in plain.groups
                   if isinstance(regime.pacing, TraditionalPacing)]
    assert traditional  # grades outside the program follow traditional pacing
    for pacing in traditional:
        pacing.assign = pacing.assign_numpy
    passes = []
    for day in range(50):
        for d in (fused, plain):
            d.day = day
            d.step()
        got, want = _block_state(fused), _block_state(plain)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            assert np.array_equal(g, w, equal_nan=g.dtype.kind == "f"), day
        passes.append(fused.log.days_present.sum())
    assert passes[-1] > passes[0] > 0  # the block ran every day


@pytest.mark.parametrize("kind", ["float32", "int64"])
def test_rank_within_matches_numpy(kind):
    from sim.policies.pacing import rank_within, rank_within_numpy

    rng = np.random.default_rng(21)
    for size, groups in ((0, 1), (1, 1), (50, 40), (3000, 40), (3000, 3)):  # 3: large groups
        group = rng.integers(0, groups, size) * 1024 + rng.integers(0, 3, size)
        priority = (rng.random(size, dtype=np.float32) if kind == "float32"
                    else -rng.integers(0, 5, size))  # integer priorities: many ties
        assert np.array_equal(rank_within(group, priority), rank_within_numpy(group, priority))


@pytest.mark.parametrize("kind", ["float32", "int64"])
def test_lowest_in_runs_is_rank_below_count(kind):
    """traditional_day's reteach groups: the ``count`` lowest of each group, as ranking
    them all would choose (ties by position; groups smaller and larger than ``count``)."""
    from sim.engine.kernels import lowest_in_runs, rank_in_runs

    rng = np.random.default_rng(22)
    for size, groups in ((0, 1), (1, 1), (50, 40), (3000, 40), (3000, 3)):
        group = rng.integers(0, groups, size) * 1024 + rng.integers(0, 3, size)
        priority = (rng.random(size, dtype=np.float32) if kind == "float32"
                    else -rng.integers(0, 5, size))  # integer priorities: many ties
        order = np.argsort(group, kind="stable")
        for count in (1, 2, 6, 100):
            want = rank_in_runs(group, priority, order) < count
            got = lowest_in_runs(group, priority, order, count)
            assert got.dtype == np.bool_
            assert np.array_equal(got, want), (size, groups, count)
            if size:
                assert 0 < got.sum() <= count * np.unique(group).size


def test_learning_rate_matches_numpy():
    """The district's supervision, drift and learning rate (capacity factor included),
    kernel vs numpy, on the days of a small mix arm with rooms, pooling and drift."""
    from sim.district.reference import state_reference
    from sim.engine.random_streams import DailyDraws
    from sim.experiments import bench
    from sim.policies.pacing import common_pace_skill
    from sim.policies.regimes import drift_toward_common

    mix = bench.mix_scenario(900, seed=4)
    d = bench.mix_district(mix, 1, state_reference(mix))
    d.start_year()
    assert (d.students.room >= 0).any() and d.params.teams.capacity_pooling > 0
    for day in range(12):
        d.day = day
        draws = d.draws = DailyDraws(d.streams, d.year, day, d.students.n)
        present = np.flatnonzero(draws["attendance"] < d.students.attendance)
        teacher = d._supervise(present, draws["rotation"])
        assert np.array_equal(teacher, d._supervise_numpy(present, draws["rotation"]))
        common = common_pace_skill(d.curriculum, d.params.calendar, d.students.grade[present],
                                   day)
        playlist = d.record.frontier_from(present, np.zeros(present.size, np.int64))
        drifted = drift_toward_common(d._day_context(present, teacher), present, playlist,
                                      teacher, common)
        swap = draws["drift"][present] < d.staff.drift[teacher]  # the rule in numpy
        assert np.array_equal(drifted, np.where(swap, common, playlist))
        assert 0 < (drifted != playlist).sum() < (playlist != common).sum()  # some swapped
        skills, modality = d._assign(present, teacher)
        room = d.students.room[present]
        factors, key = d._capacity_factor(teacher, skills, room)
        assert factors.size < present.size / 5  # one per (teacher, room) pair, not per student
        assert np.array_equal(factors[key], d._capacity_factor_numpy(teacher, skills, room))
        got = d._learning_rate(present, modality, teacher, skills)
        want = d._learning_rate_numpy(present, modality, teacher, skills)
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)
        d._teach(present, skills, got, draws)


@pytest.mark.parametrize("sat", [6.0, 2.5])
def test_knowledge_matches_numpy(cur, sat):
    from types import SimpleNamespace

    from sim.engine import assessment

    rng = np.random.default_rng(31)
    a = SimpleNamespace(own_skill_weight=0.6, familiarity_weight=0.3)
    mastered = rng.random((300, cur.n_skills)) < 0.5
    days = rng.integers(0, 12, (300, cur.n_skills)).astype(np.uint8)
    w = assessment.ancestor_weights(cur, 0.5)
    want = assessment._knowledge_of(mastered, mastered,
                                    assessment.familiarity_level(days, sat), w, a)
    got = kernels.knowledge_in_place(mastered.astype(np.float32) @ w.T, mastered, days,
                                     np.float32(0.6), np.float32(1.0 - 0.6), np.float32(0.3),
                                     np.float32(sat))
    assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)


def test_eap_matches_numpy():
    from sim.engine import assessment

    rng = np.random.default_rng(41)
    grid = np.arange(-3.0, 12.0, 0.2).astype(np.float32)
    for rows in (1, 7, 500):
        ll = (rng.standard_normal((rows, grid.size)) * 20).astype(np.float32)
        mu = rng.uniform(0, 8, rows)
        sd = rng.uniform(0.5, 3, rows)
        got = assessment.eap(ll, grid, mu, sd)
        want = assessment.eap_numpy(ll, grid, mu, sd)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype == np.float64 and np.array_equal(g, w)


def test_answer_loglik_matches_numpy():
    """The growth test's log-likelihood of each row's answers, compiled row by row,
    against numpy's block-by-block products (rows sharing a block; blocks of one row
    included), to float32 rounding: the kernel adds item by item, and BLAS's order of
    summation depends on the CPU (OpenBLAS picks its kernel at run time; on an AMD
    EPYC with OpenBLAS 0.3.31 about 9 values in 100 differ, by up to 2e-6 of their
    size)."""
    from sim.district.item_bank import item_bank
    from sim.engine import assessment
    from sim.experiments import bench

    bank = item_bank(bench.mix_scenario(900, seed=4))
    k = 15
    rng = np.random.default_rng(41)
    for s in range(len(bank.stage_items)):
        target = np.concatenate([rng.normal(4, 3, 600), [-9.0, 30.0]])  # tails: lone rows
        start, blocks = assessment._stage_blocks(bank.stage_items[s], bank.b, target, k, 1.5)
        right = (rng.random((target.size, k)) < 0.6).astype(np.float32)
        ll = rng.normal(-10, 3, (target.size, bank.grid.size)).astype(np.float32)
        want = ll.copy()
        assessment._add_block_loglik(want, right, start, blocks, bank)
        got = kernels.add_answer_loglik(ll, right, blocks[start], bank.log_odds, bank.log_q)
        # sums of 15-30 float32 terms of size up to ~100: a few ulp of the result
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-5)
        assert (np.bincount(start) == 1).any()  # some blocks hold a single row


def test_ancestor_table_is_ascending_and_padded_at_the_end(cur):
    """``first_missing_ancestor`` binary-searches each row of the ancestor table: it
    relies on ancestors listed in increasing order, padding only at the end."""
    for row in cur.ancestors:
        listed = row[row != kernels.NO_SKILL]
        assert np.all(np.diff(listed) > 0)
        assert np.all(row[: listed.size] == listed)


def test_frontier_from_matches_numpy(cur):
    """The record's cached frontier search, compiled, against numpy, over days of
    marks (the frontier skill and runs past it, so steps forward run out and search),
    send-backs (stale) and moving bounds."""
    from sim.engine.records import Record

    n = 300
    rng = np.random.default_rng(51)
    a, b = Record(n, cur.n_skills), Record(n, cur.n_skills)
    a.believed = b.believed = rng.random((n, cur.n_skills)) < 0.3
    for _day in range(60):
        slots = np.sort(rng.permutation(n)[:220]).astype(np.int64)
        bound = rng.choice([0, 7, 40, 41, 120, cur.n_skills - 1], slots.size)
        got = a.frontier_from(slots, bound)
        want = b.frontier_from_numpy(slots, bound)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        # mark each frontier mastered, and for some the next few skills too
        f = np.minimum(got, cur.n_skills - 1)
        run = rng.integers(0, 12, slots.size)
        back = slots[rng.random(slots.size) < 0.05]
        for rec in (a, b):
            for step in range(12):
                on = run > step
                skill = np.minimum(f[on] + step, cur.n_skills - 1)
                rec.bits[slots[on], skill >> 3] |= np.uint8(1) << (skill & 7).astype(np.uint8)
            rec.advanced[slots] = True
            rec.stale[back] = True
    for k, v in vars(a).items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, getattr(b, k)), k


# --- the tests answered and scored row by row ---------------------------------------------------
def test_exp32_is_within_an_ulp_of_the_exponential():
    x = np.linspace(kernels.EXP_LOW, kernels.EXP_HIGH, 1_000_001).astype(np.float32)
    got = kernels.exp32_array(x)
    exact = np.exp(x.astype(np.float64))
    assert got.dtype == np.float32
    assert (np.abs(got - exact) / exact).max() < 2 ** -23  # under one ulp of float32
    # clipped outside its range: small and finite below, finite above
    low, lowest, high = kernels.exp32_array(np.array([-1e4, -np.inf, 1e4], np.float32))
    assert 0 < low == lowest < 1e-37 and np.isfinite(high) and high > 1e38


def test_eap_rows_match_numpy():
    from sim.engine import assessment

    rng = np.random.default_rng(43)
    grid = np.arange(-3.0, 13.2, 0.2).astype(np.float32)
    ll = (rng.standard_normal((2000, grid.size)) * 20).astype(np.float32)
    ll -= ll.max(axis=1, keepdims=True)  # log-likelihoods (<= 0), peaked anywhere
    mu, sd = rng.uniform(0, 8, ll.shape[0]), rng.uniform(0.5, 3, ll.shape[0])
    mean, post_sd = kernels.eap_rows(ll, grid, mu, sd)
    want_mean, want_sd = assessment.eap_numpy(ll, grid, mu, sd)
    assert np.abs(mean - want_mean).max() < 1e-4  # grade-years; float32 sums in another order
    assert np.abs(post_sd - want_sd).max() < 1e-4


def _tested_state(students: int = 3000, days: int = 40):
    """A mix district after ``days`` days of its playlist arm, and its scenario."""
    from sim.district.reference import state_reference
    from sim.experiments import bench

    mix = bench.mix_scenario(students, seed=5)
    district = bench.mix_district(mix, 1, state_reference(mix))
    district.start_year()
    for day in range(days):
        district.day = day
        district.step()
    return mix, district


def test_compiled_growth_and_state_tests_match_numpy():
    """The tests answered and scored row by row against numpy's stage-by-stage path on the
    same draws: the same takers, nearly every score equal to a hundredth of a scale point
    (float32 sums in another order; a rare row whose answer or next block flips moves
    further), and the same distribution."""
    from sim.district.item_bank import item_bank
    from sim.engine import assessment

    mix, district = _tested_state()
    st, a = district.students, mix.assessment
    bank, sat = item_bank(mix), mix.learning.familiarity_saturation_days
    sits = np.random.default_rng(1).random(st.n) < 0.9
    tested = np.isin(st.grade, a.tested_grades) & sits
    runs = (
        (assessment.growth_test, assessment.growth_test_numpy, (st, bank, a, sat, sits, 0.3)),
        (assessment.state_test, assessment.state_test_numpy,
         (st, district.curriculum, bank, a, sat, tested, 0.8)),
    )
    for compiled, numpy_path, args in runs:
        score, sem = compiled(np.random.default_rng(7), *args)
        want, want_sem = numpy_path(np.random.default_rng(7), *args)
        taken = ~np.isnan(want)
        assert np.array_equal(np.isnan(score), ~taken) and taken.sum() > 1000
        diff = np.abs(score - want)[taken]
        assert (diff < 0.01).mean() > 0.995 and diff.mean() < 0.01  # scale points
        assert abs(score[taken].mean() - want[taken].mean()) < 0.01
        assert abs(score[taken].std() - want[taken].std()) < 0.01
        assert np.abs(sem - want_sem)[taken].mean() < 0.01


def test_count_off_pace_matches_numpy():
    rng = np.random.default_rng(5)
    slots = np.sort(rng.choice(1000, 700, replace=False)).astype(np.int64)
    skills, common = rng.integers(0, 4, 700), rng.integers(0, 4, 700)
    got, want = np.zeros(1000, np.int16), np.zeros(1000, np.int16)
    for _ in range(3):
        kernels.count_off_pace(got, slots, skills, common)
        want[slots] += skills != common
    assert np.array_equal(got, want) and want.max() == 3


def test_stable_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(8)
    for keys in (np.sort(rng.integers(0, 50, 400)), rng.integers(0, 50, 400),
                 np.zeros(0, np.int64), np.array([3, 3, 1, 1, 2])):
        keys = keys.astype(np.int64)
        assert np.array_equal(kernels._stable_order(keys), np.argsort(keys, kind="stable"))
