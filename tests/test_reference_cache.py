"""The statewide reference is cached on disk, keyed by what it depends on (and the code)."""

from __future__ import annotations

import numpy as np
import pytest

import sim.district.cache as cache
import sim.district.reference as reference
from sim.config.scenario import load_scenario

QUICK = "scenarios/quick.toml"
SMALL_REF = ["assessment.reference_students_per_grade=100", "years=1"]


def key_of(*overrides: str, **options) -> str:
    sc = load_scenario(QUICK, [*SMALL_REF, *overrides], **options)
    return cache.cache_key("state_reference", reference.reference_parameters(sc))


def test_key_changes_with_mechanisms_not_with_district_arms_or_seed():
    base = key_of()
    assert len(base) == 64
    for mechanism in ("learning.base_rate=0.05", "assessment.exit_slip_guess=0.3",
                      "sensemaking.max_drift=0.2", "teachers.typical_growth_sd=0.3",
                      "district.class_size=24"):  # room size sets the reference's classes
        assert key_of(mechanism) != base, mechanism
    for run_only in ("district.schools=5", "district.mean_offset_sd=-0.5",
                     "district.program_grades=[7]", "arms.floor3.floor=2",
                     "arms.test_prep.test_prep_weeks=2"):
        assert key_of(run_only) == base, run_only
    assert key_of(seed=99, replicates=3) == base


def test_key_changes_with_the_code(monkeypatch):
    base = key_of()
    assert cache.code_version().startswith("plsim ")
    monkeypatch.setattr(cache, "code_version", lambda: "plsim 0.1.0; source edited")
    assert key_of() != base


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLSIM_NO_CACHE", raising=False)
    reference._reference_from_key.cache_clear()
    yield tmp_path / "cache"
    reference._reference_from_key.cache_clear()


def test_reference_is_computed_once_then_read_from_disk(fresh_cache, monkeypatch):
    sc = load_scenario(QUICK, SMALL_REF)
    first = reference.state_reference(sc)
    files = list((fresh_cache / "state_reference").glob("*.npz"))
    assert [f.stem for f in files] == [cache.cache_key("state_reference",
                                                       reference.reference_parameters(sc))]
    reference._reference_from_key.cache_clear()  # a new process: only the disk remains

    def no_compute(key):
        raise AssertionError("the reference was computed again")

    monkeypatch.setattr(reference, "_compute_reference", no_compute)
    again = reference.state_reference(load_scenario(QUICK, [*SMALL_REF, "district.schools=4"]))
    for f in ("cut_by_grade", "fall_mean_by_grade", "fall_sd_by_grade", "cut_fall_level"):
        np.testing.assert_array_equal(getattr(again, f), getattr(first, f))
    assert again.proficient_share == first.proficient_share
    assert np.isfinite(again.cut_by_grade[3:9]).all()  # tested grades have a cut


def test_a_corrupt_entry_is_recomputed(fresh_cache):
    sc = load_scenario(QUICK, SMALL_REF)
    first = reference.state_reference(sc)
    (path,) = (fresh_cache / "state_reference").glob("*.npz")
    path.write_bytes(b"not an npz")
    reference._reference_from_key.cache_clear()
    again = reference.state_reference(sc)
    np.testing.assert_array_equal(again.cut_by_grade, first.cut_by_grade)
    assert path.stat().st_size > 100  # rewritten whole


def test_cache_can_be_turned_off(fresh_cache, monkeypatch):
    monkeypatch.setenv("PLSIM_NO_CACHE", "1")
    reference.state_reference(load_scenario(QUICK, SMALL_REF))
    assert not fresh_cache.exists()


def test_item_bank_is_stored_on_disk_and_read_back_identical(fresh_cache, monkeypatch):
    import dataclasses

    import sim.district.item_bank as item_bank
    from sim.engine import assessment

    sc = load_scenario(QUICK, SMALL_REF)
    item_bank._bank_from_key.cache_clear()
    computed = assessment.item_bank(sc)
    first = item_bank.item_bank(sc)
    assert len(list((fresh_cache / "item_bank").glob("*.npz"))) == 1
    item_bank._bank_from_key.cache_clear()  # a new process: only the disk remains
    monkeypatch.setattr(assessment, "bank_from_key", lambda key: pytest.fail("bank rebuilt"))
    again = item_bank.item_bank(sc)
    item_bank._bank_from_key.cache_clear()
    for bank in (first, again):
        for f in dataclasses.fields(computed):
            want, got = getattr(computed, f.name), getattr(bank, f.name)
            if f.name == "stage_items":
                assert len(got) == len(want)
                for g, w in zip(got, want, strict=True):
                    assert g.dtype == w.dtype and np.array_equal(g, w)
            elif isinstance(want, np.ndarray):
                assert got.dtype == want.dtype and np.array_equal(got, want), f.name
            else:
                assert got == want and type(got) is type(want), f.name
