"""The sweep report's robustness section (``plsim sweep --ensemble``): its numbers are
``sample_summary.csv``'s, labels are escaped, and a sweep without an ensemble gets the
report it had before.

The sweep is test_sweep_ensemble's: 2 design samples x 2 replicates of the quick scenario
cut to one school with one classroom per grade and one 90-day year, with a two-member
ensemble (the fitted learning rate and 1.3 times it).
"""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.config.scenario import FITTED_PARAMETERS, read_parameters
from sim.experiments.sensitivity import choose_year, load_finished
from sim.experiments.sweep_ensemble import SUMMARY_FILE
from sim.presentation import sweep_robustness
from sim.presentation.report import render

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
OVERRIDES = ["years=1", "district.schools=1", "district.classes_per_grade=1",
             "calendar.burn_in_years=0", "calendar.days=90", "calendar.state_test_day=60",
             "calendar.spring_test_day=85", "assessment.reference_students_per_grade=200"]
SWEEP = (f'name = "tiny"\nbase = "{QUICK.as_posix()}"\noverrides = {json.dumps(OVERRIDES)}\n'
         'design = "latin"\nsamples = 2\nreplicates = 2\nseed = 7\n'
         'outcomes = ["growth_sd", "proficient", "switches"]\n'
         '[[parameters]]\npath = "arms.test_prep.floor"\nlow = 0.5\nhigh = 4.0\n')
HEADING = "<h2>How robust is each comparison?</h2>"
NEXT = "\n<h2>Outcomes by parameter</h2>"


def sweep(tmp_path_factory, name: str, *extra: str) -> Path:
    d = tmp_path_factory.mktemp(name)
    (d / "sweep.toml").write_text(SWEEP, encoding="utf-8")
    out = d / "out"
    assert main(["sweep", str(d / "sweep.toml"), "--out", str(out), "--workers", "1",
                 "--no-report", "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return sweep(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    rate = read_parameters(FITTED_PARAMETERS)["learning"]["base_rate"]
    members = tmp_path_factory.mktemp("members") / "two.toml"
    members.write_text(f'"learning.base_rate" = [{rate}, {rate * 1.3}]\n', encoding="utf-8")
    return sweep(tmp_path_factory, "two", "--ensemble", str(members))


def section(page: str) -> str:
    start = page.index(HEADING)
    return page[start:page.index(NEXT, start)]


def table_rows(html: str) -> list[dict[str, str]]:
    """The section's table as one dict a row (cells unescaped)."""
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    head = [unescape(h) for h in re.findall(r"<th>(.*?)</th>", rows[0])]
    return [dict(zip(head, (unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)),
                     strict=True)) for r in rows[1:]]


def signed(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:+.{digits}f}"


def comparisons(out: Path) -> tuple[pd.DataFrame, int]:
    """The CSV's comparisons of the report's year, all students, and that year."""
    year = choose_year(load_finished(out), None)
    s = pd.read_csv(out / SUMMARY_FILE)
    return s[(s.year == year) & (s.start_band == "all students")
             & (s.arm != "traditional")], year


def test_the_section_shows_each_comparison_as_the_csv_has_it(two):
    page = render(two)
    html = section(page)
    rows, year = comparisons(two)
    assert len(rows) == 4 and set(rows.robust_share) <= {0.5, 1.0}  # 2 samples x 2 arms
    shown = {(r["sample"], r["arm"]): r for r in table_rows(html)}
    assert len(shown) == 4
    for r in rows.to_dict("records"):
        r = pd.Series(r)
        cells = shown[(str(r["sample"]), r.arm)]
        assert cells["arms.test_prep.floor"] == f"{r['arms.test_prep.floor']:.3g}"
        assert cells["growth vs baseline (SD)"] == (
            f"{signed(r.diff_growth_sd, 2)} [{signed(r.diff_growth_sd_lo, 2)}, "
            f"{signed(r.diff_growth_sd_hi, 2)}]")
        assert cells["growth across plausible models (SD)"] == (
            f"{signed(r.ens_low, 2)} to {signed(r.ens_high, 2)}")
        assert cells["growth: kept its sign"] == (
            f"in {round(2 * r.robust_share)} of 2 plausible models")
        assert cells["proficient vs baseline (points)"].startswith(
            f"{signed(100 * r.diff_proficient, 1)} [")
        assert cells["proficient across plausible models (points)"] == (
            f"{signed(100 * r.proficient_ens_low, 1)} to "
            f"{signed(100 * r.proficient_ens_high, 1)}")
        assert cells["proficient: kept its sign"] == (
            f"in {round(2 * r.proficient_robust_share)} of 2 plausible models")
    lead = unescape(re.search(r"<p>(.*?)</p>", html).group(1))
    every, fewer = int((rows.robust_share == 1).sum()), int((rows.robust_share < 1).sum())
    assert "each of 2 plausible models" in lead and "(the ensemble two.toml)" in lead
    assert f"In year {year}" in lead and "there are 4 comparisons with traditional" in lead
    assert (f"Change in growth: {every} kept their direction in every plausible model, 0 in "
            f"most (90% or more of them) and {fewer} in fewer.") in lead
    p_every = int((rows.proficient_robust_share == 1).sum())
    assert (f"Change in proficiency: {p_every} in every plausible model, 0 in most (90% or "
            f"more of them) and {4 - p_every} in fewer.") in lead
    assert "smallest to largest" in html and "every comparison" in html


@pytest.fixture()
def edited(two, tmp_path) -> Path:
    """A copy of the ensemble sweep whose CSV has a hostile label and a split comparison,
    every other comparison kept in both members (so the split one is the least robust,
    whatever the model's own numbers)."""
    out = tmp_path / "out"
    shutil.copytree(two, out)
    s = pd.read_csv(out / SUMMARY_FILE)
    rows, _ = comparisons(out)
    first = rows.index[0]
    s.loc[s.arm == s.loc[first, "arm"], "arm"] = "<script>alert(1)</script>"
    s.loc[s.robust_share.notna(), "robust_share"] = 1.0
    s.loc[first, "robust_share"] = 0.5
    s.to_csv(out / SUMMARY_FILE, index=False)
    return out


def test_labels_are_escaped_and_the_least_robust_come_first(edited, monkeypatch):
    monkeypatch.setattr(sweep_robustness, "SHOWN", 2)
    html = section(render(edited))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    rows, _ = comparisons(edited)
    shown = table_rows(html)
    assert len(shown) == 2
    assert shown[0]["arm"] == "<script>alert(1)</script>"
    assert shown[0]["growth: kept its sign"] == "in 1 of 2 plausible models"
    least = sorted(rows.robust_share)[:2]
    assert [s["growth: kept its sign"] for s in shown] == [
        f"in {round(2 * x)} of 2 plausible models" for x in least]
    assert "the 2 least robust of the 4 comparisons" in html
    rest = sorted(rows.robust_share)[2:]
    assert (f"The other 2 comparisons are in {SUMMARY_FILE}; "
            f"{sum(x == 1 for x in rest)} of them kept") in html


def test_without_an_ensemble_the_report_is_the_one_before(plain, two):
    """The ensemble sweep ran the plain sweep's runs: its report is the plain one plus the
    section (nothing else differs), and the plain one names no plausible model."""
    before, with_ensemble = render(plain), render(two)
    assert HEADING not in before and "plausible" not in before
    assert with_ensemble.replace("\n" + section(with_ensemble), "") == before


def test_a_missing_table_is_said_and_a_bad_manifest_is_one_line(two, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(two, out)
    (out / SUMMARY_FILE).unlink()
    html = section(render(out))
    assert "sample_summary.csv is missing" in html and "<table" not in html
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["ensemble"]["members"] = "two"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ensemble.members" in err
    assert not (tmp_path / "r.html").exists()


def test_a_sample_summary_without_a_column_is_one_line(two, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(two, out)
    s = pd.read_csv(out / SUMMARY_FILE)
    s.drop(columns="proficient_robust_share").to_csv(out / SUMMARY_FILE, index=False)
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out / SUMMARY_FILE) in err
    assert "proficient_robust_share" in err and not (tmp_path / "r.html").exists()
