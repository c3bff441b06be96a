"""End to end: the page's "your own district" in headless Chromium (Debian's chromium,
Playwright). Choosing the shipped sample CSV fits it, makes the page's scenario the fitted
district (the form shows its name and schools) and shows the fit table; a file with a student
identifier column gets the message and changes nothing. Skipped only where Chromium is not
installed (``.ci/run`` installs it)."""

from __future__ import annotations

from pathlib import Path

from conftest import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "scenarios" / "sample_district.csv"


def _page(p, url):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url, wait_until="networkidle", timeout=120_000)
    page.locator("input.plsim-district-file").wait_for(state="attached", timeout=60_000)
    return browser, page


def test_uploading_the_sample_fits_it_and_sets_the_page_scenario(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    bad = tmp_path / "pupils.csv"
    bad.write_text("student_id,school,grade,enrolled,proficient_share\n1,A,3,40,0.3\n")
    with sync_playwright() as p:
        browser, page = _page(p, app_url)
        page.set_input_files("input.plsim-district-file", str(bad))
        page.get_by_text("looks like a student identifier").wait_for(timeout=60_000)
        assert "pupils.csv: column 'student_id'" in page.inner_text("body")
        assert "Fitted in" not in page.inner_text("body")

        page.set_input_files("input.plsim-district-file", str(SAMPLE))
        page.get_by_text("Fitted in").wait_for(timeout=300_000)
        # the form re-renders with the fitted scenario (its name is the file's)
        page.wait_for_function("() => Array.from(document.querySelectorAll('input'))"
                               ".some(x => x.value === 'sample_district')", timeout=60_000)
        rows = page.eval_on_selector(
            "table.plsim-fit-table", "t => Array.from(t.querySelectorAll('tr')).map("
                                     "r => Array.from(r.children).map(c => c.innerText.trim()))")
        body = page.inner_text("body")
        values = page.eval_on_selector_all("input", "xs => xs.map(x => x.value)")
        browser.close()
    head, cells = rows[0], rows[1:]
    assert len(cells) == 25 and cells[-1][0] == "(district)"   # 4 schools x 6 grades + district
    file_, sim = head.index("proficient (file)"), head.index("proficient (plsim)")
    gaps = [abs(float(r[file_]) - float(r[sim])) for r in cells]
    assert max(gaps) <= 0.04
    # the page's scenario is the fitted district (its name is the file's; the form shows
    # its 4 schools), with the fit's note
    assert "sample_district" in values and "4" in values
    assert "4 schools, grades 3-8" in body
