"""``plsim validate`` and ``plsim calibrate --fit``: patterns, exit codes, JSON, the fit.

Quick validation runs in process (small districts, 2 replicates); the
measurements are checked on synthetic tables with known answers; a parameter
set absurdly must make patterns fall short; the fit writes a parameters file
that scenarios then start from, the same one for the same seed.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.config.scenario import ScenarioError, load_scenario, read_parameters
from sim.validation import facts as F
from sim.validation.facts import facts
from sim.validation.findings import findings
from sim.validation.fit import FIT_SPACE
from sim.validation.patterns import CALIBRATION, FINDING, Pattern, judge, verdict
from sim.validation.studies import ParameterSet, Settings
from sim.validation.validate import fact_outcomes, fact_runs

REPO = Path(__file__).resolve().parents[1]
KEYS = {"name", "kind", "source", "target", "tolerance", "value", "ci_low", "ci_high", "holds"}


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def quick_json():
    """One quick validation of every pattern on the shipped parameter set."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["validate", "--quick", "--json"])
    return rc, json.loads(buf.getvalue())


# --- the report ---------------------------------------------------------------------------
def test_quick_json_names_every_fact_and_finding(quick_json):
    rc, data = quick_json
    pats = data["patterns"]
    assert all(set(p) >= KEYS for p in pats)
    assert [p["kind"] for p in pats].count(CALIBRATION) == len(facts()) == 28
    assert [p["kind"] for p in pats].count(FINDING) == len(findings()) == 14
    assert len({p["name"] for p in pats}) == len(pats), "pattern names are unique"
    assert data["quick"] is True and all(p["quick"] for p in pats)
    for p in pats:
        assert p["source"] and p["why"] and p["measure"]
        assert isinstance(p["holds"], bool)
        assert p["verdict"] in ("holds", "falls short", "undecided")
        assert p["holds"] == (p["verdict"] == "holds")
        if p["kind"] == CALIBRATION:
            assert p["verdict"] != "undecided"
        if p["value"] is not None and p["ci_low"] is not None:
            assert p["ci_low"] <= p["value"] <= p["ci_high"]
    text = json.dumps(pats).lower()
    for word in ("variance", "proficien", "growth", "lower starters", "summer", "teacher"):
        assert word in text
    # the exit status says whether every calibration fact holds (findings are outputs)
    assert rc == (0 if all(p["holds"] for p in pats if p["kind"] == CALIBRATION) else 1)


def test_strict_gates_on_the_findings_too():
    from types import SimpleNamespace as NS

    from sim.cli import validation_status
    fact, finding = NS(kind=CALIBRATION), NS(kind=FINDING)
    held = [NS(pattern=fact, holds=True), NS(pattern=finding, holds=False)]
    assert validation_status(held) == 0
    assert validation_status(held, strict=True) == 1
    assert validation_status(held, report_only=True, strict=True) == 0
    short = [NS(pattern=fact, holds=False), NS(pattern=finding, holds=True)]
    assert validation_status(short) == 1 and validation_status(short, report_only=True) == 0


def test_quick_values_are_in_plausible_ranges(quick_json):
    """Real numbers, not placeholders: growth positive and falling with grade, shares
    summing to one, proficiency a share."""
    by = {p["name"]: p for p in quick_json[1]["patterns"]}
    shares = [by[f"variance share {k.replace('_', ' ')} (grade 5)"]["value"]
              for k in F.TARGET_SPLIT]
    assert sum(shares) == pytest.approx(1.0, abs=1e-9)
    g3, g8 = by["growth grade 3 (fall SD)"]["value"], by["growth grade 8 (fall SD)"]["value"]
    assert 0 < g8 < g3 < 3
    assert 0 < by["baseline proficiency, case district"]["value"] < 1
    # the teacher facts: shares, with a target, an interval and a verdict
    rated, turnover = by["share of teachers rated below proficient"], by["annual teacher turnover"]
    assert rated["target"] == 0.03 and turnover["target"] == 0.16
    assert 0 <= rated["value"] < 0.3 and 0.03 < turnover["value"] < 0.4
    for p in (rated, turnover):
        assert p["ci_low"] is not None and p["low"] < p["high"] and isinstance(p["holds"], bool)


def test_absurd_parameter_makes_facts_fall_short_and_exit_1(capsys):
    rc, out, _ = run_cli(["validate", "--quick", "--facts-only", "--json",
                          "--set", "learning.base_rate=0.01"], capsys)
    pats = {p["name"]: p for p in json.loads(out)["patterns"]}
    assert rc == 1
    growth = [pats[f"growth grade {g} (fall SD)"] for g in range(3, 9)]
    assert all(p["value"] < 0.3 for p in growth), growth
    # quick judging (interval overlaps the band, 2 replicates) is lenient: most still fail
    assert sum(not p["holds"] for p in growth) >= 3, growth


def test_report_only_exits_0_when_patterns_fall_short(capsys):
    rc, out, _ = run_cli(["validate", "--quick", "--facts-only", "--report-only",
                          "--set", "learning.base_rate=0.01"], capsys)
    assert rc == 0
    assert "falls short" in out and "calibration facts hold" in out


@pytest.mark.parametrize("argv, words", [
    (["validate", "--quick", "--set", "arms.0.floor=1"], ["--set", "validation sets"]),
    (["validate", "--quick", "--parameters", "no/such.toml"], ["no/such.toml", "not found"]),
    (["calibrate"], ["scenario file is needed"]),
    (["calibrate", "--fit", "--quick", "--set", "learning.no_such=1"], ["no_such"]),
])
def test_bad_input_exits_2_with_one_message(argv, words, capsys):
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2 and "Traceback" not in err
    for w in words:
        assert w in err


def test_fact_outcomes_do_not_depend_on_workers():
    params, s1 = ParameterSet.load(), Settings.make(True, 2, workers=1)
    a = fact_outcomes(fact_runs(params, s1), True)
    b = fact_outcomes(fact_runs(params, Settings.make(True, 2, workers=2)), True)
    assert [o.as_dict() for o in a] == [o.as_dict() for o in b]


# --- judging and measuring ------------------------------------------------------------------
def test_judging_rules():
    fact = Pattern.around("x", CALIBRATION, "s", 1.0, 0.1, "u", "m", "w")
    assert judge(fact, 1.05, 0.5, 1.6) and not judge(fact, 1.2, 1.15, 1.25)
    assert judge(fact, 1.2, 1.05, 1.3, quick=True)  # quick: the interval overlaps the band
    find = Pattern.above("y", FINDING, "s", 0.0, "u", "m", "w")
    assert judge(find, 0.2, 0.05, 0.35) and not judge(find, 0.2, -0.01, 0.41)
    assert not judge(find, 0.2, -0.01, 0.41, quick=True)  # findings: the interval, always
    assert not judge(find, math.nan, math.nan, math.nan)
    # three states for findings, two for facts (whose exit status is unchanged)
    assert verdict(find, 0.2, 0.05, 0.35) == "holds"
    assert verdict(find, 0.2, -0.01, 0.41) == "undecided"  # straddles 0: cannot tell
    assert verdict(find, -0.2, -0.35, -0.05) == "falls short"
    assert verdict(find, 0.2, math.nan, math.nan) == "undecided"  # one replicate
    rand = Pattern.around("z", FINDING, "s", 3.0, 3.0, "u", "m", "w")
    assert verdict(rand, 2.1, 1.5, 2.7) == "holds" and verdict(rand, 7, 6.5, 7.5) == \
        "falls short" and verdict(rand, 5.5, 4.0, 7.0) == "undecided"
    assert verdict(fact, 1.2, 1.15, 1.25) == "falls short"
    assert verdict(fact, 1.2, 1.05, 1.3, quick=True) == "holds"
    assert fact.loss(1.2) == pytest.approx(4.0) and find.loss(-0.1) == pytest.approx(1.0)


def _synthetic_year(rng, teacher_sd=0.15, schools=30, lines=4, n=25, grades=range(3, 9)):
    rows = []
    t = 0
    for g in grades:
        for s in range(schools):
            for _ in range(lines):
                effect = rng.normal(0, teacher_sd)
                fall = rng.normal(200, 10, n)
                growth = 0.6 - 0.01 * (fall - 200) + effect + rng.normal(0, 0.3, n)
                rows.append(pd.DataFrame({"year": 1, "grade": g, "school": s, "teacher": t,
                                          "fall_score": fall, "growth_sd": growth}))
                t += 1
    return pd.concat(rows, ignore_index=True)


def test_teacher_effect_sd_recovers_a_known_spread():
    rng = np.random.default_rng(3)
    assert F.teacher_effect_sd(_synthetic_year(rng, 0.15)) == pytest.approx(0.15, abs=0.02)
    assert F.teacher_effect_sd(_synthetic_year(rng, 0.0)) < 0.04


def test_teacher_facts_read_ratings_and_exits_of_the_teacher_rows():
    ratings = ["effective"] * 90 + ["developing"] * 6 + ["ineffective"] * 2 + \
        ["highly effective"] * 2
    rows = pd.DataFrame({"replicate": np.repeat([0, 1], 50), "rating": ratings,
                         "exited": np.arange(100) % 5 == 0})
    rated, turnover = F.teacher_facts()
    assert rated.table == turnover.table == "teacher_years"
    assert "rated" in rated.pattern.name + rated.pattern.measure
    assert "turnover" in turnover.pattern.name + turnover.pattern.measure
    assert rated.pattern.kind == turnover.pattern.kind == CALIBRATION
    assert (rated.pattern.low, rated.pattern.high) == pytest.approx((0.0, 0.06))
    assert (turnover.pattern.low, turnover.pattern.high) == pytest.approx((0.12, 0.20))
    # replicate 0 holds no low ratings, replicate 1 all eight; one in five exits each
    assert rated.values(rows, None) == pytest.approx([0.0, 0.16])
    assert turnover.values(rows, None) == pytest.approx([0.2, 0.2])
    assert math.isnan(F.rated_below_proficient(rows.iloc[:0]))


def test_variance_shares_recover_a_known_split():
    rng = np.random.default_rng(5)
    schools, lines, n = 80, 4, 25
    s = np.repeat(np.arange(schools), lines * n)
    c = np.repeat(np.arange(schools * lines), n)
    v = (np.sqrt(0.2) * rng.standard_normal(schools)[s]
         + np.sqrt(0.18) * rng.standard_normal(schools * lines)[c]
         + np.sqrt(0.62) * rng.standard_normal(s.size))
    rows = pd.DataFrame({"year": 1, "grade": 5, "school": s, "teacher": c, "fall_score": v})
    got = F.variance_shares(rows)
    for k, want in F.TARGET_SPLIT.items():
        assert got[k] == pytest.approx(want, abs=0.05), k


def test_summer_loss_in_rit_equivalent():
    """A loss of half a fall SD is half the NWEA fall SD in RIT; gainers losing more gives a
    positive correlation."""
    gain = np.linspace(5, 15, 50)
    y1 = pd.DataFrame({"student": np.arange(50), "year": 1, "grade": 4, "fall_score": 200.0,
                       "spring_score": 200.0 + gain})
    y2 = pd.DataFrame({"student": np.arange(50), "year": 2, "grade": 5,
                       "fall_score": 200.0 + gain - (4 + 0.2 * gain)})
    rows = pd.concat([y1, y2], ignore_index=True)
    sd = np.full(12, 12.0)
    loss = (4 + 0.2 * gain).mean()
    assert F.summer_loss_rit(rows, sd) == pytest.approx(loss / 12 * F.NWEA_FALL_SD_RIT)
    assert F.gain_loss_correlation(rows) == pytest.approx(1.0)


def test_the_fit_uses_calibration_facts_only_and_the_documented_parameters():
    assert all(f.pattern.kind == CALIBRATION for f in facts())
    doc = (REPO / "docs" / "model.md").read_text(encoding="utf-8")
    table = doc[doc.index("| parameter | value | main lever for |"):]
    table = table[:table.index("\n\n")]
    named = {n.strip(" `") for row in table.splitlines()[2:]
             for n in row.split("|")[1].split(",")}
    assert named == set(FIT_SPACE)


# --- the fit and the parameters file ----------------------------------------------------------
def test_fit_quick_writes_a_parameters_file_the_same_for_the_same_seed(tmp_path, capsys):
    outs = []
    for name in ("a.toml", "b.toml"):
        rc, out, err = run_cli(["calibrate", "--fit", "--quick", "--trials", "2", "--seed",
                                "5", "--out", tmp_path / name], capsys)
        assert rc == 0, err
        assert "before" in out and "after" in out and "pinned" in out + "loose"
        outs.append((tmp_path / name).read_text())
    assert outs[0] == outs[1]
    values = read_parameters(tmp_path / "a.toml")
    fitted = {f"{s}.{k}" for s, t in values.items() for k in t}
    assert fitted == set(FIT_SPACE)
    sc = load_scenario(REPO / "scenarios" / "quick.toml", parameters=tmp_path / "a.toml")
    assert sc.learning.base_rate == values["learning"]["base_rate"]
    assert re.search(r"\d+ trials", outs[0])


def test_scenario_values_win_over_the_parameters_file(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[learning]\nbase_rate = 0.4\n[district]\nmean_offset_sd = -1.2\n")
    sc = load_scenario(REPO / "scenarios" / "michigan_pacing.toml", parameters=p)
    assert sc.learning.base_rate == 0.4  # from the parameters file
    assert sc.district.mean_offset_sd == -0.5  # the scenario file's own value


def test_parameters_file_with_an_unknown_key_is_refused(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[learning]\nbase_rte = 0.4\n")
    with pytest.raises(ScenarioError, match=r"p.toml: learning.base_rte"):
        read_parameters(p)
    p.write_text("[arms]\nfloor = 1\n")
    with pytest.raises(ScenarioError, match="parameters file holds only"):
        read_parameters(p)


def test_update_doc_replaces_only_the_marked_block(tmp_path):
    from sim.validation.validate import DOC_BEGIN, DOC_END, update_doc

    doc = tmp_path / "model.md"
    doc.write_text(f"before\n{DOC_BEGIN}\nold table\n{DOC_END}\nafter\n")
    update_doc(doc, "| new | table |")
    assert doc.read_text() == f"before\n{DOC_BEGIN}\n| new | table |\n{DOC_END}\nafter\n"
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="no block"):
        update_doc(doc, "x")
