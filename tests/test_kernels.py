"""The compiled rules of the daily cycle compute exactly what their references compute
(bit for bit), on random records and curricula: their own plain-Python forms
(``.py_func``, the same text uncompiled) or a plain-numpy reference kept here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim.engine import compiled, learning, records, scoring
from sim.engine.curriculum import NO_SKILL, generate_curriculum
from sim.engine.learning import prerequisite_status
from sim.engine.records import DRILL_DOWN_YEARS, pack
from sim.policies import pacing
from sim.policies.pacing import TraditionalPacing, first_missing_ancestor


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


def prerequisite_status_reference(mastery, slots, skills, prereqs):
    """``learning.prerequisite_status`` in plain numpy, column by column."""
    base = slots * mastery.shape[1]
    flat = mastery.reshape(-1)
    have = np.zeros(slots.size, np.float32)
    count = np.zeros(slots.size, np.float32)
    first = np.full(slots.size, -1, np.int64)
    for j in reversed(range(prereqs.shape[1])):
        pre = prereqs[skills, j].astype(np.int64)
        valid = pre != NO_SKILL
        ok = valid & (flat[base + np.where(valid, pre, 0)] > 0)
        count += valid
        have += ok
        first = np.where(valid & ~ok, pre, first)  # reversed: the lowest column wins
    readiness = np.where(count > 0, have / np.maximum(count, 1), 1.0).astype(np.float32)
    return readiness, first


@pytest.mark.parametrize("density", [0.0, 0.3, 0.9, 1.0])
def test_prerequisite_status_matches_numpy(cur, density):
    _, mastery, _, slots, skills = _state(cur, 400, 1, density)
    r, f = prerequisite_status(mastery, slots, skills, cur.prereqs)
    r0, f0 = prerequisite_status_reference(mastery, slots, skills, cur.prereqs)
    assert r.dtype == r0.dtype == np.float32 and f.dtype == f0.dtype
    assert np.array_equal(r, r0) and np.array_equal(f, f0)
    # the rule uncompiled, student by student: the same triples
    share, first, pre_ready = learning.readiness_of(mastery, slots, skills, cur.prereqs)
    for i in range(0, slots.size, 7):
        got = learning.readiness.py_func(mastery, slots[i], skills[i], cur.prereqs)
        assert got == (share[i], first[i], pre_ready[i])


def first_missing_ancestor_reference(believed, ancestors, slots, target, lo):
    """``pacing.first_missing_ancestor`` in plain numpy, on the record as booleans."""
    anc = ancestors[target].astype(np.int64)
    valid = (anc != NO_SKILL) & (anc >= lo[:, None])
    known = believed[slots[:, None], np.where(valid, anc, 0)]
    missing = valid & ~known
    first = np.argmax(missing, axis=1)
    return np.where(missing.any(axis=1), anc[np.arange(slots.size), first], target)


@pytest.mark.parametrize("density", [0.0, 0.5, 0.95, 1.0])
def test_first_missing_ancestor_matches_numpy(cur, density):
    rng, _, believed, slots, target = _state(cur, 400, 2, density)
    lo = rng.integers(0, cur.n_skills, slots.size).astype(np.int64)
    lo[::3] = 0
    model = SimpleNamespace(record=SimpleNamespace(bits=pack(believed)), curriculum=cur)
    got = first_missing_ancestor(model, slots, target, lo)
    want = first_missing_ancestor_reference(believed, cur.ancestors, slots, target, lo)
    assert np.array_equal(got, want)
    assert (got != target).any() == (density < 1.0)  # some gaps found, none in a full record


def test_first_unknown_in(cur):
    _, _, believed, slots, _ = _state(cur, 300, 3, 0.7)
    start = np.random.default_rng(4).integers(0, cur.n_skills - 5, slots.size).astype(np.int64)
    got = records.first_unknown_in(pack(believed), slots, start, 5)
    cols = start[:, None] + np.arange(5)[None, :]
    open_ = ~believed[slots[:, None], cols]
    want = np.where(open_.any(axis=1), start + np.argmax(open_, axis=1), -1)
    assert np.array_equal(got, want)


def test_empty_inputs(cur):
    empty = np.zeros(0, np.int64)
    r, f = prerequisite_status(np.zeros((3, cur.n_skills), np.uint8), empty, empty, cur.prereqs)
    assert r.size == 0 and f.size == 0


def read_reference(diag, truth, level_error, misread_u):
    """``Diagnostic.read`` in plain numpy: the implied skills from a 0/1 matrix product
    with the (skills x skills) ancestor matrix (exact)."""
    n = truth.shape[1]
    anc = diag.ancestors
    below = np.zeros((n, n), np.float32)  # below[s, a]: a is a (transitive) prerequisite of s
    rows = np.repeat(np.arange(n), anc.shape[1])
    ok = anc.ravel() != NO_SKILL
    below[rows[ok], anc.ravel()[ok]] = 1.0
    level = diag.lowest + truth.sum(axis=1, dtype=np.float32) / diag.spg
    estimate = level + diag.error_years * level_error
    gap = diag.position[None, :] - estimate[:, None]
    tested = np.abs(gap) <= diag.band_years
    read = tested & (truth ^ (misread_u < diag.misread))
    lower = tested & (gap < 0)
    count = lower.sum(axis=1)
    # the drill-down beneath failed items, from the top down (a skill's prerequisites come
    # before it)
    deepest = np.float32(-diag.band_years) - np.float32(DRILL_DOWN_YEARS)
    for s in range(n - 1, -1, -1):
        failed = tested[:, s] & ~read[:, s]
        for p in diag.prereqs[s][diag.prereqs[s] != NO_SKILL]:
            probe = (failed & ~tested[:, p] & (gap[:, p] < -diag.band_years)
                     & (gap[:, p] >= deepest))
            tested[probe, p] = True
            read[probe, p] = truth[probe, p] ^ (misread_u[probe, p] < diag.misread)
    implied = (read.astype(np.float32) @ below) > 0
    odds = np.where(count > 0, np.float32((read & lower).sum(axis=1))
                    / np.float32(np.maximum(count, 1)), np.float32(1.0)).astype(np.float32)
    believed = np.where(tested, read,
                        implied | ((gap < -diag.band_years) & (misread_u < odds[:, None])))
    return believed, tested | implied


def diagnose_reference(record, rng, slots, truth, diag, replace_all, keep=None):
    """``Record._diagnose`` through ``read_reference``: read, merge and pack in numpy."""
    for rs, replace, level_error, misread_u in record.diagnose_draws(rng, slots, replace_all,
                                                                      keep):
        believed, tested = read_reference(diag, truth(rs), level_error, misread_u)
        record.bits[rs] = pack(np.where(replace[:, None] | tested, believed, record.rows(rs)))


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
    want = read_reference(diag, truth, level_error, misread_u)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == bool and np.array_equal(g, w)


@pytest.mark.parametrize("how", ["place", "place_keep", "benchmark"])
def test_diagnose_into_matches_numpy(cur, how):
    """The diagnostic read and written into the record row by row (``Record._diagnose``)
    against numpy's read, merge and pack (``diagnose_reference``): the same bits."""
    from sim.engine.records import Diagnostic, Record

    rng = np.random.default_rng(17)
    n = 2500  # more than one chunk of DIAGNOSE_ROWS
    diag = Diagnostic(cur, 0.3, 0.5, 0.1)
    level = rng.uniform(cur.lowest_grade - 1, cur.highest_grade + 2, n)
    mastered = rng.random((n, cur.n_skills)) < 1 / (1 + np.exp(-(level[:, None]
                                                                  - diag.position[None, :])))
    fast, plain = Record(n, cur.n_skills), Record(n, cur.n_skills)
    old = rng.random((n, cur.n_skills)) < 0.5
    fast.believed = plain.believed = old
    slots = np.sort(rng.choice(n, 2000, replace=False))
    keep = rng.random(slots.size) < 0.5 if how == "place_keep" else None
    replace_all = how != "benchmark"
    fast._diagnose(np.random.default_rng(3), slots, lambda rows: mastered[rows], diag,
                   replace_all, keep)
    diagnose_reference(plain, np.random.default_rng(3), slots, lambda rows: mastered[rows], diag,
                       replace_all, keep)
    assert np.array_equal(fast.bits, plain.bits)
    changed = (fast.believed != old).any(axis=1)
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


def learn_reference(state, slots, skills, rate, u, floor, backfill_rate, prereqs):
    """``learning.learn`` in plain numpy over the arrays (the exponential ``exp32``'s)."""
    def p_master(rate, readiness):
        x = -rate * (floor + (1.0 - floor) * readiness)
        return 1.0 - compiled.exp32_array(np.ascontiguousarray(x, np.float32))

    readiness, missing = prerequisite_status_reference(state.mastery, slots, skills, prereqs)
    n_skills = state.mastery.shape[1]
    flat = slots * n_skills + skills
    mastery, fam = state.mastery.reshape(-1), state.familiarity.reshape(-1)
    already = mastery[flat] > 0
    gained = ~already & (u[0] < p_master(rate, readiness))
    has = np.flatnonzero((missing >= 0) & ~already)  # only a skill not yet known needs it
    if has.size:
        pre = missing[has]
        pre_ready, _ = prerequisite_status_reference(state.mastery, slots[has], pre, prereqs)
        back = has[u[1][has] < p_master(rate[has] * backfill_rate, pre_ready)]
        mastery[slots[back] * n_skills + missing[back]] = 2
    mastery[flat[gained]] = 2
    fam[flat] = np.minimum(fam[flat], 254) + 1
    return already, gained


def test_learn_matches_numpy(cur):
    from sim.config.parameters import LearningParams

    rng, st, slots, skills = _day_inputs(cur, 500, 11)
    twin = _copy(st)
    rate = rng.uniform(0, 0.5, slots.size).astype(np.float32)
    u = rng.random(slots.size, dtype=np.float32), rng.random(slots.size, dtype=np.float32)
    lp = LearningParams(readiness_floor=0.2, backfill_rate=0.5)
    got = learning.learn(st, slots, skills, rate, u, cur.prereqs, learning.learning_rules(lp))
    want = learn_reference(twin, slots, skills, rate, u, 0.2, 0.5, cur.prereqs)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert 0 < got[1].sum() < got[1].size
    assert np.array_equal(st.mastery, twin.mastery)
    assert np.array_equal(st.familiarity, twin.familiarity)


def _block_state(d) -> list[np.ndarray]:
    """Everything the day's block writes: students, record, tracks, year log."""
    out = []
    for obj in (d.students, d.record, d.tracks, d.log):
        out += [v for v in vars(obj).values() if isinstance(v, np.ndarray)]
    return out


def _uncompiled(monkeypatch):
    """The day's block and traditional pacing's day run as plain Python: their loops'
    ``py_func`` with every rule they inline swapped for its ``py_func`` too (prefetch,
    an instruction to the memory, for nothing)."""
    from sim.engine import affect, assessment, outcomes, school_day

    rules = {"readiness": learning.readiness, "learn_skill": learning.learn_skill,
             "exit_slip": assessment.exit_slip, "update_streak": records.update_streak,
             "mark_record": records.mark_record,
             "update_track": outcomes.update_track, "update_affect": affect.update_affect,
             "log_day": outcomes.log_day}
    for name, rule in rules.items():
        monkeypatch.setattr(school_day, name, rule.py_func)
    for module in (school_day, pacing):
        monkeypatch.setattr(module, "prefetch", lambda *args: None)
    monkeypatch.setattr(learning, "p_master", learning.p_master.py_func)
    monkeypatch.setattr(affect, "felt_change", affect.felt_change.py_func)
    monkeypatch.setattr(pacing, "missing_ancestor", records.missing_ancestor.py_func)
    return school_day.day_loop.py_func, pacing.traditional_day.py_func


@pytest.mark.parametrize("scenario, arm, exponent", [
    ("floor_strategies.toml", "traditional", 1.0),
    ("floor_strategies.toml", "gradual_floor", 1.0),
    ("floor_strategies.toml", "tutoring", 2.0),
    ("floor_strategies.toml", "personalized", 1.5),
    ("michigan_pacing.toml", "secondary_move_on", 1.0),  # days on a skill, no send-backs
    ("michigan_pacing.toml", "secondary_teacher_paced", 1.0),  # no extension, no reteach
])
def test_compiled_day_matches_its_plain_python_form(scenario, arm, exponent, monkeypatch):
    """The day's block (``school_day.day_block``, through ``District._teach``) and
    traditional pacing's day (``pacing.traditional_day``), compiled, against the same
    rules run as plain Python (``py_func``): every array they write, bit for bit, over
    the first weeks of a year (the fall test and a benchmark included), on two copies
    of one district that share their draws."""
    import copy

    from sim.config.scenario import load_scenario
    from sim.district.model import District
    from sim.district.reference import state_reference
    from sim.engine import school_day

    root = Path(__file__).resolve().parents[1] / "scenarios"
    sc = load_scenario(root / scenario, ["district.schools=1", "years=1",
                                         "calendar.burn_in_years=0",
                                         f"affect.change_exponent={exponent}"])
    chosen = next(a for a in sc.arms if a.label == arm)
    fused = District(sc, chosen, reference=state_reference(sc))
    fused.start_year()
    assert fused.any_move_on == (arm == "secondary_move_on")
    plain = copy.deepcopy(fused)
    assert any(isinstance(regime.pacing, TraditionalPacing) for regime, _ in plain.groups)
    compiled_day = school_day.day_loop, pacing.traditional_day
    python_day = _uncompiled(monkeypatch)
    passes = []
    for day in range(50):
        for d, (block, traditional) in ((fused, compiled_day), (plain, python_day)):
            monkeypatch.setattr(school_day, "day_loop", block)
            monkeypatch.setattr(pacing, "traditional_day", traditional)
            d.day = day
            d.step()
        got, want = _block_state(fused), _block_state(plain)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            assert np.array_equal(g, w, equal_nan=g.dtype.kind == "f"), day
        passes.append(fused.log.days_present.sum())
    assert passes[-1] > passes[0] > 0  # the block ran every day


def rank_within_reference(group, priority):
    """``pacing.rank_within`` in plain numpy (a lexsort)."""
    order = np.lexsort((priority, group))
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group)
    rank = np.empty(group.size, np.int64)
    rank[order] = np.arange(group.size) - first
    return rank


@pytest.mark.parametrize("kind", ["float32", "int64"])
def test_rank_within_matches_numpy(kind):
    from sim.policies.pacing import rank_within

    rng = np.random.default_rng(21)
    for size, groups in ((0, 1), (1, 1), (50, 40), (3000, 40), (3000, 3)):  # 3: large groups
        group = rng.integers(0, groups, size) * 1024 + rng.integers(0, 3, size)
        priority = (rng.random(size, dtype=np.float32) if kind == "float32"
                    else -rng.integers(0, 5, size))  # integer priorities: many ties
        assert np.array_equal(rank_within(group, priority),
                              rank_within_reference(group, priority))


@pytest.mark.parametrize("kind", ["float32", "int64"])
def test_lowest_in_runs_is_rank_below_count(kind):
    """traditional_day's reteach groups: the ``count`` lowest of each group, as ranking
    them all would choose (ties by position; groups smaller and larger than ``count``)."""
    from sim.policies.pacing import lowest_in_runs, rank_in_runs

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


def supervise_reference(d, present, u):
    """``District._supervise`` in plain numpy."""
    teacher = d.students.teacher[present].astype(np.int64)
    room = d.students.room[present]
    in_room = room >= 0
    r = room[in_room]
    pick = np.minimum((u[present][in_room] * d.room_team_size[r]).astype(np.int64),
                      d.room_team_size[r] - 1)
    teacher[in_room] = d.room_first_teacher[r] + pick
    return teacher


def capacity_factor_reference(d, teacher, skills, room, led):
    """``District._capacity_factor`` per student in plain numpy: paces counted over all
    students outside rooms and the teacher-led ones in rooms; unled room students 1."""
    from sim.engine import portable_math

    unit = skills // d.curriculum.skills_per_unit
    counts = (room < 0) | led
    marks = np.zeros_like(d._pace_marks)
    marks[teacher[counts], unit[counts]] = True
    paces = marks.sum(axis=1)
    ratio = np.minimum(1.0, d.staff.capacity_eff[teacher] / np.maximum(paces[teacher], 1))
    in_room = (room >= 0) & led
    pooling = d.params.teams.capacity_pooling
    if pooling > 0 and in_room.any():
        r = room[in_room]
        marks = np.zeros_like(d._room_marks)
        marks[r, unit[in_room]] = True
        room_paces = marks.sum(axis=1)
        w = pooling * d.room_trust[r]
        team = np.minimum(1.0, d.room_capacity[r] / np.maximum(room_paces[r], 1))
        ratio[in_room] = (1.0 - w) * np.minimum(1.0, ratio[in_room]) + w * team
    ratio[(room >= 0) & ~led] = 1.0
    return portable_math.power(ratio, d.params.teachers.capacity_elasticity)


def learning_rate_reference(d, present, modality, teacher, skills):
    """``District._learning_rate`` in plain numpy."""
    from sim.policies.pacing import SMALL_GROUP, WHOLE_CLASS

    p, st = d.params, d.students
    lp, tp = p.learning, p.teachers
    mod_factor = np.array([lp.modality_whole_class, lp.modality_small_group,
                           lp.modality_peer, lp.modality_software], np.float32)[modality]
    led = (modality == WHOLE_CLASS) | (modality == SMALL_GROUP)
    weight = np.where(led, 1.0, lp.teacher_weight_unled)
    teacher_mult = np.maximum(0.1, 1.0 + weight * d.teacher_effect[teacher]
                              / tp.typical_growth_sd)
    room = st.room[present]
    own, trust = st.teacher[present], d.staff.trust
    handed = (room >= 0) & (teacher != own)
    pair = 0.5 * (trust[teacher] + trust[own])
    continuity = np.where(handed, 1.0 - p.teams.handoff_loss * (1.0 - pair), 1.0)
    team = np.where(room >= 0, d.room_team_size[np.maximum(room, 0)], 0)
    keep = np.where(room >= 0, 1.0 - p.teams.transition_loss, 1.0)
    keep = keep * np.where((team > 1) & ~led, 1.0 - p.teams.unled_supervision_loss, 1.0)
    return (lp.base_rate * d._ease[skills] * st.learning_rate[present]
            * st.engagement[present] * mod_factor * teacher_mult * (continuity * keep)
            * capacity_factor_reference(d, teacher, skills, room, led)).astype(np.float32)


def test_learning_rate_matches_numpy():
    """The district's supervision, drift and learning rate (capacity factor included),
    compiled vs plain numpy, on the days of a small mix arm with rooms, pooling and drift."""
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
        assert np.array_equal(teacher, supervise_reference(d, present, draws["rotation"]))
        common = common_pace_skill(d.curriculum, d.params.calendar, d.students.grade[present],
                                   day)
        playlist = d.record.frontier_from(present, np.zeros(present.size, np.int64))
        drifted = drift_toward_common(d._day_context(present, teacher), present, playlist,
                                      teacher, common)
        swap = draws["drift"][present] < d.staff.drift[teacher]  # the rule in numpy
        assert np.array_equal(drifted, np.where(swap, common, playlist))
        assert 0 < (drifted != playlist).sum() < (playlist != common).sum()  # some swapped
        skills, modality = d._assign(present, teacher)
        teacher = d._schedule(present, teacher, skills, modality)
        room = d.students.room[present]
        led = (modality == pacing.WHOLE_CLASS) | (modality == pacing.SMALL_GROUP)
        factors, key = d._capacity_factor(teacher, skills, room, led)
        assert factors.size < present.size / 5  # one per (teacher, room) pair, not per student
        assert np.array_equal(factors[key],
                              capacity_factor_reference(d, teacher, skills, room, led))
        got = d._learning_rate(present, modality, teacher, skills)
        want = learning_rate_reference(d, present, modality, teacher, skills)
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
    got = scoring.knowledge_in_place(mastered.astype(np.float32) @ w.T, mastered, days,
                                     np.float32(0.6), np.float32(1.0 - 0.6), np.float32(0.3),
                                     np.float32(sat))
    assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)


def eap_reference(loglik, grid, prior_mean, prior_sd):
    """``assessment.eap`` as the plain numpy expression."""
    mu = np.asarray(prior_mean, np.float32)[:, None]
    z = (grid[None, :] - mu) / np.asarray(prior_sd, np.float32)[:, None]
    post = loglik - 0.5 * z * z
    post = np.exp(post - post.max(axis=1, keepdims=True))
    total = post.sum(axis=1)
    mean = post @ grid / total
    dev = grid[None, :] - mean[:, None]
    var = (post * dev * dev).sum(axis=1) / total
    return mean.astype(np.float64), np.sqrt(var).astype(np.float64)


def test_eap_matches_numpy():
    from sim.engine import assessment

    rng = np.random.default_rng(41)
    grid = np.arange(-3.0, 12.0, 0.2).astype(np.float32)
    for rows in (1, 7, 500):
        ll = (rng.standard_normal((rows, grid.size)) * 20).astype(np.float32)
        mu = rng.uniform(0, 8, rows)
        sd = rng.uniform(0.5, 3, rows)
        got = assessment.eap(ll, grid, mu, sd)
        want = eap_reference(ll, grid, mu, sd)
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
        got = scoring.add_answer_loglik(ll, right, blocks[start], bank.log_odds, bank.log_q)
        # sums of 15-30 float32 terms of size up to ~100: a few ulp of the largest term
        # (7.6e-6 at 100), which cancellation can leave on a much smaller result (the bank
        # of familiarity_weight 0: 4 values in 48,762 differ by 3.1e-5 on results of 8)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=6e-5)
        assert (np.bincount(start) == 1).any()  # some blocks hold a single row


def test_ancestor_table_is_ascending_and_padded_at_the_end(cur):
    """``first_missing_ancestor`` binary-searches each row of the ancestor table: it
    relies on ancestors listed in increasing order, padding only at the end."""
    for row in cur.ancestors:
        listed = row[row != NO_SKILL]
        assert np.all(np.diff(listed) > 0)
        assert np.all(row[: listed.size] == listed)


def test_frontier_from_matches_its_plain_python_form(cur):
    """The record's cached frontier search, compiled, against its rule uncompiled
    (``records.frontier_of.py_func``, slot by slot), over days of marks (the frontier
    skill and runs past it, so steps forward run out and search), send-backs (stale)
    and moving bounds; and every answer is the first unmarked skill at the bound."""
    from sim.engine.records import MAX_STEP_SCAN, Record

    n = 300
    rng = np.random.default_rng(51)
    a, b = Record(n, cur.n_skills), Record(n, cur.n_skills)
    a.believed = b.believed = rng.random((n, cur.n_skills)) < 0.3
    rule = records.frontier_of.py_func
    for _day in range(60):
        slots = np.sort(rng.permutation(n)[:220]).astype(np.int64)
        bound = rng.choice([0, 7, 40, 41, 120, cur.n_skills - 1], slots.size)
        got = a.frontier_from(slots, bound)
        cache = (b.bits, b.frontier, b.frontier_bound, b.stale, b.advanced)
        want = np.array([rule(*cache, r, x, cur.n_skills, MAX_STEP_SCAN)
                         for r, x in zip(slots, bound, strict=True)], np.int64)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        known = a.believed[slots]
        for i in range(0, slots.size, 11):
            lacks = np.flatnonzero(~known[i, bound[i]:])
            assert got[i] == (bound[i] + lacks[0] if lacks.size else cur.n_skills)
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
    x = np.linspace(compiled.EXP_LOW, compiled.EXP_HIGH, 1_000_001).astype(np.float32)
    got = compiled.exp32_array(x)
    exact = np.exp(x.astype(np.float64))
    assert got.dtype == np.float32
    assert (np.abs(got - exact) / exact).max() < 2 ** -23  # under one ulp of float32
    # clipped outside its range: small and finite below, finite above
    low, lowest, high = compiled.exp32_array(np.array([-1e4, -np.inf, 1e4], np.float32))
    assert 0 < low == lowest < 1e-37 and np.isfinite(high) and high > 1e38


def test_eap_rows_match_numpy():
    rng = np.random.default_rng(43)
    grid = np.arange(-3.0, 13.2, 0.2).astype(np.float32)
    ll = (rng.standard_normal((2000, grid.size)) * 20).astype(np.float32)
    ll -= ll.max(axis=1, keepdims=True)  # log-likelihoods (<= 0), peaked anywhere
    mu, sd = rng.uniform(0, 8, ll.shape[0]), rng.uniform(0.5, 3, ll.shape[0])
    mean, post_sd = scoring.eap_rows(ll, grid, mu, sd)
    want_mean, want_sd = eap_reference(ll, grid, mu, sd)
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


def state_test_reference(rng, state, cur, bank, a, saturation_days, tested, elapsed):
    """``assessment.state_test`` answered and scored in numpy over all rows at once."""
    from sim.engine import assessment

    def score(takers, cols, form, u, mu, sd):
        right = takers.answer(np.broadcast_to(cols, (u.shape[0], form.size)),
                              bank.difficulty[form], a, u)
        return assessment.form_eap(right, form, bank, mu, sd)

    return assessment.state_chunks(rng, state, cur, bank, a, saturation_days, tested, elapsed,
                                   score)


def growth_test_reference(rng, state, bank, a, saturation_days, sits, elapsed):
    """``assessment.growth_test`` answered and scored in numpy, stage by stage over all rows
    (``_Takers.answer``, ``adaptive_eap``)."""
    from sim.engine import assessment

    k = a.growth_items_per_stage

    def score(takers, u, mu, sd):
        def answer(items, s):
            return takers.answer(bank.skill[items], bank.difficulty[items], a,
                                 u[:, s * k:(s + 1) * k])

        return assessment.adaptive_eap(answer, mu, sd, bank, a)

    return assessment.growth_chunks(rng, state, bank, a, saturation_days, sits, elapsed, score)


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
        (assessment.growth_test, growth_test_reference, (st, bank, a, sat, sits, 0.3)),
        (assessment.state_test, state_test_reference,
         (st, district.curriculum, bank, a, sat, tested, 0.8)),
    )
    for fast, numpy_path, args in runs:
        score, sem = fast(np.random.default_rng(7), *args)
        want, want_sem = numpy_path(np.random.default_rng(7), *args)
        taken = ~np.isnan(want)
        assert np.array_equal(np.isnan(score), ~taken) and taken.sum() > 1000
        diff = np.abs(score - want)[taken]
        assert (diff < 0.01).mean() > 0.995 and diff.mean() < 0.01  # scale points
        assert abs(score[taken].mean() - want[taken].mean()) < 0.01
        assert abs(score[taken].std() - want[taken].std()) < 0.01
        assert np.abs(sem - want_sem)[taken].mean() < 0.01


def test_count_off_pace_matches_numpy():
    from sim.engine import outcomes

    rng = np.random.default_rng(5)
    slots = np.sort(rng.choice(1000, 700, replace=False)).astype(np.int64)
    skills, common = rng.integers(0, 4, 700), rng.integers(0, 4, 700)
    got, want = np.zeros(1000, np.int16), np.zeros(1000, np.int16)
    for _ in range(3):
        outcomes.count_off_pace(got, slots, skills, common)
        want[slots] += skills != common
    assert np.array_equal(got, want) and want.max() == 3


def test_stable_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(8)
    for keys in (np.sort(rng.integers(0, 50, 400)), rng.integers(0, 50, 400),
                 np.zeros(0, np.int64), np.array([3, 3, 1, 1, 2])):
        keys = keys.astype(np.int64)
        assert np.array_equal(pacing.stable_order(keys), np.argsort(keys, kind="stable"))
