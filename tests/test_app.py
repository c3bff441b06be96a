"""The app's page logic without a browser: the form's scenario, its messages, its TOML, the
page rendered by Solara in-process, and a page run against the run contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.analysis.summaries import summarise
from sim.config.scenario import load_scenario, read_toml, validate_scenario
from sim.experiments.runner import run
from sim.presentation import comparison, form

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "scenarios"


def test_presets_are_the_shipped_run_scenarios():
    names = form.presets(SCEN)
    assert {"floor_strategies", "quick", "tepp_case_study"} <= set(names)
    assert not any(n.startswith("sweep") for n in names)  # sweeps are not run scenarios
    for name, path in names.items():
        assert form.build_scenario(form.load_preset(name, SCEN)) == load_scenario(path)


def test_strategy_library_offers_every_shipped_arm_once():
    lib = form.strategy_library(SCEN)
    fs = [a["label"] for a in read_toml(SCEN / "floor_strategies.toml")["arms"]]
    assert list(lib)[: len(fs)] == fs
    assert lib["tutoring"]["tutoring"]["hours_per_week"] == 3


def test_editing_the_form_builds_the_scenario():
    data = form.load_preset("quick", SCEN)
    data = form.set_path(data, "district.schools", 3)
    data = form.set_path(data, "arms.1.floor", 2.0)
    data = form.remove_arm(data, 2)
    data = form.add_arm(data, form.strategy_library(SCEN)["floor3"])
    data = form.toggle_section(data, "arms.2.tutoring", True)
    data = form.toggle_section(data, "arms.2.leaders", True)
    data = form.set_path(data, "arms.2.ceiling", 1.5)
    sc = form.build_scenario(data)
    assert sc.district.schools == 3
    assert [a.label for a in sc.arms] == ["traditional", "floor3", "floor3_2"]
    assert sc.arms[1].floor == 2.0 and sc.arms[2].ceiling == 1.5
    assert sc.arms[2].tutoring.hours_per_week == 3.0 and sc.arms[2].leaders is not None
    off = form.set_path(data, "arms.2.ceiling", None)  # unticking removes the key
    assert "ceiling" not in off["arms"][2] and form.build_scenario(off).arms[2].ceiling is None


@pytest.mark.parametrize("path, value, key, words", [
    ("district.schools", 0, "district.schools", "greater than or equal to 1 (got 0)"),
    ("district.class_size", 500, "district.class_size", "less than or equal to 200 (got 500)"),
    ("replicates", 0, "replicates", "greater than or equal to 1"),
    ("arms.1.floor", -1.0, "arms.1.floor", "greater than or equal to 0"),
    ("arms.1.pacing", "magic", "arms.1.pacing", "'traditional'"),
    ("arms.1.label", "has space", "arms.1.label", "should match pattern"),
    ("arms.2.test_prep_weeks", 40.0, "arms.2", "longer than the 150 days before the state test"),
    ("arms.0.floor", 3.0, "arms.0", "floors apply to individual paths only"),
    ("arms.1.label", "traditional", "", "arm labels must be unique"),
    ("district.program_grades", [9], "district", "program_grades [9] are not among grades"),
    ("arms", [], "arms", "choose at least one strategy"),
])
def test_bad_input_gets_a_message_at_its_field(path, value, key, words):
    data = form.set_path(form.load_preset("quick", SCEN), path, value)
    errors = form.field_errors(data)
    assert key in errors, errors
    assert words in errors[key]
    with pytest.raises(Exception, match="."):
        form.build_scenario(data)


def test_valid_form_has_no_messages():
    assert form.field_errors(form.load_preset("floor_strategies", SCEN)) == {}


def test_scenario_toml_round_trips_through_the_loader(tmp_path):
    data = form.load_preset("logics_collide", SCEN)
    data = form.add_arm(data, form.strategy_library(SCEN)["gradual_floor"])
    data = form.toggle_section(data, f"arms.{len(data['arms']) - 1}.review", True)
    data = form.set_path(data, "population.sd_years_per_grade", 0.5)
    for sc in [form.build_scenario(data),
               *[load_scenario(p) for p in form.presets(SCEN).values()]]:
        path = tmp_path / f"{sc.name}.toml"
        path.write_text(form.scenario_toml(sc))
        assert load_scenario(path) == sc  # what `plsim run` reads is the page's scenario
        assert form.scenario_from_toml(path.read_text()) == sc


def test_share_guide_matches_the_case_study():
    assert form.approximate_share_proficient(0.0) == pytest.approx(0.5)
    assert form.approximate_share_proficient(-0.9) == pytest.approx(0.25, abs=1e-3)
    assert form.offset_for_share(0.25) == pytest.approx(-0.9, abs=1e-3)
    assert form.offset_for_share(0.5) == 0.0
    with pytest.raises(ValueError, match="between 0 and 100%"):
        form.offset_for_share(1.2)


@pytest.fixture(scope="module")
def tiny():
    data = read_toml(SCEN / "quick.toml")
    data.update(years=1, replicates=2)
    return validate_scenario(data)


@pytest.fixture(scope="module")
def page_run(tiny):
    return comparison.run_comparison(tiny, workers=0)


def test_page_run_equals_the_run_contract(tiny, page_run):
    ref = summarise(run(tiny, workers=2).student_years)  # the page used all cores (0)
    assert page_run.summary.equals(ref)
    table = comparison.band_table(page_run, "traditional")
    last = ref[ref.year == ref.year.max()]
    assert len(table) == len(last) == 3 * 5  # all students and four starting bands
    for row, r in zip(table.itertuples(index=False), last.itertuples(), strict=True):
        assert row.strategy == str(r.arm) and row.started == str(r.start_band)
        assert float(row[3].split(" [")[0]) == round(r.growth_sd, 2)
        assert float(row[4].split(" [")[0]) == round(100 * r.proficient, 1)
    # the paired difference of the first arm from itself is not shown; the others are
    assert (table[table.strategy == "traditional"]["growth vs traditional"] == "—").all()
    assert table[table.strategy == "floor3"]["growth vs traditional"].str.contains(r"\[").all()


def test_page_run_outputs(page_run):
    assert {"growth_vs_proficiency", "growth_vs_proficiency_by_band"} <= set(page_run.figures)
    assert page_run.figures["growth_vs_proficiency"][:8] == b"\x89PNG\r\n\x1a\n"
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(page_run.results_zip)).namelist()
    assert {"quick/summary.csv", "quick/manifest.json", "quick/student_years.parquet"} <= set(
        names)
    panel = comparison.teacher_school_table(page_run)
    assert list(panel.strategy) == ["traditional", "floor3", "test_prep"]
    text = " ".join(comparison.sentences(page_run, "traditional"))
    assert "floor3" in text and "test_prep" in text and "proficiency" in text
    assert "traditional" in " ".join(comparison.sentences(page_run, "floor3"))


def test_page_report(page_run):
    if not page_run.has_report:
        pytest.skip("sim.presentation.report is not in this build")
    html = page_run.report_html("floor3").decode()
    assert "floor3" in html and "<html" in html.lower()
    assert not re.findall(r'(?:src|href)\s*=\s*["\'](https?://[^"\']+)', html)


def test_cancel_stops_the_run(tiny):
    calls = []

    class Stop(Exception):
        pass

    def on_task(done, total):
        calls.append((done, total))
        raise Stop

    with pytest.raises(Stop):
        run(tiny, workers=2, on_task=on_task)
    assert calls == [(1, 6)]  # the first finished task stops it; no more callbacks


def test_page_renders_and_refuses_bad_input():
    import ipyvuetify as v
    import solara

    from sim.presentation import app

    app.scenario_data.set(form.load_preset("quick", SCEN))
    box, rc = solara.render(app.Page(), handle_error=False)
    run_button = rc.find(v.Btn, children=["Run"])
    run_button.assert_single()
    assert not run_button.widget.disabled
    assert rc.find(v.Btn, children=["Remove test_prep"]).widget is not None
    app.scenario_data.set(form.set_path(app.scenario_data.value, "district.schools", 0))
    rc.find(v.Btn, children=["Run"]).assert_single()
    assert rc.find(v.Btn, children=["Run"]).widget.disabled
    assert "Input should be greater than or equal to 1 (got 0)" in _errors_shown(rc)
    app.scenario_data.set(form.set_path(app.scenario_data.value, "arms", []))
    assert "choose at least one strategy to compare" in _errors_shown(rc)
    assert rc.find(v.Btn, children=["Run"]).widget.disabled
    rc.close()


def _errors_shown(rc) -> list[str]:
    """The red notes next to the fields."""
    import ipyvuetify as v

    return [c for w in rc.find(v.Html).widgets if "plsim-error" in (w.class_ or "")
            for c in w.children if isinstance(c, str)]
