"""The HTML report of a run and of a sweep: self-contained, with figures, and plain-language
sentences whose numbers are the paired differences computed from the tables."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from html import escape as html_escape
from html import unescape as html_unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.cli import main
from sim.experiments.output import sha256
from sim.presentation.brief import brief_html, build_brief, district_sentence, verdict
from sim.presentation.narrative import (
    _band_sentence,
    accountability_sentences,
    arm_descriptions,
    band_shares,
    comparison_sentences,
    format_change,
    human_names,
    number,
    sign_change_sentences,
    small_bands_sentence,
)
from sim.presentation.report import GLOSSARY, write_report

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?!data:|#)[^"']+""", re.I)  # '#x': in-file
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


def test_a_runs_report_is_the_same_with_its_figures_drawn_on_two_workers(run_dir, tmp_path):
    html = (run_dir / "report.html").read_text()
    two = write_report(run_dir, tmp_path / "two.html", workers=2).read_text()
    assert two == html
    assert len(EMBEDDED.findall(two)) == 11 and "\x00" not in two  # no placeholder left


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
    # two arms against the baseline, two sentences each, then the bands left out (quick.toml:
    # 'above' holds about 2% of the students)
    assert len(sentences) == 5
    assert sentences[-1].startswith("Starting bands with under a tenth of the students")
    for arm, sentence in zip(("floor3", "test_prep"), sentences[:4:2], strict=True):
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
    arms = json.loads((run_dir / "manifest.json").read_text())["scenario"]["arms"]
    names = human_names(arms)
    sentences = accountability_sentences(teachers, schools, arms, names)
    html = (run_dir / "report.html").read_text()
    assert len(sentences) == 3
    for sentence, t in zip(sentences, teachers.itertuples(), strict=True):
        s = schools[(schools.arm == t.arm) & (schools.year == 2)].iloc[0]
        assert sentence.startswith(f"{names[t.arm]}: teachers' value-added estimates "
                                   f"correlated {t.corr_estimate_true:.2f} with their true "
                                   "effects")
        assert f"stress was {t.stress:.2f} (0-1) and {100 * t.exit_rate:.1f}% left" in sentence
        assert f"{100 * s.window_share:.0f}% of schools had a test-prep window" in sentence
        assert html_escape(sentence) in html
    # quick.toml: only test_prep has a window; traditional runs no program, and no arm has
    # a review, so no sentence states a program survival share
    assert [s.count("100% of schools had a test-prep window") for s in sentences] == [0, 0, 1]
    assert "this arm runs no program" in sentences[0]
    assert all("program still ran" not in s for s in sentences)
    assert all("no review can drop" in s for s in sentences[1:])


def test_without_arms_every_arm_gets_its_program_share(run_dir):
    teachers = pd.read_csv(run_dir / "teacher_summary.csv")
    schools = pd.read_csv(run_dir / "school_summary.csv")
    sentences = accountability_sentences(teachers, schools)
    assert all("the program still ran in 100% of schools" in s for s in sentences)


def band_rows(changes: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"start_band": b, "growth_sd": m, "growth_sd_lo": lo,
                          "growth_sd_hi": hi} for b, (m, lo, hi) in changes.items()]
                        ).set_index("start_band")


def test_band_sentence_names_only_big_bands_with_clear_changes():
    shares = {"3+ below": 0.2, "1-3 below": 0.5, "on grade": 0.27, "above": 0.03}
    rows = band_rows({"3+ below": (0.10, 0.05, 0.15), "1-3 below": (0.02, -0.01, 0.05),
                      "on grade": (-0.04, -0.06, -0.02), "above": (0.30, 0.20, 0.40)})
    text = _band_sentence("X", rows, shares)
    # 'above' has the largest change but 3% of the students; '1-3 below' is not clear
    assert text.startswith("By starting achievement, X raised growth by 0.10 SD [+0.05, "
                           "+0.15] for students who started 3 or more years below grade (the "
                           "most favourable clear change in growth) and lowered growth by "
                           "0.04 SD [-0.06, -0.02] for students who started within a year")
    assert "above grade" not in text
    assert small_bands_sentence(shares) == (
        "Starting bands with under a tenth of the students are not singled out above: "
        "students who started a year or more above grade (3% of the students).")
    assert small_bands_sentence({"on grade": 0.5, "above": 0.5}) is None
    assert "1 to 3 years" not in text
    one = _band_sentence("X", band_rows({"3+ below": (0.1, -0.1, 0.3),
                                         "on grade": (-0.04, -0.06, -0.02)}), shares)
    assert one == ("By starting achievement, growth changed clearly only for students who "
                   "started within a year of grade level: X lowered growth by 0.04 SD "
                   "[-0.06, -0.02].")
    none = _band_sentence("X", band_rows({"1-3 below": (0.0, -0.1, 0.1)}), shares)
    assert "changed growth clearly for no starting band" in none


def test_band_shares_are_the_students_of_each_band(run_dir):
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    shares = band_shares(rows)
    prog = rows[rows.program_grade & (rows.year == 2) & (rows.arm == "traditional")]
    per_rep = prog.groupby(["replicate", "start_band"], observed=True).size()
    by_hand = per_rep.groupby(level=1, observed=True).mean() / prog.groupby(
        "replicate").size().mean()
    assert set(shares) == {str(b) for b in by_hand.index}
    for band, share in by_hand.items():
        assert shares[str(band)] == pytest.approx(share)
    assert sum(shares.values()) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def signs_dir(tmp_path_factory) -> Path:
    """quick.toml at a seed whose run has a difference changing sign between its years
    (seed 17, one replicate: two; with the parameters fitted at the steady state seeds 1-39
    at two replicates have none)."""
    out = tmp_path_factory.mktemp("signs") / "run"
    assert main(["run", str(ROOT / "scenarios" / "quick.toml"), "--out", str(out), "--quiet",
                 "--set", "seed=17", "--replicates", "1"]) == 0
    return out


def test_sign_changes_between_years_get_a_sentence(signs_dir):
    run_dir = signs_dir
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    expected = []
    for arm in ("floor3", "test_prep"):
        for metric, name, f, digits in (("growth_sd", "growth", 1, 2),
                                        ("proficient", "proficiency", 100, 1)):
            m1, m2 = (round(f * paired_by_hand(rows, arm, "traditional", metric, y)[0], digits)
                      for y in (1, 2))
            if m1 * m2 < 0:
                expected.append((arm, name, m1, m2))
    sentences = sign_change_sentences(rows, "traditional")
    assert len(sentences) == len(expected) > 0  # quick.toml at seed 17 has two
    for (arm, name, m1, m2), sentence in zip(expected, sentences, strict=True):
        unit, digits = ("SD", 2) if name == "growth" else ("points", 1)
        assert sentence.startswith(f"The difference in {name} between {arm} and traditional "
                                   "changed sign between years: ")
        first, second = sentence.split(", then ")
        assert f"{m1:+.{digits}f} {unit}" in first and "in year 1" in first
        assert f"{m2:+.{digits}f} {unit}" in second and "in year 2" in second
    html = (run_dir / "report.html").read_text()
    scenario = json.loads((run_dir / "manifest.json").read_text())["scenario"]
    names = human_names(scenario["arms"])
    for sentence in sign_change_sentences(rows, "traditional", names):
        assert html_escape(sentence) in html
    # the brief says how many there are (after its note on the one replicate)
    assert build_brief(scenario, rows).notes[1:] == [
        f"{len(expected)} of the differences against Grade-level pacing changed sign between "
        f"years ({'it is' if len(expected) == 1 else 'they are'} listed year by year in the "
        "report): a result of the last year alone may not last."]


@pytest.mark.parametrize("x, digits, signed, text", [
    (-0.001, 2, False, "0.00"), (-0.004, 2, True, "+0.00"), (-0.005001, 2, True, "-0.01"),
    (-0.04, 1, False, "0.0"), (0.125, 2, True, "+0.12"), (-3.0, 0, False, "-3")])
def test_numbers_never_read_minus_zero(x, digits, signed, text):
    assert number(x, digits, signed) == text


def test_a_rounded_zero_change_has_no_minus_sign():
    assert format_change("growth_sd", -0.001, -0.004, 0.002) == (
        "did not clearly change growth (+0.00 SD [+0.00, +0.00])")


def test_report_with_another_baseline(run_dir):
    before = (run_dir / "report.html").read_bytes()
    assert main(["report", str(run_dir), "--baseline", "floor3"]) == 0
    # its own file: the run's report.html (in the manifest) stays as it was
    html = (run_dir / "report-vs-floor3.html").read_text()
    assert (run_dir / "report.html").read_bytes() == before
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    g = paired_by_hand(rows, "test_prep", "floor3", "growth_sd", 2)
    assert phrase("growth", "SD", *g, 2) in html
    # the strategies table says what each changes against the baseline
    assert "<td>test_prep</td><td>the personalized playlist with a floor of 3 years below " \
        "grade and a 6-week test-prep window</td><td>adds a 6-week test-prep window</td>" in html
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


# --- the brief -----------------------------------------------------------------------
def report_text(html: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html_unescape(re.sub(r"<[^>]+>", " ", body)))


def test_the_brief_opens_the_report_with_the_ranked_table(run_dir):
    html = (run_dir / "report.html").read_text()
    text = report_text(html)
    words = text.split()
    first_table = html.index("<table")
    assert html.index('<table class="ranked">') == first_table
    before = report_text(html[:first_table]).split()
    assert len(before) < len(words) / 8  # the table comes on the first screen
    # quick.toml: 2 schools, grades K-8, 2 classes of 20 per grade
    assert "The district run: 2 K-8 schools (grades K-8, 2 classes of 20 students per grade: " \
        "720 students); the program's grades 6-8 hold 240 of them" in text
    for question in ("Which strategy grows students most?",
                     "Which keeps most students proficient?",
                     "What does each do to teachers?", "Does the program survive?"):
        assert question in " ".join(before)
    assert not re.search(r"[-\u2212]0\.0+\b", text)
    assert "Glossary" in text and 'id="glossary"' in html


def test_ranked_rows_hold_the_paired_differences_and_their_verdicts(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    brief = build_brief(manifest["scenario"], rows)
    summary = pd.read_csv(run_dir / "summary.csv")
    last = summary[(summary.year == 2) & (summary.start_band == "all students")]
    assert [r.label for r in brief.rows] == list(
        last.sort_values("growth_sd", ascending=False, kind="stable").arm)
    assert [r.rank for r in brief.rows] == [1, 2, 3]
    for r in brief.rows:
        assert r.growth[0] == pytest.approx(float(last[last.arm == r.label].growth_sd.iloc[0]))
        if r.is_baseline:
            assert r.label == "traditional" and r.growth_verdict == "baseline"
            continue
        for metric, change, said in (("growth_sd", r.growth_change, r.growth_verdict),
                                     ("proficient", r.proficient_change, r.proficient_verdict)):
            m, lo, hi = paired_by_hand(rows, r.label, "traditional", metric, 2)
            assert change == pytest.approx((m, lo, hi))
            assert said == ("better" if lo > 0 else "worse" if hi < 0 else
                            "no clear difference")
    assert brief.names == {"traditional": "Grade-level pacing",
                           "floor3": "Personalized playlist + floor 3 years below",
                           "test_prep": "Personalized playlist + floor 3 years below + "
                                        "6-week test prep"}


@pytest.mark.parametrize("mean, lo, hi, said", [
    (0.1, 0.02, 0.2, "better"), (-0.1, -0.2, -0.01, "worse"), (0.1, -0.01, 0.2,
                                                                "no clear difference"),
    (0.1, np.nan, np.nan, "no interval (one replicate)")])
def test_verdict_is_whether_the_paired_interval_excludes_zero(mean, lo, hi, said):
    assert verdict(mean, lo, hi) == said


def test_the_district_is_the_scenario_run_not_its_prose():
    scenario = {"name": "x", "description": "Six K-8 schools", "replicates": 3, "years": 1,
                "district": {"schools": 3, "grades": [3, 4, 5], "classes_per_grade": 2,
                             "class_size": 10, "program_grades": [5]},
                "arms": [{"label": "a"}, {"label": "b", "pacing": "personalized"}]}
    assert district_sentence(scenario, "Grade-level pacing", 0.25) == (
        "The district run: 3 schools (grades 3-5, 2 classes of 10 students per grade: "
        "180 students); the program's grade 5 holds 60 of them, 25% of whom were proficient "
        "under Grade-level pacing. 2 strategies, each run on the same synthetic students 3 "
        "times (replicates) over 1 year.")


def test_names_and_labels_are_escaped_in_the_brief(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    scenario = {**manifest["scenario"], "name": "<img src=x onerror=alert(1)>"}
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    brief = build_brief(scenario, rows)
    brief = dataclasses.replace(brief, baseline_name="<b>base</b>",
                                headlines=[("<q>", "<script>x</script>")])
    out = brief_html(brief, figure=False)
    assert "<script>x" not in out and "&lt;script&gt;x" in out
    assert "<b>base" not in out and "&lt;b&gt;base&lt;/b&gt;" in out
    assert brief.title == "<img src=x onerror=alert(1)>"


def test_human_names_are_unique_and_read_the_arms_composition():
    import tomllib

    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        arms = tomllib.loads(path.read_text()).get("arms", [])
        names = human_names(arms)
        assert len(set(names.values())) == len(arms), path.name
        assert all("_" not in n for n in names.values()), names
    floor = tomllib.loads((ROOT / "scenarios" / "floor_strategies.toml").read_text())["arms"]
    assert list(human_names(floor).values()) == [
        "Grade-level pacing", "Personalized playlist",
        "Personalized playlist + floor 3 years below",
        "Personalized playlist + floor 3 years below + 6-week test prep",
        "Personalized playlist + floor rising to grade level",
        "Grade-level-first units + floor 3 years below",
        "Personalized playlist + floor 3 years below + 3 h/week tutoring near the cut"]


def test_the_glossary_explains_every_term_the_brief_uses():
    terms = " ".join(t for t, _ in GLOSSARY).lower()
    for term in ("sd units", "growth", "proficien", "paired interval", "95% interval",
                 "value-added", "rating bands", "frontier", "starting band", "baseline",
                 "replicate", "floor", "test-prep window", "program review", "stress"):
        assert term in terms, term


# --- figures: nothing drawn over anything ---------------------------------------------
def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def collisions(fig) -> list[str]:
    """Pairs of texts inside one axes whose boxes intersect, and a legend over any axes."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts
                 if t.get_visible() and t.get_text()]
        for i, (ta, a) in enumerate(boxes):
            for tb, b in boxes[i + 1:]:
                if overlaps(a, b):
                    found.append(f"{ta!r} over {tb!r}")
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        found += [f"legend over axes {ax.get_title()!r}" for ax in fig.axes
                  if overlaps(box, ax.get_window_extent(renderer))]
    titles = [t for ax in fig.axes for t in (ax.title,) if t.get_text()]
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            if overlaps(a.get_window_extent(renderer), b.get_window_extent(renderer)):
                found.append(f"title {a.get_text()!r} over {b.get_text()!r}")
    return found


@pytest.fixture(scope="module")
def floor_like():
    """A summary, contrasts and tables with the seven floor_strategies arms (quick.toml's
    students, its three arms' rows relabelled), for figures as crowded as the shipped
    scenario's."""
    import tomllib

    arms = tomllib.loads((ROOT / "scenarios" / "floor_strategies.toml").read_text())["arms"]
    return [a["label"] for a in arms], human_names(arms)


def test_figures_have_no_overlapping_labels_or_legends_over_data(run_dir, floor_like):
    import matplotlib.pyplot as plt

    from sim.analysis import figures as run_figures
    from sim.analysis.summaries import school_summary, summarise
    from sim.presentation import figures

    rows = pd.read_parquet(run_dir / "student_years.parquet")
    teachers = pd.read_parquet(run_dir / "teacher_years.parquet")
    schools = pd.read_parquet(run_dir / "school_years.parquet")
    labels, names = floor_like
    # seven arms, as in floor_strategies: the three arms' rows repeated under its labels
    parts, t_parts, s_parts = [], [], []
    for i, label in enumerate(labels):
        src = ["traditional", "floor3", "test_prep"][i % 3]
        parts.append(rows[rows.arm == src].assign(arm=label))
        t_parts.append(teachers[teachers.arm == src].assign(arm=label))
        s_parts.append(schools[schools.arm == src].assign(arm=label))
    cat = pd.CategoricalDtype(labels)
    many = pd.concat(parts).astype({"arm": cat})
    many_t = pd.concat(t_parts).astype({"arm": cat})
    many_s = pd.concat(s_parts).astype({"arm": cat})
    summary = summarise(many)
    from sim.presentation.narrative import paired_contrasts

    contrasts = paired_contrasts(many, labels[0])
    drawn = {
        "paired_frontier": figures.paired_frontier_figure(contrasts, labels[0], labels, names),
        "paired_by_band": figures.paired_frontier_by_band_figure(contrasts, labels[0], labels,
                                                                 names),
        "trajectories": figures.trajectories_figure(summary, names),
        "switches": figures.switches_by_band_figure(summary, None, names),
        "teachers": figures.teacher_outcomes_by_year_figure(many_t, names),
        "frontier": run_figures.growth_vs_proficiency_figure(summary, None, names),
        "by_band": run_figures.growth_vs_proficiency_by_band_figure(summary, None, names),
        "time_use": run_figures.time_use_by_band_figure(summary, None, names),
        "ratings": run_figures.ratings_vs_true_effect_figure(many_t, names),
        "schools": run_figures.school_policies_by_year_figure(
            school_summary(many_s), names, labels[1:]),
    }
    try:
        for name, fig in drawn.items():
            assert collisions(fig) == [], name
            numbered = [t for ax in fig.axes for t in ax.texts]
            if name in ("paired_frontier", "frontier"):
                assert sorted(t.get_text() for t in numbered) == sorted(
                    str(i + 1) for i in range(len(labels)) if name == "frontier" or i > 0)
        # the program panel of the schools' figure: every series at 100%, so 'no change'
        # and the whole 0-100% range, not a zoom of +-4 points
        program = drawn["schools"].axes[1]
        assert "no change" in program.get_title()
        low, high = program.get_ylim()
        assert low <= 0 and high >= 100
        assert len(program.lines) == len(labels) - 1  # the arm without a program left out
    finally:
        for fig in drawn.values():
            plt.close(fig)


def test_a_flat_panel_says_no_change():
    import matplotlib.pyplot as plt

    from sim.analysis.figures import mark_flat

    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.5, 0.5])
    ax.set_title("stress")
    assert mark_flat(ax, [np.array([0.5, 0.5])], span=0.1)
    assert ax.get_title() == "stress\n(no change over the years)"
    low, high = ax.get_ylim()
    assert high - low >= 0.1 and low < 0.5 < high
    assert not mark_flat(ax, [np.array([0.5, 0.6])])
    plt.close(fig)


def test_the_page_gets_the_same_brief_from_a_validated_scenario(run_dir):
    """brief.render (the web page's call) takes the Scenario object the page holds and
    gives the report's brief."""
    from sim.analysis.summaries import school_summary, teacher_summary
    from sim.config.scenario import load_scenario
    from sim.presentation import brief as brief_module

    scenario = load_scenario(ROOT / "scenarios" / "quick.toml")
    rows = pd.read_parquet(run_dir / "student_years.parquet")
    teachers = teacher_summary(pd.read_parquet(run_dir / "teacher_years.parquet"))
    schools = school_summary(pd.read_parquet(run_dir / "school_years.parquet"))
    fragment = brief_module.render(scenario, rows, teachers, schools, "floor3")
    assert fragment.startswith("<style>") and fragment.endswith("</div>")
    assert '<table class="ranked">' in fragment and 'href="#glossary"' not in fragment
    assert "the baseline is Personalized playlist + floor 3 years below." in fragment
    assert "Does the program survive?" in fragment


def test_program_survival_is_said_only_of_arms_a_review_can_drop():
    from sim.presentation.brief import _program_headline

    arms = [{"label": "traditional", "pacing": "traditional"},
            {"label": "tepp", "pacing": "personalized", "floor": 3,
             "review": {"after_years": 3}},
            {"label": "floor3", "pacing": "personalized", "floor": 3}]
    schools = pd.DataFrame({"arm": ["traditional", "tepp", "floor3"] * 2,
                            "year": [2] * 3 + [3] * 3,
                            "program_active_share": [1.0, 1.0, 1.0, 1.0, 0.6, 1.0]})
    names = human_names(arms)
    assert _program_headline({"arms": arms}, schools, names) == (
        "By year 3 the program still ran in 60% of schools under Personalized playlist + "
        "floor 3 years below + review after 3 years; no review can drop the program under "
        "Personalized playlist + floor 3 years below; Grade-level pacing runs no program.")
    assert _program_headline({"arms": arms[:1] + arms[2:]}, schools, names) == (
        "No strategy in this run includes a program review, so no school could drop the "
        "program; Grade-level pacing runs no program.")


@pytest.mark.parametrize("gap, said", [
    ((-0.031, -0.042, -0.020), ", clearly ahead of the next, Floor, by 0.03 SD [+0.02, +0.04]."),
    ((-0.012, -0.031, 0.008), ", but not clearly ahead of the next, Floor (ahead by 0.01 SD "
                              "[-0.01, +0.03])."),
])
def test_the_runner_up_is_said_as_the_leaders_lead(monkeypatch, gap, said):
    """The gap to the next strategy is the leader's lead (best - next): a signed change
    right after the next one's name read as that strategy's change against the baseline
    (floor_strategies on the page: '..., Gradual floor (-0.03 SD [-0.04, -0.02])' beside a
    table saying +0.00 for it)."""
    from sim.presentation import brief as brief_module

    monkeypatch.setattr(brief_module, "_runner_up", lambda *a: gap)

    def row(rank, label, name, growth, change, said_):
        return brief_module.RankedRow(rank, label, name, said_ == "baseline", growth, change,
                                      said_, (0.2, 0.1, 0.3), change, said_)

    rows = [row(1, "glf", "First", (0.66, 0.65, 0.67), (0.03, 0.02, 0.04), "better"),
            row(2, "floor", "Floor", (0.63, 0.62, 0.64), (0.0, -0.01, 0.02),
                "no clear difference"),
            row(3, "trad", "Pacing", (0.62, 0.61, 0.65), (np.nan,) * 3, "baseline")]
    text = brief_module._best_headline("growth_sd", rows, None, 2, "Pacing")
    assert text == "First grew students most: +0.03 SD [+0.02, +0.04] against Pacing" + said
