"""The HTML report of a run and of a sweep: self-contained, with figures, and plain-language
sentences whose numbers are the paired differences computed from the tables."""

from __future__ import annotations

import json
import re
import shutil
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.cli import main
from sim.experiments.output import sha256
from sim.presentation.narrative import (
    accountability_sentences,
    arm_descriptions,
    comparison_sentences,
    format_change,
    paired_contrasts,
)
from sim.presentation.report import write_report

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?!data:)[^"']+""", re.I)
EMBEDDED = re.compile(r"""<img[^>]+src=["']data:image/png;base64,""")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quick") / "run"
    assert main(["run", str(ROOT / "scenarios" / "quick.toml"), "--out", str(out),
                 "--quiet"]) == 0
    return out


SWEEP = """
name = "sweep_report"
base = "{base}"
overrides = ["years=1", "district.schools=1", "assessment.reference_students_per_grade=300"]
design = "sobol"
samples = 2
replicates = 1
seed = 3
outcomes = ["growth_sd", "proficient"]

[[parameters]]
path = "arms.test_prep.floor"
low = 0.5
high = 4.0

[[parameters]]
path = "arms.test_prep.test_prep_weeks"
low = 0
high = 8
"""


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    spec = folder / "sweep.toml"
    spec.write_text(SWEEP.format(base=(ROOT / "scenarios" / "quick.toml").as_posix()))
    out = folder / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


def paired_by_hand(rows: pd.DataFrame, arm: str, baseline: str, metric: str, year: int):
    """Mean and 95% t-interval across replicates of arm - baseline, program-grade students."""
    prog = rows[rows.program_grade & (rows.year == year)]
    means = prog.groupby(["arm", "replicate"], observed=True)[metric].apply(
        lambda s: s.astype(float).mean())
    d = (means[arm] - means[baseline]).to_numpy(float)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return d.mean(), d.mean() - half, d.mean() + half


def test_run_writes_a_self_contained_report_by_default(run_dir, tmp_path):
    html = (run_dir / "report.html").read_text()
    assert not EXTERNAL.findall(html)
    assert "<script" not in html.lower()
    assert len(EMBEDDED.findall(html)) >= 8
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for fact in ("quick", manifest["git_commit"], "<th>seed</th><td>11</td>",
                 "<th>replicates</th><td>2</td>", " ".join(manifest["command"])):
        assert fact in html, fact
    # staged with the run: the manifest vouches for it, and it is the report
    # `plsim report` writes from the finished folder
    assert manifest["files"]["report.html"] == sha256(run_dir / "report.html")
    assert write_report(run_dir, tmp_path / "again.html").read_text() == html
    assert not list(run_dir.glob(".*"))


def phrase(name: str, unit: str, mean: float, lo: float, hi: float, digits: int) -> str:
    """How a paired change reads: a verb when the interval excludes zero."""
    interval = f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"
    if lo > 0 or hi < 0:
        verb = "raised" if mean > 0 else "lowered"
        return f"{verb} {name} by {abs(mean):.{digits}f} {unit} {interval}"
    return f"did not clearly change {name} ({mean:+.{digits}f} {unit} {interval})"


def test_sentence_numbers_are_the_paired_differences_of_the_tables(run_dir):
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    year = int(rows.year.max())
    sentences = comparison_sentences(rows, "traditional")
    assert len(sentences) == 4  # two arms against the baseline, two sentences each
    for arm, sentence in zip(("floor3", "test_prep"), sentences[::2], strict=True):
        assert sentence.startswith(f"In year {year}, compared with traditional, {arm} ")
        g = paired_by_hand(rows, arm, "traditional", "growth_sd", year)
        p = [100 * v for v in paired_by_hand(rows, arm, "traditional", "proficient", year)]
        assert phrase("growth", "SD", *g, 2) in sentence
        assert phrase("proficiency", "points", *p, 1) in sentence


@pytest.mark.parametrize("args, words", [
    (("growth_sd", 0.1234, 0.05, 0.2), "raised growth by 0.12 SD [+0.05, +0.20]"),
    (("growth_sd", -0.04, -0.06, -0.02), "lowered growth by 0.04 SD [-0.06, -0.02]"),
    (("proficient", 0.015, 0.013, 0.017), "raised proficiency by 1.5 points [+1.3, +1.7]"),
    (("proficient", -0.012, -0.04, 0.016),
     "did not clearly change proficiency (-1.2 points [-4.0, +1.6])"),
    (("growth_sd", 0.03, np.nan, np.nan), "raised growth by 0.03 SD"),
])
def test_a_change_reads_as_raised_lowered_or_not_clear(args, words):
    assert format_change(*args) == words


def test_arms_are_described_by_what_they_change():
    arms = [{"label": "floor3", "pacing": "personalized", "floor": 3},
            {"label": "test_prep", "pacing": "personalized", "floor": 3, "test_prep_weeks": 6},
            {"label": "traditional", "pacing": "traditional"}]
    words = arm_descriptions(arms, "floor3")
    assert words["floor3"] == ("floor3 (the personalized playlist with a floor of 3 years "
                               "below grade)")
    assert words["test_prep"] == "test_prep (which adds a 6-week test-prep window)"
    assert words["traditional"] == ("traditional (which uses grade-level pacing instead of the "
                                    "personalized playlist, drops a floor of 3 years below grade)")


def test_an_arm_option_without_words_is_said_from_its_description():
    """A new arm option reads in the report before anyone writes its words; the words'
    lists name only real settings."""
    from pydantic import Field  # a FieldInfo, as ArmSettings' fields are

    from sim.config.parameters import ArmSettings
    from sim.presentation.narrative import PHRASED, UNSAID, _other_settings, describe_arm

    assert set(ArmSettings.model_fields) >= PHRASED | UNSAID
    assert not _other_settings({"label": "a", "sections": 5, "floor": 2, "trust": 0.9})
    fields = {"homework_minutes": Field(0, description="homework before the test "
                                                       "(minutes a day)"),
              "quiet_room": Field(False, description="a quiet room")}
    arm = {"label": "a", "homework_minutes": 30, "quiet_room": True}
    assert _other_settings(arm, fields) == {
        "homework_minutes": "homework before the test (minutes a day) 30",
        "quiet_room": "a quiet room"}
    assert not _other_settings({"label": "a", "homework_minutes": 0}, fields)
    assert describe_arm({"label": "a", "pacing": "personalized"}) == "the personalized playlist"


def test_teacher_and_school_sentences_hold_the_summaries_numbers(run_dir):
    teachers = pd.read_csv(run_dir / "teacher_summary.csv")
    schools = pd.read_csv(run_dir / "school_summary.csv")
    sentences = accountability_sentences(teachers, schools)
    html = (run_dir / "report.html").read_text()
    assert len(sentences) == 3
    for sentence, t in zip(sentences, teachers.itertuples(), strict=True):
        s = schools[(schools.arm == t.arm) & (schools.year == 2)].iloc[0]
        assert sentence.startswith(f"{t.arm}: teachers' value-added estimates correlated "
                                   f"{t.corr_estimate_true:.2f} with their true effects")
        assert f"stress was {t.stress:.2f} (0-1) and {100 * t.exit_rate:.1f}% left" in sentence
        assert (f"in year 2 the program still ran in {100 * s.program_active_share:.0f}% of "
                f"schools and {100 * s.window_share:.0f}% had a test-prep window") in sentence
        assert html_escape(sentence) in html
    # quick.toml: only test_prep has a window, and no arm reviews the program
    assert [s.endswith("and 100% had a test-prep window.") for s in sentences] == [
        False, False, True]


def test_band_sentence_names_the_bands_with_the_largest_and_smallest_change(run_dir):
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    c = paired_contrasts(rows, "floor3")
    bands = c[(c.arm == "test_prep") & (c.start_band != "all students")].dropna(
        subset=["growth_sd"]).set_index("start_band")
    most, least = bands.growth_sd.idxmax(), bands.growth_sd.idxmin()
    sentence = comparison_sentences(rows, "floor3")[3]
    # signed, with the unit: +0.05 and -0.05 share the digits
    assert sentence.index(f"{bands.growth_sd[most]:+.2f} SD") < sentence.index(
        f"{bands.growth_sd[least]:+.2f} SD")
    for band in (most, least):
        assert f"{bands.growth_sd_lo[band]:+.2f}, {bands.growth_sd_hi[band]:+.2f}]" in sentence


def test_report_with_another_baseline(run_dir):
    before = (run_dir / "report.html").read_bytes()
    assert main(["report", str(run_dir), "--baseline", "floor3"]) == 0
    # its own file: the run's report.html (in the manifest) stays as it was
    html = (run_dir / "report-vs-floor3.html").read_text()
    assert (run_dir / "report.html").read_bytes() == before
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    g = paired_by_hand(rows, "test_prep", "floor3", "growth_sd", 2)
    assert phrase("growth", "SD", *g, 2) in html
    assert "test_prep (which adds a 6-week test-prep window)" in html
    assert len(EMBEDDED.findall(html)) >= 8


def test_sweep_report_has_outcome_and_index_figures(sweep_dir, tmp_path):
    html = (sweep_dir / "report.html").read_text()
    assert not EXTERNAL.findall(html)
    # one figure per outcome (2) and the Sobol indices
    assert len(EMBEDDED.findall(html)) == 3
    assert "Sensitivity indices (sobol)" in html
    assert "arms.test_prep.floor" in html
    path = write_report(sweep_dir, tmp_path / "again.html")
    assert path.read_text() == html


@pytest.mark.parametrize("case", ["missing", "empty", "other_manifest", "baseline",
                                  "out_folder", "unfinished_sweep", "sweep_baseline"])
def test_bad_input_exits_2_and_writes_nothing(case, run_dir, sweep_dir, tmp_path, capsys):
    target = tmp_path / "report.html"
    if case == "other_manifest":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "manifest.json").write_text('{"name": "something else"}')
    if case == "unfinished_sweep":
        shutil.copytree(sweep_dir, tmp_path / "d")
        (tmp_path / "d" / "report.html").unlink()
        next((tmp_path / "d" / "outcomes").glob("run-*.parquet")).unlink()
    args = {"missing": [str(tmp_path / "nope")],
            "empty": [str(tmp_path)],
            "other_manifest": [str(tmp_path / "d")],
            "baseline": [str(run_dir), "--baseline", "nosuch"],
            "out_folder": [str(run_dir)],
            "unfinished_sweep": [str(tmp_path / "d")],
            "sweep_baseline": [str(sweep_dir), "--baseline", "nosuch"]}[case]
    out = tmp_path / "no" / "such" / "r.html" if case == "out_folder" else target
    assert main(["report", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("plsim: error:") and "\n" not in err
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.rglob(".*.tmp"))
    if "baseline" in case:
        assert "'nosuch': no such arm; arms: traditional, floor3, test_prep" in err
    if case == "unfinished_sweep":
        assert "sweep unfinished" in err and not (tmp_path / "d" / "report.html").exists()


def test_no_report_flag(tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(ROOT / "scenarios" / "quick.toml"), "--out", str(out), "--quiet",
                 "--no-report", "--set", "years=1", "--replicates", "1"]) == 0
    assert (out / "manifest.json").is_file() and not (out / "report.html").exists()


def test_the_report_reads_only_the_program_rows_and_columns_it_uses(run_dir):
    """A run's report holds a few columns of the program grades' student-years, so its
    memory does not grow with the whole table (run-memory-bounded)."""
    from sim.presentation.report import STUDENT_COLUMNS, read_tables

    students = read_tables(run_dir)["student_years"]
    whole = pd.read_parquet(run_dir / "student_years.parquet")
    assert list(students.columns) == [c for c in STUDENT_COLUMNS if c in whole.columns]
    assert len(whole.columns) > 2 * len(students.columns)
    assert len(students) == int(whole["program_grade"].sum()) < len(whole)
