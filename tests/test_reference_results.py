"""The committed reference results (results/reference/) still describe the model.

Every shipped scenario has a reference file with a quick run (and, once ``make
reference`` has run, the full one a reader quotes); the quick run is re-made here and
every number must stay within its stated tolerance. A failure lists each number that
moved (metric, expected, got, tolerance): if the change of the model is meant,
regenerate with ``make reference`` and say so in the commit message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.validation import reference_results as ref

ROOT = Path(__file__).resolve().parents[1]
FILES = ref.scenario_files(ROOT)


def test_every_shipped_scenario_has_a_reference():
    missing = [str(f) for f in FILES if ref.load(f, ROOT) is None]
    assert not missing, f"no reference for {missing}; run `{ref.REGENERATE}`"
    for f in FILES:
        record = ref.load(f, ROOT)
        assert record["file"] == f.as_posix()
        assert "quick" in record["runs"] and set(record["runs"]) <= set(ref.KINDS), f
        for kind, run in record["runs"].items():
            assert run["command"].startswith(f"plsim run {f.as_posix()}"), (f, kind)
            assert run["metrics"], (f, kind)
            for key, m in run["metrics"].items():
                assert m["tolerance"] > 0 and "value" in m, (f, kind, key)
            arms = {key.split(" | ")[0] for key in run["metrics"]}
            assert arms == {a.label for a in ref.settings(f, kind, ROOT).scenario().arms}


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.stem)
def test_quick_reference_holds(file):
    record = ref.load(file, ROOT)
    assert record is not None, f"no reference for {file}; run `{ref.REGENERATE}`"
    expected = record["runs"]["quick"]
    settings = ref.settings(file, "quick", ROOT)
    assert expected["command"] == settings.command(), (
        f"{file}: the quick settings changed; run `{ref.REGENERATE}`")
    got = ref.compute(settings)
    moved = ref.compare(expected, got, f"{file.stem} (quick): ")
    assert not moved, (f"{len(moved)} reference number(s) moved beyond tolerance; if meant, "
                       f"run `{ref.REGENERATE}` and say so in the commit message:\n"
                       + "\n".join(moved))


def test_a_moved_number_is_reported_readably():
    expected = {"metrics": {"floor3 | all students | growth_sd":
                            {"value": 0.5, "lo": 0.4, "hi": 0.6, "tolerance": 0.02},
                            "floor3 | all students | proficient":
                            {"value": 0.25, "lo": 0.2, "hi": 0.3, "tolerance": 0.02},
                            "floor3 | above | proficient":
                            {"value": 0.9, "lo": 0.8, "hi": 1.0, "tolerance": 0.02}}}
    got = {"metrics": {"floor3 | all students | growth_sd":
                       {"value": 0.47, "lo": 0.4, "hi": 0.6, "tolerance": 0.02},
                       "floor3 | all students | proficient":
                       {"value": 0.26, "lo": 0.2, "hi": 0.3, "tolerance": 0.02},
                       "floor3 | 3+ below | growth_sd":
                       {"value": 0.3, "lo": 0.2, "hi": 0.4, "tolerance": 0.02}}}
    lines = ref.compare(expected, got, "x (quick): ")
    assert lines == [
        "x (quick): floor3 | all students | growth_sd: expected 0.5, got 0.47, tolerance 0.02 "
        "(moved -0.0300)",
        "x (quick): floor3 | above | proficient: expected 0.9, got nothing (metric gone)",
        "x (quick): floor3 | 3+ below | growth_sd: new metric 0.3 (no reference)",
    ]


def test_quick_settings_shrink_the_scenario_and_keep_a_review():
    s = ref.settings(Path("scenarios/logics_collide.toml"), "quick", ROOT)
    sc = s.scenario()
    assert sc.replicates == 2 and sc.district.schools == 2 and sc.years == 3
    assert sc.arms[1].review.after_years == 2 < sc.years
    floor = ref.settings(Path("scenarios/floor_strategies.toml"), "quick", ROOT).scenario()
    assert floor.years == 1 and floor.calendar.burn_in_years == 0 and floor.district.schools == 1
    michigan = ref.settings(Path("scenarios/michigan_pacing.toml"), "quick", ROOT).scenario()
    assert michigan.district.classes_per_grade == 5  # a secondary teacher's five sections
