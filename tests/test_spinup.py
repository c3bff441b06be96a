"""The spin-up is run once per replicate and shared by every arm (``sim.district.spinup``):
the same tables as each arm running its own, and read back from the disk cache unchanged."""

from __future__ import annotations

import pandas as pd
import pytest

import sim.district.spinup as spinup
from sim.config.scenario import load_scenario
from sim.district.model import District
from sim.district.reference import state_reference
from sim.experiments.runner import run

QUICK = "scenarios/quick.toml"
TABLES = ("student_years", "teacher_years", "school_years")
# Two spin-up years; arms that differ in everything the spin-up could read: trust, the
# review's noise (the "before" values), shared evaluation, sections, leaders.
SETTINGS = ["assessment.reference_students_per_grade=100", "calendar.burn_in_years=2",
            "district.mobility=0.1", "leadership.anticipation=4"]
ARMS = [
    {"label": "traditional", "pacing": "traditional"},
    {"label": "shared_team", "pacing": "personalized", "floor": 3, "trust": 0.9,
     "evaluation": "shared", "pd": "targeted",
     "review": {"after_years": 1, "proficiency_noise_sd": 0.05, "growth_noise_sd": 0.1}},
    {"label": "sections", "pacing": "personalized", "floor": 2, "trust": 0.1, "sections": 2,
     "review": {"after_years": 1, "proficiency_noise_sd": 0.2, "growth_noise_sd": 0.0},
     "leaders": {"responsiveness": 8.0}},
]


def scenario(*overrides: str):
    sc = load_scenario(QUICK, [*SETTINGS, *overrides], replicates=2)
    return sc.model_copy(update={"arms": [type(sc.arms[0]).model_validate(a) for a in ARMS]})


@pytest.fixture
def cache_at(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLSIM_NO_CACHE", raising=False)
    spinup.forget()
    yield tmp_path / "cache"
    spinup.forget()


def separate(sc) -> dict[str, pd.DataFrame]:
    """Every arm running its own spin-up (the district's ``burn_in``), as before sharing."""
    ref = state_reference(sc)
    parts = {t: [] for t in TABLES}
    for r in range(sc.replicates):
        for arm in sc.arms:
            tables = District(sc, arm, r, reference=ref).run()
            for t in TABLES:
                parts[t].append(tables[t])
    return {t: pd.concat(parts[t], ignore_index=True) for t in TABLES}


def assert_same(shared, own) -> None:
    for t in TABLES:
        a = getattr(shared, t).copy()
        a["arm"] = a["arm"].astype(str)
        pd.testing.assert_frame_equal(a, own[t], check_exact=True, obj=t)


def test_the_shared_start_gives_the_tables_of_each_arm_running_its_own(cache_at, monkeypatch):
    sc = scenario()
    calls, real = [], spinup.spin_up

    def counted(scenario, replicate, reference):
        calls.append(replicate)
        return real(scenario, replicate, reference)

    monkeypatch.setattr(spinup, "spin_up", counted)
    shared = run(sc)
    assert calls == [0, 1]  # one spin-up per replicate for the three arms
    own = separate(sc)
    assert_same(shared, own)
    s = shared.school_years
    assert s.reviewed.any()  # the review read the spin-up's "before" values
    # the leaders weighed the year before the program (the spin-up's last) for year 1
    first = s[(s.arm.astype(str) == "sections") & (s.year == 1)]
    assert (first.test_prep_weeks > 0).any()
    assert shared.student_years.year.min() == 1 and len(shared.student_years) > 1000


def test_the_start_is_read_back_from_disk_and_gives_identical_tables(cache_at, monkeypatch):
    sc = scenario()
    real = spinup.spin_up
    first = run(sc)
    files = sorted((cache_at / "spin_up").glob("*.npz"))
    assert len(files) == 2  # one per replicate
    spinup.forget()  # a new process: only the disk remains
    monkeypatch.setattr(spinup, "spin_up", lambda *a: pytest.fail("spin-up computed again"))
    again = run(sc)
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(again, t), getattr(first, t), check_exact=True)
    monkeypatch.setattr(spinup, "spin_up", real)
    spinup.forget()
    monkeypatch.setenv("PLSIM_NO_CACHE", "1")  # computed afresh, nothing read or written
    uncached = run(sc)
    assert sorted((cache_at / "spin_up").glob("*.npz")) == files
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(uncached, t), getattr(first, t), check_exact=True)


def test_the_key_names_what_the_start_depends_on_and_not_the_arms():
    sc = scenario()
    ref = state_reference(sc)
    base = spinup.spinup_parameters(sc, 0, ref)
    other_arms = sc.model_copy(update={"arms": sc.arms[:1], "years": 5, "name": "x"})
    assert spinup.spinup_parameters(other_arms, 0, ref) == base  # sweep samples share it
    assert spinup.spinup_parameters(sc, 1, ref) != base
    for changed in ("learning.base_rate=0.5", "calendar.burn_in_years=3",
                    "district.schools=3", "district.program_grades=[7, 8]"):
        assert spinup.spinup_parameters(scenario(changed), 0, ref) != base, changed
    assert spinup.spinup_parameters(sc.model_copy(update={"seed": 5}), 0, ref) != base
    assert spinup.spun_up(scenario("calendar.burn_in_years=0"), 0, ref) is None
