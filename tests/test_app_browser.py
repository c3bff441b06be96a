"""End to end: ``plsim app`` in headless Chromium (Debian's chromium, Playwright's Python API).

Starts the app on a free port, loads the page at 1280x800, picks two strategies on a small
district (the shipped ``quick`` preset, one strategy removed, one year), shows that a bad
value ('abc', 2.5 or 0 in a whole-number field) gets a message and stops the run, runs,
waits for the results, and checks that the by-band table equals ``plsim run`` of the
scenario the page offers for download, that the tables fit the page and the frontier figure
is drawn large with nothing over it, that the downloads work and that the page asked for
nothing outside 127.0.0.1. Cancel says "cancelling" and stops within seconds, with progress
shown within the runs before. A scenario name holding markup and a path runs no script and
writes nothing outside the app's folders, and a GET of an asset folder deletes nothing.
The option to run under the shipped ensemble's plausible models gives the brief its
robustness sentences.
Skipped only where Chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import CHROMIUM, plsim_exe

from sim.config.scenario import load_scenario, read_scenario, validate_scenario

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]")


def _open(p, url, outside):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page.on("request", lambda r: None if LOCAL.match(r.url) or r.url.startswith(
        ("data:", "blob:", "about:")) else outside.append(r.url))
    page.goto(url, wait_until="networkidle", timeout=120_000)
    page.get_by_text("Strategies to compare").wait_for(timeout=60_000)
    return browser, page


def _preset(page, name: str, n_arms: int):
    from playwright.sync_api import expect

    page.locator(".v-select:has-text('preset')").first.click()
    page.locator(f".v-menu__content .v-list-item:has-text('{name}')").first.click()
    removes = page.get_by_role("button", name=re.compile("^Remove ", re.I))
    expect(removes).to_have_count(n_arms, timeout=30_000)
    return removes


def _number(page, label: str, value: int):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def _table(page, table_id: str) -> pd.DataFrame:
    """The table's cells as shown, with each row's strategy label (``data-label``) in place
    of its human name."""
    rows = page.eval_on_selector(
        f"#{table_id}", "t => Array.from(t.querySelectorAll('tr')).map("
                        "r => Array.from(r.children).map(c => c.innerText.trim())"
                        ".concat([r.getAttribute('data-label') || 'label']))")
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    frame["strategy"] = frame.pop("label")
    return frame


def _mean(cell: str) -> float:
    return float(cell.split()[0])  # the interval is on a line of its own


def _typed_refused(page, label: str, text: str):
    from playwright.sync_api import expect

    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Tab")
    page.get_by_text(f"enter a whole number (got '{text}')").first.wait_for(timeout=30_000)
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()


def _shot(page, tmp_path, name: str) -> None:
    """A screenshot of the window, kept in ``PLSIM_SCREENSHOT_DIR`` when it is set."""
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("PLSIM_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / name, Path(os.environ["PLSIM_SCREENSHOT_DIR"]))


def _legible(page, frontier, tmp_path) -> None:
    """At 1280x800: the tables fit their column (no sideways scrolling), the frontier is
    drawn at least 600 px wide, nothing covers it, and no badge is shown."""
    for table_id in ("plsim-band-table", "plsim-teacher-table"):
        over = page.eval_on_selector(f"#{table_id}",
                                     "t => t.scrollWidth - t.parentElement.clientWidth")
        assert over <= 1, f"{table_id} is {over} px wider than the page's column"
    frontier.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = frontier.bounding_box()
    assert box["width"] >= 600, f"the frontier is drawn {box['width']:.0f} px wide"
    on_top = frontier.evaluate(
        "img => { const r = img.getBoundingClientRect(); const pts = [[0.5, 0.5], "
        "[0.95, 0.95], [0.05, 0.95], [0.95, 0.05]]; return pts.every(([x, y]) => { const e = "
        "document.elementFromPoint(r.left + x * r.width, Math.min(r.top + y * r.height, "
        "window.innerHeight - 2)); return e === img || img.contains(e); }); }")
    assert on_top, "something covers the frontier figure"
    assert page.get_by_text("runs on Solara").count() == 0
    _shot(page, tmp_path, "app-frontier-1280x800.png")
    page.locator("#plsim-band-table").scroll_into_view_if_needed()
    _shot(page, tmp_path, "app-bands-1280x800.png")


def test_page_runs_two_strategies_like_the_cli(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outside, failed = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page.on("request", lambda r: None if LOCAL.match(r.url) or r.url.startswith(
            ("data:", "blob:", "about:")) else outside.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        page.goto(app_url, wait_until="networkidle", timeout=120_000)
        page.get_by_text("Strategies to compare").wait_for(timeout=60_000)
        body = page.inner_text("body").lower()
        assert "growth" in body and "proficien" in body

        # a small district: the shipped quick preset, two strategies, one year
        page.locator(".v-select:has-text('preset')").first.click()
        page.locator(".v-menu__content .v-list-item:has-text('quick')").first.click()
        removes = page.get_by_role("button", name=re.compile("^Remove ", re.I))
        expect(removes).to_have_count(3, timeout=30_000)  # quick's three strategies
        page.get_by_role("button", name="Remove Test prep", exact=True).click()
        expect(removes).to_have_count(2, timeout=30_000)
        years = page.get_by_label("years simulated", exact=True)
        years.fill("1")
        years.press("Tab")

        # not a whole number, or an impossible one: a message next to the field, Run disabled
        _typed_refused(page, "replicates", "abc")
        _typed_refused(page, "replicates", "2.5")
        _number(page, "replicates", 2)
        page.get_by_text("enter a whole number").first.wait_for(state="detached", timeout=30_000)
        schools = page.get_by_label("schools", exact=True)
        schools.fill("0")
        schools.press("Tab")
        page.get_by_text("greater than or equal to 1 (got 0)").first.wait_for(timeout=30_000)
        expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()
        schools.fill("2")
        schools.press("Tab")
        page.get_by_text("greater than or equal to 1 (got 0)").first.wait_for(state="detached",
                                                                          timeout=30_000)
        page.get_by_text("2 strategies × 2 replicates").wait_for(timeout=30_000)
        estimate = page.inner_text(".plsim-estimate")
        assert re.search(r"Estimated time: about \d+ (s|min)", estimate), estimate

        # the scenario the page built, as TOML
        with page.expect_download() as dl:
            page.get_by_text("Download scenario (TOML)").click()
        toml_path = tmp_path / "page_scenario.toml"
        dl.value.save_as(toml_path)
        sc = load_scenario(toml_path)
        assert [a.label for a in sc.arms] == ["traditional", "floor3"]
        assert (sc.years, sc.replicates, sc.seed, sc.district.schools) == (1, 2, 11, 2)
        quick = read_scenario(ROOT / "scenarios" / "quick.toml")  # over the fitted set, as run
        quick.update(years=1, arms=quick["arms"][:2])
        assert sc == validate_scenario(quick)

        start = time.time()
        page.get_by_role("button", name="Run", exact=True).click()
        page.locator("#plsim-band-table").wait_for(timeout=600_000)
        seconds = time.time() - start
        print(f"\nfrom pressing Run to results: {seconds:.1f} s (quick, 2 arms x 2 "
              "replicates, 1 year)")

        shown = _table(page, "plsim-band-table")
        frontier = page.locator(".plsim-frontier img, img.plsim-frontier").first
        frontier.wait_for(timeout=30_000)
        width = frontier.evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width > 300, "the frontier figure is not drawn"
        _legible(page, frontier, tmp_path)
        assert page.locator("#plsim-teacher-table").count() == 1
        summary = page.inner_text(".plsim-summary")
        assert "Grade-level pacing" in summary and "floor 3 years below" in summary
        assert "proficiency" in summary and "floor3" not in summary  # names, never labels

        with page.expect_download() as dl:
            page.get_by_text("Download results (zip)").click()
        zip_path = tmp_path / "results.zip"
        dl.value.save_as(zip_path)
        report = page.get_by_text("Download report (HTML)")
        if report.count():  # with plsim report's modules
            with page.expect_download() as dl:
                report.click()
            html = dl.value.path().read_text()
            assert "<svg" in html or "data:image" in html
            assert not re.findall(r'(?:src|href)\s*=\s*["\'](https?://[^"\']+)', html)
        page.set_viewport_size({"width": 1280, "height": 3400})  # the app scrolls inside
        page.wait_for_timeout(1000)
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        if os.environ.get("PLSIM_SCREENSHOT_DIR"):
            shutil.copy(tmp_path / "app.png", Path(os.environ["PLSIM_SCREENSHOT_DIR"]))
        browser.close()

    assert not outside, f"requests outside 127.0.0.1: {outside[:3]}"
    assert not failed, f"failed requests: {failed[:3]}"

    # the CLI on the downloaded scenario gives the page's numbers
    out = tmp_path / "cli"
    subprocess.run([plsim_exe(), "run", str(toml_path), "--out", str(out), "--quiet"],
                   check=True, cwd=ROOT, timeout=600)
    cli = pd.read_csv(out / "summary.csv")
    cli = cli[cli.year == cli.year.max()]
    assert len(shown) == len(cli) >= 2 * 2  # two strategies x (all students + bands)
    for row in shown.itertuples(index=False):
        ref = cli[(cli.arm == row.strategy) & (cli.start_band == row.started)].iloc[0]
        # the page shows 2 decimals of growth and 1 of proficiency points; summary.csv keeps 6
        # significant digits, so the two may round a last digit apart
        assert _mean(row[3]) == pytest.approx(ref.growth_sd, abs=0.005 + 1e-6)
        assert _mean(row[4]) == pytest.approx(100 * ref.proficient, abs=0.05 + 1e-6)
    with zipfile.ZipFile(zip_path) as z:
        name = next(n for n in z.namelist() if n.endswith("/summary.csv"))
        in_zip = pd.read_csv(io.BytesIO(z.read(name)))
    pd.testing.assert_frame_equal(in_zip, pd.read_csv(out / "summary.csv"))


def test_page_runs_under_the_shipped_ensemble(app_url, tmp_path):
    """The option runs the page's scenario under every plausible model of the shipped
    ensemble; the brief then says in how many each comparison keeps its direction."""
    from playwright.sync_api import expect, sync_playwright

    from sim.presentation import comparison

    ens, why = comparison.shipped_ensemble()
    assert ens is not None, why
    k = ens.size
    outside = []
    with sync_playwright() as p:
        browser, page = _open(p, app_url, outside)
        removes = _preset(page, "quick", 3)
        page.get_by_role("button", name="Remove Test prep", exact=True).click()
        expect(removes).to_have_count(2, timeout=30_000)
        _number(page, "years simulated", 1)
        _number(page, "replicates", 1)
        page.get_by_text("2 strategies × 1 replicate = 2 runs").wait_for(timeout=30_000)
        page.get_by_text(re.compile(f"Also run under the {k} plausible model")).click()
        page.get_by_text(re.compile(f"each again under {k} plausible model")).wait_for(
            timeout=30_000)
        start = time.time()
        page.get_by_role("button", name="Run", exact=True).click()
        page.locator("#plsim-band-table").wait_for(timeout=600_000)
        print(f"\nfrom pressing Run to results under {k} plausible models: "
              f"{time.time() - start:.1f} s (quick, 2 arms x 1 replicate, 1 year)")
        text = " ".join(page.locator(".plsim-brief").all_inner_texts())
        assert "How robust is each comparison?" in text
        assert re.search(rf"in \d+ of {k} plausible model", text), text[-600:]
        _shot(page, tmp_path, "app-ensemble-1280x800.png")
        browser.close()
    assert not outside


def test_cancel_stops_a_run_and_the_page_stays_responsive(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outside = []
    with sync_playwright() as p:
        browser, page = _open(p, app_url, outside)
        _preset(page, "quick", 3)
        _number(page, "replicates", 20)
        page.get_by_text("3 strategies × 20 replicates").wait_for(timeout=30_000)
        run_button = page.get_by_role("button", name="Run", exact=True)
        run_button.click()
        page.locator(".plsim-status").wait_for(timeout=60_000)
        expect(run_button).to_be_disabled()
        # progress within the runs: simulated school-years count up before any run is done
        # (3 strategies x 20 replicates x quick's 2 years; each replicate's spin-up runs once
        # for every strategy, and is not counted)
        page.get_by_text(re.compile(r"([1-9]\d*\.\d|0\.[1-9]) of 120 simulated school-years")
                         ).wait_for(timeout=120_000)
        status = page.inner_text(".plsim-status")
        assert re.search(r"running… \d+%", status), status
        _shot(page, tmp_path, "app-progress-1280x800.png")
        # while it runs, the form still answers, also to a number typed slowly across
        # several progress ticks (each tick once re-rendered the form, putting a number
        # being typed back to its last value)
        box = page.get_by_label("seed", exact=True)
        box.fill("")
        box.press_sequentially("12", delay=600)  # ms: three of the page's 0.2 s ticks
        box.press("Tab")
        page.get_by_text("3 strategies × 20 replicates").wait_for(timeout=30_000)
        expect(page.get_by_label("seed", exact=True)).to_have_value("12")
        start = time.time()
        page.get_by_role("button", name="Cancel").click()
        # "cancelling" while the workers stop (it may go by faster than a look)
        page.get_by_text(re.compile("cancelling|Run cancelled")).first.wait_for(timeout=10_000)
        said = time.time() - start
        page.get_by_text("Run cancelled").wait_for(timeout=30_000)
        stopped = time.time() - start
        print(f"\nCancel: 'cancelling' after {said:.1f} s, stopped after {stopped:.1f} s")
        assert stopped < 10, f"Cancel took {stopped:.1f} s"  # 2 s on an idle machine
        expect(run_button).to_be_enabled()
        assert page.locator("#plsim-band-table").count() == 0
        browser.close()
    assert not outside


def test_names_are_data_and_assets_stay(app_url, tmp_path):
    """A scenario name with markup and a path: no script runs, nothing is written outside
    the app's folders, the heading shows the name as typed; then a GET of the folder of an
    asset the page loaded deletes nothing."""
    import urllib.error
    import urllib.request

    from playwright.sync_api import sync_playwright

    escape = tmp_path / "escape"
    name = f'../../../../../../..{escape}/<img src=x onerror="window.__xss=1">'
    outside, assets, dialogs = [], [], []
    with sync_playwright() as p:
        browser, page = _open(p, app_url, outside)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: assets.append(r.url) if "/_solara/cdn/" in r.url else None)
        page.reload(wait_until="networkidle")
        page.get_by_text("Strategies to compare").wait_for(timeout=60_000)
        _preset(page, "quick", 3)
        page.get_by_role("button", name="Remove Test prep", exact=True).click()
        page.get_by_role("button", name="Remove Floor 3", exact=True).click()
        _number(page, "replicates", 1)
        _number(page, "years simulated", 1)
        box = page.get_by_label("scenario name", exact=True)
        box.fill(name)
        box.press("Tab")
        page.get_by_text("1 strategy × 1 replicate =").wait_for(timeout=30_000)
        page.get_by_role("button", name="Run", exact=True).click()
        page.locator("#plsim-band-table").wait_for(timeout=600_000)
        heading = page.locator("h3", has_text="Results:").first.inner_text()
        assert heading == f"Results: {name}"  # shown as text
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("() => window.__xss === undefined") and not dialogs
        browser.close()
    assert not escape.exists(), "a path-like name wrote outside the app's folders"
    base = app_url.rstrip("/")
    files = sorted({u.split("?")[0] for u in assets if u.startswith(base) and
                    re.search(r"\.(js|css)$", u.split("?")[0])})
    assert files, "the page loaded no asset from /_solara/cdn/"

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    for f in files[:3]:
        folder = f.rsplit("/", 1)[0]
        assert status(f) == 200
        assert status(folder) == 404 and status(folder + "/") == 404
        assert status(f) == 200, f"a GET of {folder} deleted {f}"
    assert not outside
