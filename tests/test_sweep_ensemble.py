"""``plsim sweep SWEEP.toml --ensemble FILE``: the per-sample table's robustness columns, a
known answer (a member equal to the fitted set), resume, and refusals.

The sweep is tiny (2 design samples x 2 replicates of the quick scenario cut to one school
with one classroom per grade and one 90-day year): about a third of a second a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from sim.cli import main
from sim.config.scenario import FITTED_PARAMETERS, read_parameters
from sim.experiments.sweep_ensemble import MEANS_FILE, SUMMARY_FILE, load_members
from sim.experiments.sweeps import load_sweep, read_outcomes, run_sweep

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
OVERRIDES = ["years=1", "district.schools=1", "district.classes_per_grade=1",
             "calendar.burn_in_years=0", "calendar.days=90", "calendar.state_test_day=60",
             "calendar.spring_test_day=85", "assessment.reference_students_per_grade=200"]
ALL = "all students"
KEYS = ["run_id", "arm", "year", "start_band"]
BASE_RATE = read_parameters(FITTED_PARAMETERS)["learning"]["base_rate"]


def sweep_text(outcomes: str = '["growth_sd", "proficient", "switches"]') -> str:
    return (f'name = "tiny"\nbase = "{QUICK.as_posix()}"\noverrides = {json.dumps(OVERRIDES)}\n'
            'design = "latin"\nsamples = 2\nreplicates = 2\nseed = 7\n'
            f"outcomes = {outcomes}\n"
            '[[parameters]]\npath = "arms.test_prep.floor"\nlow = 0.5\nhigh = 4.0\n')


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def outcomes(out: Path) -> pd.DataFrame:
    return read_outcomes(out).sort_values(KEYS).reset_index(drop=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sweep_ensemble")
    return {"sweep": write(d / "sweep.toml", sweep_text()),
            "fitted": write(d / "one.toml", f'"learning.base_rate" = [{BASE_RATE}]\n'),
            "two": write(d / "two.toml",
                         f'"learning.base_rate" = [{BASE_RATE}, {BASE_RATE * 1.3}]\n'),
            "other": write(d / "other.toml",
                           f'"learning.base_rate" = [{BASE_RATE}, {BASE_RATE * 0.8}]\n')}


@pytest.fixture(scope="module")
def plain(files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "out"
    assert run_cli(["sweep", files["sweep"], "--out", out, "--no-report", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def two(files, tmp_path_factory) -> tuple[Path, dict]:
    """The sweep with the two-member ensemble, in process (counts returned)."""
    sweep, base = load_sweep(files["sweep"])
    members = load_members(sweep, files["sweep"], files["two"])
    out = tmp_path_factory.mktemp("two") / "out"
    counts = run_sweep(sweep, base, out, workers=1, source=str(files["sweep"]),
                       ensemble=members)
    return out, counts


def test_a_member_equal_to_the_fitted_set_reproduces_each_difference(files, plain, tmp_path):
    """Known answer: one member, the fitted set itself, on the same seeds: the interval
    across members is the fitted difference itself and the member keeps its sign."""
    out = tmp_path / "out"
    assert run_cli(["sweep", files["sweep"], "--out", out, "--no-report", "--quiet",
                    "--ensemble", files["fitted"]]) == 0
    assert_frame_equal(outcomes(out), outcomes(plain), check_exact=True)  # its own runs
    s = pd.read_csv(out / SUMMARY_FILE)
    for col in ("ens_low", "ens_high", "robust_share", "proficient_ens_low",
                "proficient_ens_high", "proficient_robust_share", "diff_growth_sd_lo"):
        assert col in s.columns
    assert sorted(s["sample"].unique()) == [0, 1]
    assert set(s.arm) == {"traditional", "floor3", "test_prep"}
    rows = s[s.arm != "traditional"]
    assert len(rows) >= 4 and rows.diff_growth_sd.abs().gt(0.001).any()
    for p in ("", "proficient_"):
        diff = rows["diff_growth_sd" if not p else "diff_proficient"]
        assert (rows[f"{p}ens_low"] == diff).all() and (rows[f"{p}ens_high"] == diff).all()
        signed = rows[diff != 0]
        assert len(signed) and (signed[f"{p}robust_share"] == 1).all()
    assert s[s.arm == "traditional"].robust_share.isna().all()
    # The sample's own paired difference equals its replicates' from the sweep's outcomes.
    t = outcomes(plain)
    t = t[(t.start_band == ALL) & (t["sample"] == 1)].set_index(["replicate", "arm"])
    expect = (t.loc[[(r, "floor3") for r in (0, 1)], "growth_sd"].to_numpy()
              - t.loc[[(r, "traditional") for r in (0, 1)], "growth_sd"].to_numpy()).mean()
    row = s[(s["sample"] == 1) & (s.arm == "floor3") & (s.start_band == ALL)]
    assert row.diff_growth_sd.item() == pytest.approx(expect, abs=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ensemble"]["file"] == str(files["fitted"])
    assert manifest["ensemble"]["members"] == 1


def test_two_members_give_an_interval_and_a_share(two, plain):
    out, counts = two
    assert counts == {"runs": 4, "skipped": 0, "ran": 4, "member_runs": 8,
                      "member_skipped": 0, "member_ran": 8}
    assert_frame_equal(outcomes(out), outcomes(plain), check_exact=True)
    s = pd.read_csv(out / SUMMARY_FILE)
    rows = s[(s.arm != "traditional") & s.diff_growth_sd.ne(0)]
    assert (rows.ens_low < rows.ens_high).any()  # the faster-learning member moves them
    assert set(rows.robust_share.dropna()) <= {0.5, 1.0}
    assert ((rows.ens_low <= rows.diff_growth_sd + 1e-6)
            & (rows.diff_growth_sd <= rows.ens_high + 1e-6)).all()  # member 0 is the fit
    e = pd.read_parquet(out / MEANS_FILE)
    assert sorted(e.member.unique()) == [0, 1] and sorted(e["sample"].unique()) == [0, 1]
    m0 = e[e.member == 0].growth_sd.to_numpy()
    assert not np.allclose(m0, e[e.member == 1].growth_sd.to_numpy())


def test_resume_after_a_partial_run_gives_identical_tables(files, two, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(two[0], out)
    for name in ("outcomes/run-000002.parquet", "ensemble/run-000001-m0001.parquet",
                 "ensemble/run-000003-m0000.parquet", SUMMARY_FILE, MEANS_FILE):
        (out / name).unlink()
    sweep, base = load_sweep(files["sweep"])
    members = load_members(sweep, files["sweep"], files["two"])
    counts = run_sweep(sweep, base, out, workers=1, resume=True,
                       source=str(files["sweep"]), ensemble=members)
    assert counts == {"runs": 4, "skipped": 3, "ran": 1, "member_runs": 8,
                      "member_skipped": 6, "member_ran": 2}
    for name in (SUMMARY_FILE, MEANS_FILE, "outcomes/run-000002.parquet",
                 "ensemble/run-000001-m0001.parquet"):
        assert (out / name).read_bytes() == (two[0] / name).read_bytes(), name


@pytest.mark.parametrize("given", ["other", None])
def test_resume_with_another_or_no_ensemble_is_refused(files, two, tmp_path, capsys, given):
    out = tmp_path / "out"
    shutil.copytree(two[0], out)
    before = snapshot(out)
    extra = ["--ensemble", files[given]] if given else []
    status = run_cli(["sweep", files["sweep"], "--out", out, "--resume", "--quiet",
                      "--no-report", *extra])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "cannot resume" in err
    assert ("ensemble.learning.base_rate[1]" if given else "ensemble: recorded") in err
    assert snapshot(out) == before


def test_adding_an_ensemble_on_resume_is_refused(files, plain, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(plain, out)
    status = run_cli(["sweep", files["sweep"], "--out", out, "--resume", "--quiet",
                      "--no-report", "--ensemble", files["two"]])
    err = capsys.readouterr().err
    assert status == 2 and "ensemble: recorded (absent)" in err


@pytest.mark.parametrize("text, needle", [
    ('"learning.no_such" = [1.0]\n', "learning.no_such"),
    ('"learning.base_rate" = [0.5, 0.6]\n"learning.grade_difficulty" = [0.2]\n',
     "one value per member"),
    ('"learning.base_rate" = [-5.0]\n', "member 1 of 1"),
])
def test_bad_ensemble_file_is_one_line_before_any_run(files, tmp_path, capsys, text, needle):
    bad = write(tmp_path / "bad.toml", text)
    out = tmp_path / "out"
    status = run_cli(["sweep", files["sweep"], "--out", out, "--ensemble", bad, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and needle in err
    assert str(bad) in err and not out.exists()


def test_ensemble_needs_the_paired_outcomes_recorded(files, tmp_path, capsys):
    sweep = write(tmp_path / "sweep.toml", sweep_text('["growth_sd", "switches"]'))
    status = run_cli(["sweep", sweep, "--out", tmp_path / "out", "--ensemble",
                      files["two"], "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "outcomes" in err and "proficient" in err
    assert not (tmp_path / "out").exists()
