"""The ``plsim`` command line: files, manifest, summary, stdout, determinism, interruptions.

One full run of ``scenarios/quick.toml`` through the installed script (module
fixture), a few one-replicate one-year runs in process, and interrupted runs
that reuse one cached simulation so only the writing is exercised.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats

import sim
import sim.experiments.output
import sim.experiments.runner
from sim.cli import main
from sim.config.scenario import load_scenario, validate_scenario

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
PLSIM = REPO / ".venv" / "bin" / "plsim"
TINY = ["--replicates", "1", "--set", "years=1"]

REQUIRED_COLUMNS = ["arm", "replicate", "year", "school", "student", "grade", "start_band",
                    "fall_score", "spring_score", "growth_sd", "state_score", "proficient",
                    "grade_level_share", "mastered_share", "lowest_offset", "switches",
                    "engagement"]
REQUIRED_FIGURES = ["figures/growth_vs_proficiency.png",
                    "figures/growth_vs_proficiency_by_band.png"]
ALL = "all students"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


def run_quiet(argv) -> int:
    """``sim.cli.main`` in process; argparse exits become the status."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


# --- one full quick run through the installed script ------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "results"
    cmd = [str(PLSIM)] if PLSIM.exists() else [sys.executable, "-m", "sim.cli"]
    proc = subprocess.run([*cmd, "run", str(QUICK), "--out", str(out)], capture_output=True,
                          text=True, timeout=300, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def quick_manifest(quick_run):
    return json.loads((quick_run[0] / "manifest.json").read_text())


@pytest.fixture(scope="module")
def quick_rows(quick_run):
    return pd.read_parquet(quick_run[0] / "student_years.parquet")


@pytest.fixture(scope="module")
def quick_summary(quick_run):
    return pd.read_csv(quick_run[0] / "summary.csv")


def test_run_writes_the_files(quick_run, quick_manifest):
    out, proc = quick_run
    assert "Traceback" not in proc.stderr
    files = files_under(out)
    for f in ["manifest.json", "student_years.parquet", "summary.csv", *REQUIRED_FIGURES]:
        assert f in files
    # every file written is listed in the manifest, and nothing else is left behind
    assert sorted([*quick_manifest["files"], "manifest.json"]) == files
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder
    for f in files:
        if f.endswith(".png"):
            data = (out / f).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, f


def test_manifest_checksums_match_the_files(quick_run, quick_manifest):
    out = quick_run[0]
    checked = 0
    for name, digest in quick_manifest["files"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert sha256(out / name) == digest, name
        checked += 1
    assert checked >= 4


def test_manifest_records_scenario_seeds_and_version(quick_run, quick_manifest, quick_rows):
    m = quick_manifest
    assert m["plsim_version"] == sim.__version__
    commit = m["git_commit"]
    head = None
    if shutil.which("git"):
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True)
        head = git.stdout.strip() if git.returncode == 0 else None
    if head:  # available: recorded, marked dirty or not
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit), commit
        assert commit.split("-")[0] == head
    else:
        assert commit is None
    # the resolved scenario (defaults filled in) validates back to the scenario that ran
    assert validate_scenario(m["scenario"]) == load_scenario(QUICK)
    assert m["scenario"]["calendar"]["days"] == 180  # a default, not in quick.toml
    assert m["scenario"]["district"]["schools"] == 2
    assert m["seeds"]["seed"] == 11
    assert sorted(m["seeds"]["replicate_entropy"]) == ["0", "1"]
    assert m["rows"]["student_years"] == len(quick_rows)


def test_student_years_table(quick_rows, quick_manifest):
    rows = quick_rows
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    assert not missing
    labels = [a["label"] for a in quick_manifest["scenario"]["arms"]]
    assert list(rows.arm.cat.categories) == labels
    assert set(rows.arm) == set(labels)
    assert set(rows.replicate) == {0, 1}
    assert set(rows.year) == {1, 2}
    assert set(rows.school) == {0, 1}
    # the same students in every arm of a replicate (common random numbers)
    keys = ["replicate", "year", "student"]
    per_arm = [g[keys].sort_values(keys).to_numpy() for _, g in rows.groupby("arm",
                                                                            observed=True)]
    assert all(np.array_equal(per_arm[0], p) for p in per_arm[1:])
    for c in ["fall_score", "spring_score", "growth_sd", "grade_level_share", "engagement"]:
        assert np.isfinite(rows[c].to_numpy(float)).all(), c
    for c in ["grade_level_share", "mastered_share", "engagement"]:
        assert rows[c].between(0, 1).all(), c
    assert (rows.switches >= 0).all()
    tested = rows.grade.isin(quick_manifest["scenario"]["assessment"]["tested_grades"])
    assert rows.proficient[tested].notna().all()
    assert rows.proficient[~tested].isna().all()
    assert rows.state_score[tested].notna().all()


def test_summary_has_every_arm_and_year(quick_summary, quick_manifest):
    s = quick_summary
    labels = [a["label"] for a in quick_manifest["scenario"]["arms"]]
    for col in ["arm", "year", "start_band", "growth_sd", "growth_sd_lo", "growth_sd_hi",
                "proficient", "proficient_lo", "proficient_hi", "diff_growth_sd",
                "diff_proficient"]:
        assert col in s.columns
    cells = set(zip(s.arm, s.year, s.start_band, strict=True))
    bands = set(s.start_band) - {ALL}
    assert len(bands) >= 2
    for arm in labels:
        for year in (1, 2):
            assert (arm, year, ALL) in cells
            for band in bands:
                assert (arm, year, band) in cells
    assert len(s) == len(cells)  # one row per cell


def test_paired_difference_of_first_arm_is_zero(quick_summary):
    s = quick_summary
    first = s[s.arm == "traditional"]
    assert len(first) >= 2
    for m in ["growth_sd", "proficient"]:
        have = first[first[m].notna()]
        assert len(have) >= 2
        for c in [f"diff_{m}", f"diff_{m}_lo", f"diff_{m}_hi"]:
            assert (have[c] == 0).all(), c
    others = s[(s.arm != "traditional") & (s.start_band == ALL)]
    assert (others.diff_growth_sd != 0).all()  # the others do differ


def test_summary_agrees_with_student_years(quick_rows, quick_summary, quick_manifest):
    """Means, 95% t-intervals across replicates and paired differences, recomputed."""
    prog = quick_rows[quick_rows.grade.isin(quick_manifest["scenario"]["district"]
                                            ["program_grades"])].copy()
    prog["proficient"] = prog["proficient"].astype(float)
    reps = prog.groupby(["arm", "year", "replicate"], observed=True)[
        ["growth_sd", "proficient"]].mean()
    s = quick_summary[quick_summary.start_band == ALL].set_index(["arm", "year"])
    t = stats.t.ppf(0.975, 1)  # two replicates
    for (arm, year), g in reps.groupby(level=["arm", "year"]):
        row = s.loc[(arm, year)]
        base = reps.loc[("traditional", year)]
        for m in ["growth_sd", "proficient"]:
            x = g[m].to_numpy()
            assert row[m] == pytest.approx(x.mean(), abs=1e-5)
            half = t * x.std(ddof=1) / np.sqrt(2)
            lo, hi = x.mean() - half, x.mean() + half
            if m == "proficient":  # a share: the t-interval on the logit scale, inside 0-1
                p = x.mean()
                z = np.log(p / (1 - p)) + np.array([-1, 1]) * half / (p * (1 - p))
                lo, hi = 1 / (1 + np.exp(-z))
                assert 0 < lo < p < hi < 1
            assert row[f"{m}_lo"] == pytest.approx(lo, abs=1e-5)
            assert row[f"{m}_hi"] == pytest.approx(hi, abs=1e-5)
            d = x - base[m].to_numpy()
            assert row[f"diff_{m}"] == pytest.approx(d.mean(), abs=1e-5)
            dhalf = t * d.std(ddof=1) / np.sqrt(2)
            assert row[f"diff_{m}_lo"] == pytest.approx(d.mean() - dhalf, abs=1e-5)


def test_stdout_summary_table(quick_run, quick_summary):
    stdout = quick_run[1].stdout
    for label in ["traditional", "floor3", "test_prep"]:
        assert label in stdout
    assert "Year 2" in stdout
    for band in set(quick_summary.start_band):
        assert f"-- {band} --" in stdout
    row = quick_summary[(quick_summary.year == 2) & (quick_summary.start_band == ALL)
                        & (quick_summary.arm == "floor3")].iloc[0]
    line = next(ln for ln in stdout.splitlines() if ln.startswith("floor3"))
    # the table shows the summary's numbers (summary.csv keeps 6 digits: allow its rounding)
    assert any(f"{row.growth_sd + e:.2f}" in line for e in (-1e-5, 0, 1e-5)), line
    assert any(f"{100 * (row.proficient + e):.1f}" in line for e in (-1e-6, 0, 1e-6)), line
    assert "Wrote" in stdout and "manifest.json" in stdout


# --- small runs in process: overrides, determinism, workers -----------------------------
SMALL = [*TINY, "--set", "district.schools=3", "--quiet"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Runs of the quick scenario, one replicate of one year; cached by arguments."""
    cache = {}
    base = tmp_path_factory.mktemp("small")

    def get(*extra: str) -> Path:
        if extra not in cache:
            out = base / f"run{len(cache)}"
            assert run_quiet(["run", QUICK, "--out", out, *SMALL, *extra]) == 0
            cache[extra] = out
        return cache[extra]

    return get


def read_rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "student_years.parquet")


def test_options_are_reflected_in_the_manifest(small_run):
    out = small_run("--seed", "4242")
    m = json.loads((out / "manifest.json").read_text())
    sc = m["scenario"]
    assert sc["seed"] == 4242 and m["seeds"]["seed"] == 4242
    assert sc["replicates"] == 1 and list(m["seeds"]["replicate_entropy"]) == ["0"]
    assert sc["years"] == 1
    assert sc["district"]["schools"] == 3
    assert sc["district"]["class_size"] == 20  # untouched values stay
    rows = read_rows(out)
    assert set(rows.replicate) == {0}
    assert set(rows.year) == {1}
    assert set(rows.school) == {0, 1, 2}
    for name, digest in m["files"].items():
        assert sha256(out / name) == digest


def test_same_seed_gives_the_same_table(small_run, tmp_path):
    first = small_run("--seed", "4242")
    again = tmp_path / "again"
    assert run_quiet(["run", QUICK, "--out", again, *SMALL, "--seed", "4242"]) == 0
    assert_frame_equal(read_rows(first), read_rows(again))
    assert (first / "summary.csv").read_bytes() == (again / "summary.csv").read_bytes()


def test_another_seed_gives_another_table(small_run):
    a, b = read_rows(small_run("--seed", "4242")), read_rows(small_run("--seed", "4243"))
    with pytest.raises(AssertionError):
        assert_frame_equal(a, b)
    assert len(a) == len(b)  # same design, different draws
    assert (a.fall_score.to_numpy() != b.fall_score.to_numpy()).mean() > 0.5


def test_two_workers_give_the_same_table(small_run):
    one = small_run("--seed", "4242")
    two = small_run("--seed", "4242", "--workers", "2")
    assert_frame_equal(read_rows(one), read_rows(two))
    assert (one / "summary.csv").read_bytes() == (two / "summary.csv").read_bytes()


# --- interrupted runs -------------------------------------------------------------------
SMALLEST = [*TINY, "--set", "district.schools=1", "--quiet"]  # 3 arms x 1 replicate x 1 year


@pytest.fixture(scope="module")
def cached_arms():
    """One real simulation of each arm of the smallest scenario, reused: these tests are
    about writing, so ``run_arm`` hands out copies of these tables."""
    sc = load_scenario(QUICK, ["years=1", "district.schools=1"], replicates=1)
    return {(a, 0): sim.experiments.runner.run_arm(sc, a, 0) for a in range(len(sc.arms))}


@pytest.fixture(scope="module")
def uninterrupted(cached_arms, tmp_path_factory):
    """The smallest scenario's results, written without interruption."""
    out = tmp_path_factory.mktemp("uninterrupted") / "results"
    with pytest.MonkeyPatch.context() as mp:
        _use_cached(mp, cached_arms)
        assert run_quiet(["run", QUICK, "--out", out, *SMALLEST]) == 0
    return out


def _use_cached(monkeypatch, cached_arms):
    def cached(scenario, arm_index, replicate, reference=None):
        return {k: v.copy() for k, v in cached_arms[(arm_index, replicate)].items()}

    monkeypatch.setattr(sim.experiments.runner, "run_arm", cached)


class Interrupt(Exception):
    pass


def _raise_on_call(n: int, real, exc, seen: list):
    """Wrap ``real`` to raise ``exc`` on its n-th call (1-based), noting the staged files."""
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            seen.append(True)
            raise exc()
        return real(*args, **kwargs)

    return wrapper


class _OsShim:
    """``os`` with a replace that fails on its n-th call (sim.experiments.output moves
    files with it)."""

    def __init__(self, n, exc, seen):
        self.replace = _raise_on_call(n, os.replace, exc, seen)

    def __getattr__(self, name):
        return getattr(os, name)


POINTS = {
    # where the interruption strikes: sim.experiments.output attribute -> which call
    "summary": ("summary_of", 1),  # nothing staged yet
    "draw_all": ("draw_all", 1),  # parquet and csv staged, figures not
    "manifest": ("_manifest", 1),  # everything staged but the manifest
    "second_move": ("os", 2),  # parquet already moved into place
}


def _interrupt(monkeypatch, cached_arms, point, exc):
    seen: list = []
    _use_cached(monkeypatch, cached_arms)
    attr, n = POINTS[point]
    if attr == "os":
        monkeypatch.setattr(sim.experiments.output, "os", _OsShim(n, exc, seen))
    else:
        monkeypatch.setattr(sim.experiments.output, attr,
                            _raise_on_call(n, getattr(sim.experiments.output, attr), exc, seen))
    return seen


def _assert_not_complete(out: Path) -> None:
    assert not (out / "manifest.json").exists()
    staging = sim.experiments.output.STAGING_PREFIX
    assert not [p for p in out.iterdir() if p.name.startswith(staging)]


def _assert_same_results(out: Path, want: Path) -> None:
    """The tables and summaries of ``out`` are those of ``want``; its manifest vouches."""
    m = json.loads((out / "manifest.json").read_text())
    assert files_under(out) == sorted([*m["files"], "manifest.json"])  # parts removed
    for name, digest in m["files"].items():
        assert sha256(out / name) == digest
    for t in ("student_years", "teacher_years", "school_years"):
        assert_frame_equal(pd.read_parquet(out / f"{t}.parquet"),
                           pd.read_parquet(want / f"{t}.parquet"))
    for f in ("summary.csv", "teacher_summary.csv", "school_summary.csv"):
        assert (out / f).read_bytes() == (want / f).read_bytes(), f


@pytest.mark.parametrize("point", list(POINTS))
def test_interrupted_write_keeps_the_parts_and_resumes(point, monkeypatch, cached_arms,
                                                       uninterrupted, tmp_path, capsys):
    seen = _interrupt(monkeypatch, cached_arms, point, KeyboardInterrupt)
    out = tmp_path / "results"
    code = run_quiet(["run", QUICK, "--out", out, *SMALLEST])
    assert seen, "the interruption never happened"
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    _assert_not_complete(out)
    if point != "second_move":  # before anything is moved into place: only the parts
        assert os.listdir(out) == [".parts"]
    monkeypatch.undo()

    def no_rerun(*args):
        raise AssertionError("a finished arm x replicate ran again")

    monkeypatch.setattr(sim.experiments.runner, "run_arm", no_rerun)  # every part is done
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST, "--resume"]) == 0
    _assert_same_results(out, uninterrupted)


@pytest.mark.parametrize("point", ["draw_all", "second_move"])
def test_failed_write_leaves_no_results(point, monkeypatch, cached_arms, tmp_path):
    """A crash (say, a full disk) while writing: the error propagates, nothing looks done."""
    _interrupt(monkeypatch, cached_arms, point, Interrupt)
    out = tmp_path / "results"
    with pytest.raises(Interrupt):
        main(["run", str(QUICK), "--out", str(out), *SMALLEST])
    _assert_not_complete(out)
    if point == "draw_all":
        assert files_under(out) == [p.relative_to(out).as_posix()
                                    for p in sorted((out / ".parts").rglob("*.*")) if p.is_file()]


def test_interrupted_simulation_keeps_finished_runs(monkeypatch, cached_arms, uninterrupted,
                                                     tmp_path, capsys):
    seen: list = []
    _use_cached(monkeypatch, cached_arms)
    monkeypatch.setattr(sim.experiments.runner, "run_arm",
                        _raise_on_call(2, sim.experiments.runner.run_arm, KeyboardInterrupt,
                                       seen))
    out = tmp_path / "results"
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST]) == 130
    assert seen
    assert "finished runs are kept; use --resume" in capsys.readouterr().err
    assert os.listdir(out) == [".parts"]  # nothing that looks like results
    parts = sorted(p.name for p in (out / ".parts" / "school_years").iterdir())
    assert parts == ["r0000-a000.parquet"]  # the first arm finished, the second did not
    monkeypatch.undo()
    ran: list = []
    _use_cached(monkeypatch, cached_arms)
    real = sim.experiments.runner.run_arm
    monkeypatch.setattr(sim.experiments.runner, "run_arm",
                        lambda sc, a, r, ref=None: ran.append((r, a)) or real(sc, a, r, ref))
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST, "--resume"]) == 0
    assert ran == [(0, 1), (0, 2)]  # only the unfinished arms ran again
    _assert_same_results(out, uninterrupted)


def test_rerun_without_resume_is_refused(uninterrupted, tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(uninterrupted, out)
    before = {f: sha256(out / f) for f in files_under(out)}
    capsys.readouterr()
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--resume" in err and str(out) in err
    assert {f: sha256(out / f) for f in files_under(out)} == before
    # resuming a finished run of the same scenario: nothing to do, nothing touched
    assert run_quiet(["run", QUICK, "--out", out, *TINY, "--set", "district.schools=1",
                      "--resume"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {f: sha256(out / f) for f in files_under(out)} == before
    # ... of another scenario: refused, naming the difference, nothing touched
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST, "--seed", "5", "--resume"]) == 2
    assert "seed: recorded 11, given 5" in capsys.readouterr().err
    assert {f: sha256(out / f) for f in files_under(out)} == before


def test_non_empty_out_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST]) == 2
    assert "not empty" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"]
    assert run_quiet(["run", QUICK, "--out", out, *SMALLEST, "--resume"]) == 2
    assert "no plsim run to resume" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"]


def test_every_command_of_the_grammar_has_one_handler():
    from sim.cli import HANDLERS
    from sim.cli_grammar import COMMANDS, build_parser

    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names)) == 15
    assert set(HANDLERS) == set(names)
    choices = build_parser()._subparsers._group_actions[0].choices
    assert list(choices) == names
    # the shared options are declared once and reach every command that takes them
    for name in ("run", "sweep", "optimize"):
        opts = {o for a in choices[name]._actions for o in a.option_strings}
        assert {"--out", "--workers", "--scheduler", "--resume", "--quiet"} <= opts, name
    for name in ("run", "check", "calibrate", "validate"):
        assert "--set" in {o for a in choices[name]._actions for o in a.option_strings}, name
