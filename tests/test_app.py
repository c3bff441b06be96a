"""The app's page logic without a browser: the form's scenario, its messages, its TOML, the
page rendered by Solara in-process, and a page run against the run contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim.analysis.summaries import ALL, summarise
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
    # the case-study district's measured share proficient (form.py): 30.8% at the fitted
    # offset -1.25, 19.9% at -2, 54.9% at 0
    assert form.approximate_share_proficient(-1.25) == pytest.approx(0.308, abs=0.01)
    assert form.approximate_share_proficient(-2.0) == pytest.approx(0.199, abs=0.01)
    assert form.approximate_share_proficient(0.0) == pytest.approx(0.549, abs=0.01)
    for share in (0.1, 0.25, 0.5, 0.8):
        assert form.approximate_share_proficient(form.offset_for_share(share)) == \
            pytest.approx(share, abs=1e-3)
    assert form.fitted_offset() == -1.25
    with pytest.raises(ValueError, match="between 0 and 100%"):
        form.offset_for_share(1.2)


@pytest.fixture(scope="module")
def tiny():
    data = read_toml(SCEN / "quick.toml")
    data.update(years=1, replicates=2)
    return validate_scenario(data)


@pytest.fixture(scope="module")
def watched():
    from sim.district.monitor import RunMonitor

    return RunMonitor()


@pytest.fixture(scope="module")
def page_run(tiny, watched):
    return comparison.run_comparison(tiny, workers=0, monitor=watched)


def test_page_run_equals_the_run_contract(tiny, page_run, watched):
    ref = summarise(run(tiny, workers=2).student_years)  # the page used all cores (0)
    assert page_run.summary.equals(ref)  # watched (counted days) and unwatched: the same
    size = comparison.run_size(tiny)
    assert (size.tasks, size.years, size.year_days) == (6, 1, 180)  # reported years
    assert size.spin_up_years == 2 * tiny.calendar.burn_in_years  # once per replicate
    assert watched.days == size.tasks * size.days == 6 * 180  # every reported day counted
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
    assert page_run.run_dir.name == "run"  # the app's own folder, never the scenario's name
    panel = comparison.teacher_school_table(page_run)
    assert list(panel.strategy) == ["traditional", "floor3", "test_prep"]
    running = panel[[c for c in panel.columns if "program running" in c][0]]
    assert running[0] == "n/a (no program)"  # grade-level pacing runs no program
    assert 0 <= float(running[1]) <= 100
    text = " ".join(comparison.sentences(page_run, "traditional"))
    # strategies by their human names, never their labels
    assert "floor 3 years below" in text and "6-week test prep" in text
    assert "proficiency" in text and "floor3" not in text and "test_prep" not in text
    assert "Grade-level pacing" in " ".join(comparison.sentences(page_run, "floor3"))


def test_page_figures_name_strategies_as_people_read_them(tiny, page_run, monkeypatch):
    """The page's figures carry the strategies' human names (as the brief and the report),
    never their labels, and the program panel only the strategies that run a program."""
    import pandas as pd

    from sim.analysis import figures as run_figures

    assert {"growth_vs_proficiency", "growth_vs_proficiency_by_band",
            "school_policies_by_year"} <= set(page_run.figures)
    calls = {}

    def record(draw, *args, **kwargs):
        calls[draw.__name__] = kwargs
        return b"png"

    monkeypatch.setattr(comparison, "drawn", record)
    comparison.page_figures(tiny, page_run.summary, pd.DataFrame({"teacher": [1]}),
                            page_run.schools)
    assert set(calls) == {"growth_vs_proficiency", "growth_vs_proficiency_by_band",
                          "ratings_vs_true_effect", "school_policies_by_year"}
    names = calls["growth_vs_proficiency"]["names"]
    assert names["floor3"] == "Personalized playlist + floor 3 years below"
    assert names["test_prep"].endswith("6-week test prep")
    assert all(c["names"] == names for c in calls.values())
    assert calls["school_policies_by_year"]["program_arms"] == ["floor3", "test_prep"]
    fig = run_figures.growth_vs_proficiency_figure(page_run.summary, None, names)
    legend = [t.get_text() for ax in fig.axes for t in
              (ax.get_legend().get_texts() if ax.get_legend() else [])]
    legend += [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert "2  Personalized playlist + floor 3 years below" in legend
    assert not [t for t in legend if "floor3" in t or "test_prep" in t]


def test_page_report(page_run):
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

    app.typed.set({})
    app.scenario_data.set(form.load_preset("quick", SCEN))
    box, rc = solara.render(app.Page(), handle_error=False)
    run_button = rc.find(v.Btn, children=["Run"])
    run_button.assert_single()
    assert not run_button.widget.disabled
    assert rc.find(v.Btn, children=["Remove Test prep"]).widget is not None
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


# --- typed numbers, names people read, the time estimate ----------------------------------
@pytest.mark.parametrize("text, integer, value, words", [
    ("12", True, 12, ""), (" 3 ", True, 3, ""), ("-2", True, -2, ""),
    ("abc", True, None, "enter a whole number (got 'abc')"),
    ("2.5", True, None, "enter a whole number (got '2.5')"),
    ("1e3", True, None, "whole number"), ("1,000", True, None, "whole number"),
    ("", True, None, "enter a number"),
    ("2.5", False, 2.5, ""), ("3", False, 3.0, ""),
    ("abc", False, None, "enter a number, e.g. 2.5 (got 'abc')"),
    ("nan", False, None, "finite"), ("inf", False, None, "finite"),
])
def test_typed_numbers_are_read_or_refused(text, integer, value, words):
    got, why = form.parse_number(text, integer)
    assert got == value and type(got) is type(value)
    assert words in why and bool(why) == (value is None)


def test_strategies_have_human_names():
    assert form.display_name("secondary_pd_advisory") == "Secondary PD advisory"
    assert form.display_name("floor3") == "Floor 3"
    assert form.display_name("grade_level_first") == "Grade level first"
    assert form.display_name("tepp") == "TEPP"


def test_time_estimate_grows_with_the_scenario(tiny):
    size = comparison.run_size(tiny, workers=2)
    assert (size.students, size.tasks, size.workers, size.waves) == (720, 6, 2, 3)
    spin_up = 2 * tiny.calendar.burn_in_years  # district-years, once per replicate
    assert size.student_days == 720 * 180 * (6 + spin_up)
    rate = comparison.STUDENT_DAYS_PER_WORKER_SECOND
    seconds = comparison.estimate_seconds(size)
    assert seconds == pytest.approx((3 * 720 * 180 + 720 * 180 * spin_up / 2) / rate
                                    + comparison.WRITE_SECONDS)
    bigger = comparison.run_size(tiny.model_copy(update={"replicates": 20}), workers=2)
    assert comparison.estimate_seconds(bigger) > 5 * (seconds - comparison.WRITE_SECONDS)
    # the rate a run achieved predicts that run back
    observed = comparison.observed_rate(size, 12.0)
    assert comparison.estimate_seconds(size, observed) == pytest.approx(
        12.0 + comparison.WRITE_SECONDS)


def test_a_stopped_run_stops_within_a_day(tiny):
    import time

    from sim.district.monitor import RunMonitor, RunStopped, watching

    monitor = RunMonitor()
    monitor.stop()
    start = time.perf_counter()
    with pytest.raises(RunStopped), watching(monitor):
        run(tiny, workers=2)
    assert time.perf_counter() - start < 20  # the whole run takes far longer under load
    # each arm-replicate that started (at most twice the workers are in flight) ran at most
    # one day; the first to stop ends the pool, so another may not have finished its day
    assert 1 <= monitor.days <= 4


# --- names and labels are data ------------------------------------------------------------
HOSTILE = "../../../x/<img src=x onerror=\"window.__xss=1\">\n'''\nyears = 30\n"


def test_slugs_are_file_names_only():
    assert form.slug(HOSTILE) == "x_img_src_x_onerror_window.__xss_1_years_30"
    for name in ["..", "../..", "/etc/passwd", "...", "", "\n"]:
        stem = form.slug(name)
        assert "/" not in stem and not stem.startswith(".") and stem
    assert len(form.slug("a" * 500)) == 60


def test_scenario_toml_keeps_a_hostile_name_a_name(tmp_path):
    data = form.load_preset("quick", SCEN)
    data.update(name=HOSTILE, years=1)
    sc = form.build_scenario(data)
    text = form.scenario_toml(sc)
    back = form.scenario_from_toml(text)
    assert back == sc and back.name == HOSTILE and back.years == 1  # not 30
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert load_scenario(path) == sc
    assert all(line.startswith("#") for line in text.splitlines()[:2])


def test_hostile_name_writes_only_under_the_app_folder(tiny, tmp_path, monkeypatch):
    import io
    import tempfile
    import zipfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    sc = tiny.model_copy(update={"name": HOSTILE, "replicates": 1,
                                 "arms": tiny.arms[:1]})
    page = comparison.run_comparison(sc, workers=1)
    made = [p for p in tmp_path.rglob("*")]
    assert made and all(p.relative_to(tmp_path / "tmp").parts[0].startswith("plsim-app-")
                        for p in made if p != tmp_path / "tmp")
    assert page.run_dir.parent.name.startswith("plsim-app-")
    names = zipfile.ZipFile(io.BytesIO(page.results_zip)).namelist()
    assert names and all(n.startswith(page.stem + "/") and ".." not in n.split("/")
                         and not n.startswith("/") for n in names)
    html_text = comparison.html_table(comparison.teacher_school_table(page), "t",
                                      {"strategy": "<b>help</b>"})
    assert "<b>" not in html_text and "&lt;b&gt;help" in html_text


def test_results_show_a_markup_name_as_text(page_run):
    import ipyvuetify as v
    import solara
    import solara.widgets

    from sim.presentation import app

    scenario = page_run.scenario.model_copy(update={"name": HOSTILE})
    hostile = comparison.PageResults(**{**page_run.__dict__, "scenario": scenario})
    box, rc = solara.render(app.Results(hostile), handle_error=False)
    heads = [w for w in rc.find(v.Html).widgets if w.tag == "h3"]
    assert [w.children for w in heads] == [[f"Results: {HOSTILE}"]]  # a text node
    inner = [w.unsafe_innerHTML or "" for w in rc.find(solara.widgets.HTML).widgets]
    assert len(inner) >= 3  # the brief and the two tables
    # no markup from the name: only the brief's own embedded figure is an image
    assert not any("onerror" in h or "<img src=x" in h for h in inner)
    images = [m for h in inner for m in re.findall(r"<img[^>]*>", h)]
    assert all(re.fullmatch(r'<img alt="[^"<>]*" src="data:image/png;base64,[^"]*"[^<>]*>', m)
               for m in images), [m[:80] for m in images]
    rc.close()


def test_page_refuses_typed_non_numbers():
    import ipyvuetify as v
    import solara

    from sim.presentation import app

    app.typed.set({})
    app.scenario_data.set(form.load_preset("quick", SCEN))
    box, rc = solara.render(app.Page(), handle_error=False)
    assert not rc.find(v.Btn, children=["Run"]).widget.disabled
    assert any("Estimated time: about" in c for w in rc.find(v.Html).widgets
               if "plsim-estimate" in (w.class_ or "") for c in w.children)
    for text, words in [("abc", "enter a whole number (got 'abc')"),
                        ("2.5", "enter a whole number (got '2.5')")]:
        field = rc.find(v.TextField, label="replicates")
        field.widget.v_model = text  # taken as typed (each keystroke), no Tab needed
        assert words in _errors_shown(rc)
        assert rc.find(v.Btn, children=["Run"]).widget.disabled
        assert rc.find(v.TextField, label="replicates").widget.v_model == text  # kept
        assert app.scenario_data.value["replicates"] == 2  # never rounded or ignored
    field = rc.find(v.TextField, label="replicates")
    field.widget.v_model = "3"
    assert app.scenario_data.value["replicates"] == 3
    assert not rc.find(v.Btn, children=["Run"]).widget.disabled
    assert _errors_shown(rc) == []
    rc.close()


# --- Solara's asset route: read-only ------------------------------------------------------
def _asgi(app, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """One HTTP request to an ASGI app, as the server would hand it over (no network)."""
    import asyncio
    from urllib.parse import unquote

    sent, asked = [], []

    async def receive():  # the request, then a client that stays connected
        asked.append(1)
        if len(asked) > 1:
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": unquote(path),
             "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "http_version": "1.1"}
    asyncio.run(app(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_asset_route_never_deletes_or_fetches(tmp_path, monkeypatch):
    import requests
    import solara.server.starlette as server
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from sim.presentation import serve

    def no_network(*args, **kwargs):
        raise AssertionError("the asset route reached for the network")

    monkeypatch.setattr(requests, "get", no_network)
    pkg = tmp_path / "requirejs@2.3.6"
    pkg.mkdir()
    (pkg / "require.js").write_text("var requirejs;")
    (tmp_path.parent / f"{tmp_path.name}-outside.txt").write_text("x")
    routes = list(server.app.router.routes)
    try:
        assert serve.harden(server.app, tmp_path) == 1  # Solara's proxy route, replaced
        mounts = [r for r in server.app.router.routes
                  if isinstance(r, Mount) and r.path == "/_solara/cdn"]
        assert len(mounts) == 1 and mounts[0] is server.app.router.routes[0]
        assert not isinstance(mounts[0].app, server.StaticCdn)
        router = Starlette(routes=[mounts[0]])  # the route, with Starlette's 404s
        status, headers, body = _asgi(router, "/_solara/cdn/requirejs@2.3.6/require.js")
        assert (status, body) == (200, b"var requirejs;")
        assert "immutable" in headers["cache-control"]
        for path in ["requirejs@2.3.6", "requirejs@2.3.6/", "requirejs@2.3.6/missing.js",
                     "requirejs", f"../{tmp_path.name}-outside.txt",
                     f"%2e%2e/{tmp_path.name}-outside.txt"]:
            assert _asgi(router, f"/_solara/cdn/{path}")[0] == 404, path
        assert _asgi(router, "/_solara/cdn/requirejs@2.3.6/require.js", "DELETE")[0] == 405
        assert (pkg / "require.js").read_text() == "var requirejs;"  # nothing deleted
        assert sorted(p.name for p in tmp_path.rglob("*")) == [
            "require.js", "requirejs@2.3.6"]  # nothing written or fetched
    finally:
        server.app.router.routes[:] = routes


def test_server_command_is_the_hardened_server():
    from sim.presentation import serve

    cmd = serve.solara_command(8123)
    assert cmd[1:] == ["-m", "sim.presentation.serve", "8123"]
    assert serve.solara_arguments(8123) == [
        "run", "sim.presentation.app", "--host", "127.0.0.1", "--port", "8123", "--no-open",
        "--production"]
    assert serve.ENVIRONMENT["SOLARA_THEME_SHOW_BANNER"] == "False"


def test_workers_forked_by_the_server_stop_with_it():
    """The server's SIGTERM handler is not inherited by a run's workers (they would outlive
    a server stopped mid-run)."""
    import os
    import subprocess
    import sys

    script = """
import multiprocessing, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from sim.presentation.serve import default_signals_in_forked_children
signal.signal(signal.SIGTERM, lambda *a: None)  # as uvicorn's server has one
if os.environ["RESET"] == "1":
    default_signals_in_forked_children()
with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
    futures = [pool.submit(time.sleep, 2) for _ in range(2)]
    time.sleep(0.5)
    procs = list(pool._processes.values())
    for p in procs:
        os.kill(p.pid, signal.SIGTERM)
    time.sleep(0.5)
    print(sum(p.is_alive() for p in procs))
    for p in procs:
        p.kill()
"""
    alive = {}
    for reset in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120, cwd=ROOT, env={**os.environ, "RESET": reset})
        alive[reset] = int(out.stdout.split()[-1])
    assert alive == {"0": 2, "1": 0}


# --- the shipped calibration ensemble on the page --------------------------------------------
# The page's mechanics are tested with the previous model's ensemble, a valid file of 11
# members (the shipped one, docs/calibration/ensemble.toml, has 10)
TEST_ENSEMBLE = ROOT / "tests" / "data" / "ensemble_previous_model.toml"


@pytest.fixture(scope="module")
def two_members():
    """The first two members of the test ensemble (every parameter it names)."""
    from sim.config.ensemble import Ensemble

    ens, why = comparison.shipped_ensemble(TEST_ENSEMBLE)
    assert ens is not None and why == ""
    return Ensemble({k: v[:2] for k, v in ens.values.items()}, ens.about, ens.source)


@pytest.fixture(scope="module")
def ensemble_run(tiny, two_members):
    from sim.district.monitor import RunMonitor

    monitor = RunMonitor()
    page = comparison.run_comparison(tiny, workers=0, monitor=monitor, ensemble=two_members)
    return page, monitor


def test_page_ensemble_run_says_how_robust_each_comparison_is(tiny, page_run, ensemble_run):
    """With the option the page's run is also run under each plausible model (common random
    numbers) and its brief carries the report's robustness counts and sentences, computed
    from the members' results; without it the brief says nothing of plausible models."""
    import io
    import zipfile

    from sim.presentation import brief

    page, monitor = ensemble_run
    assert page.summary[page_run.summary.columns].equals(page_run.summary)  # same run
    assert {"ens_low", "ens_high", "robust_share"} <= set(page.summary.columns)
    size = comparison.run_size(tiny, members=2)
    assert size.tasks == 3 * 6 and monitor.days == size.tasks * size.days  # all counted
    means = page.ensemble
    assert sorted(means.member.unique()) == [0, 1]
    year = page.last_year
    own = page_run.summary.set_index(["arm", "year", "start_band"])
    html = brief.render(page.scenario, page.student_years, page.teachers, page.schools,
                        "traditional", summary=page.summary, ensemble=means,
                        ensemble_source=comparison.SHIPPED_ENSEMBLE_NAME)
    names = {"floor3": "Personalized playlist + floor 3 years below"}
    sel = means[(means.year == year) & (means.start_band == ALL)].set_index("member")
    for arm in ("floor3", "test_prep"):
        member_diff = (sel[sel.arm == arm].diff_growth_sd).to_numpy()
        pooled = own.loc[(arm, year, ALL), "diff_growth_sd"]
        agree = int((np.sign(member_diff) == np.sign(pooled)).sum())
        assert f'<td class="num">{agree} of 2</td>' in html  # the ranked table's column
        assert f"in {agree} of 2 plausible models" in html
    assert f"{names['floor3']} grows students" in html
    assert "How robust is each comparison?" in html and "the ensemble ensemble.toml" in html
    # the same brief without the option: as before, no plausible models anywhere
    plain = brief.render(page_run.scenario, page_run.student_years, page_run.teachers,
                         page_run.schools, "traditional", summary=page_run.summary)
    assert "plausible model" not in plain and page_run.ensemble is None
    assert "ens_low" not in page_run.summary.columns
    # the downloads carry it too: ensemble.csv in the zip, the robustness in the report
    names_in_zip = zipfile.ZipFile(io.BytesIO(page.results_zip)).namelist()
    assert "quick/ensemble.csv" in names_in_zip
    assert "quick/ensemble.csv" not in zipfile.ZipFile(
        io.BytesIO(page_run.results_zip)).namelist()
    assert "of 2 plausible models" in page.report_html("traditional").decode()


def test_page_members_are_plsim_run_ensembles(two_members):
    """The page's member scenarios equal ``plsim run PRESET --ensemble``'s: the members'
    values stand in for the fitted ones, a preset's own value (michigan_pacing's district
    offset) and a value set on the page win."""
    from sim.experiments.ensemble_runs import member_scenarios, members_of

    for name in ("quick", "michigan_pacing"):
        sc = form.build_scenario(form.load_preset(name, SCEN))
        page = members_of(sc, two_members)
        cli = member_scenarios(str(form.presets(SCEN)[name]), two_members, [], sc.seed,
                               sc.replicates)
        assert [m.model_dump() for m in page] == [m.model_dump() for m in cli]
    assert [m.learning.base_rate for m in page] == two_members.values["learning.base_rate"]
    assert {m.district.mean_offset_sd for m in page} == {-0.5}  # the preset's own
    data = form.set_path(form.load_preset("quick", SCEN), "district.mean_offset_sd", -0.3)
    page = members_of(form.build_scenario(data), two_members)
    assert [m.district.mean_offset_sd for m in page] == [-0.3, -0.3]  # set on the page


def test_shipped_ensemble_missing_or_invalid_is_one_line(tmp_path):
    ens, why = comparison.shipped_ensemble()  # docs/calibration/ensemble.toml
    assert ens is not None and ens.size == 10 and why == ""
    ens, why = comparison.shipped_ensemble(TEST_ENSEMBLE)
    assert ens is not None and ens.size == 11 and why == ""
    ens, why = comparison.shipped_ensemble(tmp_path / "absent.toml")
    assert ens is None and "docs/calibration/ensemble.toml" in why and "not installed" in why
    bad = tmp_path / "ensemble.toml"
    bad.write_text('"learning.base_rate" = [0.4, 0.5]\n"learning.nonsense" = [1, 2]\n'
                   "\n" * 3 + "x" * 500)
    ens, why = comparison.shipped_ensemble(bad)
    assert ens is None and why.startswith("the shipped calibration ensemble is not valid: ")
    assert "\n" not in why and len(why) <= 250


def test_page_offers_the_shipped_ensemble_or_says_why_not(tmp_path, monkeypatch):
    import ipyvuetify as v
    import solara

    from sim.presentation import app

    app.typed.set({})
    app.use_ensemble.set(False)
    app.scenario_data.set(form.load_preset("quick", SCEN))
    monkeypatch.setattr(comparison, "SHIPPED_ENSEMBLE", TEST_ENSEMBLE)
    box, rc = solara.render(app.Page(), handle_error=False)
    boxes = [w for w in rc.find(v.Checkbox).widgets if "plausible model" in (w.label or "")]
    assert len(boxes) == 1 and not boxes[0].disabled
    assert "11 plausible models" in boxes[0].label and "about 12× the time" in boxes[0].label
    notes = lambda: " ".join(str(w.children) for w in rc.find(v.Html).widgets)  # noqa: E731
    before = notes()
    assert "each again under" not in before
    app.use_ensemble.set(True)  # ticked: the estimate counts the plausible models' runs
    assert "each again under 11 plausible models" in notes()
    assert "about" in notes() and notes() != before
    rc.close()
    app.use_ensemble.set(False)
    monkeypatch.setattr(comparison, "SHIPPED_ENSEMBLE", tmp_path / "absent.toml")
    box, rc = solara.render(app.Page(), handle_error=False)
    boxes = [w for w in rc.find(v.Checkbox).widgets if "plausible model" in (w.label or "")]
    assert len(boxes) == 1 and boxes[0].disabled
    assert "Not available: the shipped calibration ensemble" in notes()
    rc.close()


def test_cancel_stops_an_ensemble_run_in_its_plausible_models(tiny, two_members):
    """Cancel (``monitor.stop``) while the plausible models run stops them within a day,
    as it stops the run itself: the page's thread is back within seconds."""
    import threading
    import time

    from sim.district.monitor import RunMonitor, RunStopped

    monitor, box = RunMonitor(), {}
    main_days = comparison.run_size(tiny).tasks * tiny.calendar.days * tiny.years

    def work():
        try:
            comparison.run_comparison(tiny, workers=0, monitor=monitor, ensemble=two_members)
        except BaseException as exc:  # noqa: BLE001 - what the page's task receives
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while worker.is_alive() and monitor.days <= main_days:  # the run itself is done
        time.sleep(0.05)
    assert worker.is_alive(), "the ensemble run finished before it could be cancelled"
    start, days = time.perf_counter(), monitor.days
    monitor.stop()
    worker.join(20)
    assert not worker.is_alive() and time.perf_counter() - start < 10
    assert isinstance(box.get("error"), RunStopped)
    total = comparison.run_size(tiny, members=2).tasks * tiny.calendar.days * tiny.years
    assert main_days < days <= monitor.days < total  # stopped among the members' days
