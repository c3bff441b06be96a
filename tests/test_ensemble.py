"""Parameter ensembles: the file (read, refused), the robustness columns of a run's summary,
and ``plsim run --ensemble`` end to end on common random numbers."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from sim.analysis.history_matching import Target
from sim.analysis.robustness import add_ensemble_columns, ensemble_interval, same_sign_share
from sim.cli import main
from sim.config.ensemble import read_ensemble
from sim.config.scenario import FITTED_PARAMETERS, ScenarioError, read_parameters
from sim.validation.ensemble import (
    FULL,
    QUICK,
    Plan,
    consistent,
    member_rule,
    search_box,
    targets,
)
from sim.validation.facts import facts
from sim.validation.studies import Settings


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ensemble_members(tmp_path):
    f = _write(tmp_path / "e.toml", '"learning.base_rate" = [0.5, 0.6]\n'
                                    '"traditional.extension_years" = [1, 3]\n'
                                    '[about]\nmethod = "x"\n')
    ens = read_ensemble(f)
    assert ens.size == 2
    assert ens.member(1) == {"learning.base_rate": 0.6, "traditional.extension_years": 3}
    assert ens.member_tables(0) == {"learning": {"base_rate": 0.5},
                                    "traditional": {"extension_years": 1}}


@pytest.mark.parametrize("text, field", [
    ('"learning.nope" = [1.0]\n', "learning.nope"),
    ('"learning.base_rate" = [0.5, 0.6]\n"learning.grade_difficulty" = [0.1]\n',
     "learning.grade_difficulty"),
    ('"learning.base_rate" = [0.5, "x"]\n', "learning.base_rate[1]"),
    ('"traditional.extension_years" = [1.5]\n', "traditional.extension_years[0]"),
    ('"learning.base_rate" = 0.5\n', "learning.base_rate"),
    ('"<b>name</b>" = [1]\n', "<b>name</b>"),
    ("not toml [\n", "not valid TOML"),
    ('[about]\nmethod = "x"\n', "no parameters"),
])
def test_bad_ensemble_file_is_one_clear_message(tmp_path, capsys, text, field):
    f = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ScenarioError, match="bad.toml"):
        read_ensemble(f)
    status = main(["run", "scenarios/quick.toml", "--out", str(tmp_path / "o"),
                   "--ensemble", str(f), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert field in err and "Traceback" not in err and str(f) in err
    assert not (tmp_path / "o").exists()  # refused before anything is run or written


def test_member_out_of_range_names_the_member(tmp_path, capsys):
    f = _write(tmp_path / "e.toml", '"learning.base_rate" = [0.5, -3.0]\n')
    status = main(["run", "scenarios/quick.toml", "--out", str(tmp_path / "o"),
                   "--ensemble", str(f), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "member 2 of 2" in err and "base_rate" in err


def test_ensemble_interval_and_robust_share():
    assert ensemble_interval([0.3, -0.1, 0.2]) == (-0.1, 0.3)  # few members: min-max
    v = np.linspace(-1, 1, 41)  # 41 members: 2.5-97.5 percentiles
    lo, hi = ensemble_interval(v)
    assert lo == pytest.approx(-0.95) and hi == pytest.approx(0.95)
    assert same_sign_share([0.1, 0.2, -0.1, 0.3], 0.05) == 0.75
    assert same_sign_share([0.1, -0.2], -1.0) == 0.5
    assert np.isnan(same_sign_share([0.1], 0.0))


def test_summary_gains_ensemble_columns_beside_the_replicate_interval():
    summary = pd.DataFrame({"arm": ["a", "b"], "year": [1, 1], "start_band": ["all", "all"],
                            "diff_growth_sd": [0.0, -0.1], "diff_growth_sd_lo": [0, -0.2],
                            "diff_growth_sd_hi": [0, 0.0], "diff_proficient": [0.0, 0.02],
                            "diff_proficient_lo": [0, 0.01], "diff_proficient_hi": [0, 0.03]})
    means = pd.DataFrame({"member": [0, 1, 2] * 2, "arm": ["a"] * 3 + ["b"] * 3,
                          "year": 1, "start_band": "all",
                          "diff_growth_sd": [0, 0, 0, -0.2, -0.05, 0.01],
                          "diff_proficient": [0, 0, 0, 0.01, 0.02, 0.03]})
    out = add_ensemble_columns(summary, means)
    cols = list(out.columns)
    assert cols[cols.index("diff_growth_sd_hi") + 1:][:3] == ["ens_low", "ens_high",
                                                             "robust_share"]
    b = out.set_index("arm").loc["b"]
    assert b.ens_low == pytest.approx(-0.2) and b.ens_high == pytest.approx(0.01)
    assert b.robust_share == pytest.approx(2 / 3)
    assert b.proficient_robust_share == 1.0
    assert np.isnan(out.set_index("arm").loc["a", "robust_share"])  # the baseline


def test_targets_are_the_facts_read_at_run_time():
    ts, fs = targets(), facts()
    assert [t.name for t in ts] == [f.pattern.name for f in fs]
    assert all(t.low == f.pattern.low and t.high == f.pattern.high
               for t, f in zip(ts, fs, strict=True))


def test_the_full_plan_scales_its_re_checks_with_the_members_asked_for():
    assert Plan.full(20) == FULL and FULL.waves == (60, 40) and FULL.batch == 25
    big = Plan.full(50)
    assert big.members == 50 and big.batch == 63 and big.batches == 2  # 1.25 x 50, rounded up
    assert FULL.radius == 0.2 and QUICK.radius == 0.2


def test_the_search_box_narrows_around_the_fitted_set_within_the_fits_box():
    box = np.array([[0.0, 1.0], [0.0, 16.0], [-1.6, -0.3]])
    narrow = search_box(box, np.array([0.9, 4.0, -1.0]), 0.2)
    np.testing.assert_allclose(narrow, [[0.7, 1.0], [0.8, 7.2], [-1.26, -0.74]])
    assert search_box(box, np.array([0.5, 8.0, -1.0]), 1.0) is box


def test_a_candidate_is_consistent_when_its_mean_is_within_noise_of_every_band():
    two = Target("two-sided", 0.9, 1.1, 1.0, 0.1)
    one = Target("one-sided", 0.0, math.inf)
    values = np.array([[1.05, 0.2],    # inside both bands
                       [1.15, 0.2],    # 0.05 outside, se 0.05: I = 0.15 / 0.058 = 2.6
                       [1.15, 0.2],    # the same without noise: I = 4.5, ruled out
                       [1.0, -0.3]])   # one-sided: 0.3 below, se 0.05: I = 6
    var = np.array([[0.0, 0.0], [0.05 ** 2, 0.0], [0.0, 0.0], [0.0, 0.05 ** 2]])
    assert consistent([two, one], values, var).tolist() == [True, True, False, False]
    assert not consistent([two, one], np.array([[np.nan, 0.2]]), np.zeros((1, 2)))[0]


def test_quick_members_hold_every_fact_by_the_quick_rule_full_ones_by_implausibility():
    """A quick re-check keeps the candidates whose facts all hold by the quick rule (the
    verdicts the fact outcomes carry), however far a tiny district's mean lies from a
    band; a full one judges the means themselves."""
    two = Target("two-sided", 0.9, 1.1, 1.0, 0.1)
    values = np.array([[1.3], [1.0], [np.nan]])
    holds = np.array([[True], [False], [True]])
    var = np.zeros((3, 1))
    quick, full = Settings.make(True, 2, 1), Settings.for_fit(False, 4, 1)
    assert member_rule(quick, [two], values, holds, var).tolist() == [True, False, False]
    assert member_rule(full, [two], values, holds, var).tolist() == [False, True, False]


def test_run_ensemble_on_common_random_numbers(tmp_path):
    """Known answer: members equal to the fitted set reproduce the run's own paired
    differences exactly (same seeds), so the interval across members is that difference
    and every member keeps its sign; a member with another learning rate moves them."""
    base_rate = read_parameters(FITTED_PARAMETERS).get("learning", {}).get("base_rate", 0.55)
    f = _write(tmp_path / "e.toml", f'"learning.base_rate" = [{base_rate}, {base_rate}, '
                                    f'{base_rate * 1.3}]\n')
    out = tmp_path / "run"
    status = main(["run", "scenarios/quick.toml", "--out", str(out), "--ensemble", str(f),
                   "--replicates", "1", "--quiet"])
    assert status == 0
    s = pd.read_csv(out / "summary.csv")
    for c in ("ens_low", "ens_high", "robust_share", "proficient_robust_share"):
        assert c in s.columns
    e = pd.read_csv(out / "ensemble.csv")
    assert sorted(e.member.unique()) == [0, 1, 2]
    rows = s[(s.arm != "traditional") & (s.start_band == "all students")]
    same = e[(e.member == 0) & (e.start_band == "all students")].set_index(["arm", "year"])
    for r in rows.itertuples():
        assert same.loc[(r.arm, r.year), "diff_growth_sd"] == pytest.approx(r.diff_growth_sd,
                                                                           abs=1e-9)
        assert r.ens_low <= r.diff_growth_sd + 1e-9 <= r.ens_high + 2e-9
        assert r.robust_share in (pytest.approx(2 / 3), 1.0)
    other = e[(e.member == 2)].growth_sd.to_numpy()
    assert not np.allclose(other, e[(e.member == 0)].growth_sd.to_numpy())
    report = (out / "report.html").read_text()
    assert "How robust is each comparison?" in report and "plausible models" in report


def test_ensemble_file_round_trip_with_diagnostics(tmp_path):
    """What calibrate --ensemble writes reads back as the same members; the diagnostics,
    pairs plot and design runs lie beside it."""
    from sim.analysis.history_matching import Emulator, HistoryMatch, Target, Validation, Wave
    from sim.validation.ensemble import EnsembleResult, write_ensemble

    names = ["learning.base_rate", "traditional.extension_years"]
    bounds = np.array([(0.25, 1.2), (1, 4)], float)
    ts = [Target("growth", 0.5, 0.7, 0.6, 0.1), Target("corr", 0.0, np.inf)]
    design = np.array([[0.5, 2], [0.6, 3], [0.7, 1]], float)
    wave = Wave(design, np.array([[0.6, 0.1], [0.65, 0.2], [0.9, -0.1]]),
                [Emulator(bounds), Emulator(bounds)],
                [Validation("growth", 3, 1.0, 1.2, 0.02)], 0.25, 5000,
                output_share=[0.4, 0.7])
    hm = HistoryMatch(names, bounds, ts, np.array([False, True]), [wave], design[:2])
    members = [{"learning.base_rate": 0.5, "traditional.extension_years": 2},
               {"learning.base_rate": 0.6, "traditional.extension_years": 3}]
    result = EnsembleResult(hm, members, np.array([[0.6, 0.1], [0.65, 0.2]]), 3, 2,
                            Settings.for_fit(True, 1, 1), Settings.make(True, 2, 1), 0,
                            "fitted.toml", 12.0, np.array([0.0004, 0.0]))
    out = tmp_path / "ens.toml"
    written = write_ensemble(result, out)
    ens = read_ensemble(out)
    assert ens.size == 2 and ens.member(1) == members[1]
    assert ens.about["members"] == 2 and ens.about["not_ruled_out_share"] == [0.25]
    diag = (tmp_path / "ens.diagnostics.txt").read_text()
    assert "25%" not in diag and "0.25" in diag and "0.5 to 0.6" in diag
    # each fact's one-run replicate SD, the emulators' noise floor: sqrt(0.0004) = 0.02
    assert "One run's replicate SD" in diag and re.search(r"growth\s+0\.6 ± 0\.1\s+0\.02\b", diag)
    assert (tmp_path / "ens.pairs.png").read_bytes()[:4] == b"\x89PNG"
    runs = pd.read_csv(tmp_path / "ens.runs.csv")
    assert len(runs) == 3 and list(runs.columns[:3]) == ["wave", *names]
    assert len(written) == 4 and not list(tmp_path.glob(".*tmp"))


def test_validate_ensemble_reports_each_facts_spread(tmp_path, capsys):
    """Two identical members run on the same seeds: every fact's smallest and largest value
    across members are equal (the spread is the parameters', not the seeds')."""
    from sim.validation.ensemble import ensemble_spread
    from sim.validation.studies import ParameterSet

    base_rate = read_parameters(FITTED_PARAMETERS).get("learning", {}).get("base_rate", 0.55)
    f = _write(tmp_path / "e.toml", f'"learning.base_rate" = [{base_rate}, {base_rate}]\n')
    ts, values, holds = ensemble_spread(read_ensemble(f), ParameterSet.load(),
                                        Settings.make(True, 1, 1), workers=1)
    assert values.shape == (2, len(facts())) and len(ts) == len(facts())
    assert np.allclose(values[0], values[1], equal_nan=True)
    assert np.isfinite(values).mean() > 0.8
    status = main(["validate", "--ensemble", str(f), "--quick", "--replicates", "1",
                   "--report-only", "--workers", "1"])
    text = capsys.readouterr().out
    assert status == 0 and "members hold every calibration fact" in text
    assert all(t.name in text for t in ts)


def test_robustness_against_any_baseline_and_its_sentences():
    """The report's robustness: member differences against the chosen baseline (not only
    the first arm), the count of members keeping the run's own sign, and the words."""
    from sim.analysis.robustness import robustness
    from sim.presentation.narrative import robustness_sentences

    means = pd.DataFrame({
        "member": [0, 0, 0, 1, 1, 1, 2, 2, 2], "arm": ["a", "b", "c"] * 3, "year": 2,
        "start_band": "all students",
        "growth_sd": [0.5, 0.4, 0.6, 0.5, 0.45, 0.7, 0.5, 0.55, 0.65],
        "proficient": [0.3, 0.2, 0.35, 0.3, 0.25, 0.3, 0.3, 0.2, 0.4]})
    contrasts = pd.DataFrame({"arm": ["a", "b"], "start_band": ["all students"] * 2,
                              "growth_sd": [-0.1, -0.2], "proficient": [-0.05, -0.1]})
    r = robustness(means, contrasts, baseline="c", year=2).set_index("arm")
    assert r.loc["b", "growth_sd_agree"] == 3 and r.loc["b", "growth_sd_members"] == 3
    assert r.loc["b", "growth_sd_ens_low"] == pytest.approx(-0.25)  # 0.45 - 0.7
    assert r.loc["a", "proficient_agree"] == 2  # member 1: a - c = 0, not negative
    words = robustness_sentences(r.reset_index(), "C", {"a": "A", "b": "B"},
                                 "smallest to largest")
    assert words[0].startswith("A grows students less than C in 3 of 3 plausible models")
    assert "Robust: every plausible model agrees." in words[0]
    assert any(w.startswith("A keeps fewer students proficient than C in 2 of 3") and
               "Not robust" in w for w in words)
