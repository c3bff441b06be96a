"""Sweeps: designs, identical outcomes serially / in a pool / on Dask, resume, CRN, bad input.

Every sweep here is tiny: the quick scenario cut to one school with one
classroom per grade, one 90-day year, no burn-in and a small statewide
reference, so a run takes about a third of a second. One serial sweep (module fixture) is the
reference table the pool, the Dask cluster and the resumed sweeps must equal
exactly.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from sim.cli import main
from sim.config.scenario import ScenarioError
from sim.experiments.sweeps import (
    design_matrix,
    experiments,
    load_sweep,
    prepare,
    read_outcomes,
    run_sweep,
)

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
PLSIM = REPO / ".venv" / "bin" / "plsim"
KEYS = ["run_id", "arm", "year", "start_band"]
ALL = "all students"

OVERRIDES = ["years=1", "district.schools=1", "district.classes_per_grade=1",
             "calendar.burn_in_years=0", "calendar.days=90", "calendar.state_test_day=60",
             "calendar.spring_test_day=85", "assessment.reference_students_per_grade=200"]
FLOOR = """
[[parameters]]
path = "arms.test_prep.floor"
low = 0.5
high = 4.0
"""
WEEKS = """
[[parameters]]
path = "arms.test_prep.test_prep_weeks"
low = 0
high = 8
integer = true
"""
SAMPLES, REPLICATES = 4, 2
RUNS = SAMPLES * REPLICATES


def sweep_text(name: str = "tiny", design: str = "latin", samples: int = SAMPLES,
               replicates: int = REPLICATES, seed: int = 7, crn: bool = True,
               parameters: str = FLOOR + WEEKS, base: str | None = None,
               outcomes: str = '["growth_sd", "proficient", "switches"]') -> str:
    base = base if base is not None else QUICK.as_posix()
    return (f'name = "{name}"\nbase = "{base}"\noverrides = {json.dumps(OVERRIDES)}\n'
            f'design = "{design}"\nsamples = {samples}\nreplicates = {replicates}\n'
            f"seed = {seed}\ncommon_random_numbers = {str(crn).lower()}\n"
            f"outcomes = {outcomes}\n{parameters}")


def write_sweep(folder: Path, filename: str = "sweep.toml", **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(sweep_text(**kwargs))
    return path


def table(out: Path) -> pd.DataFrame:
    """A sweep's outcomes joined to its experiments, in a canonical row order."""
    return read_outcomes(out).sort_values(KEYS).reset_index(drop=True)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert_frame_equal(a, b, check_exact=True)


def parts(out: Path) -> list[Path]:
    """The finished runs' parts: those on disk and sealed with their checksum (``.seals/``)."""
    sealed = (out / "outcomes" / f"{s.stem}.parquet" for s in (out / ".seals").glob("run-*.json"))
    return sorted(p for p in sealed if p.is_file())


def run_cli(argv) -> int:
    """``sim.cli.main`` in process; argparse exits become the status."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def serial(tiny, tmp_path_factory) -> tuple[Path, dict]:
    """The tiny sweep run serially: the reference every other way must equal."""
    sweep, base = load_sweep(tiny)
    out = tmp_path_factory.mktemp("serial") / "out"
    counts = run_sweep(sweep, base, out, workers=1, source=str(tiny))
    return out, counts


# --- the serial reference itself ---------------------------------------------------
def test_serial_sweep_writes_one_part_per_run(serial):
    out, counts = serial
    assert counts == {"runs": RUNS, "skipped": 0, "ran": RUNS}
    assert [p.name for p in parts(out)] == [f"run-{i:06d}.parquet" for i in range(RUNS)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"] == RUNS and manifest["samples"] == SAMPLES
    df = table(out)
    assert sorted(df.run_id.unique()) == list(range(RUNS))
    assert set(df.arm) == {"traditional", "floor3", "test_prep"}
    assert set(df.year) == {1}
    for col in ("growth_sd", "proficient", "switches"):
        assert df[col].notna().all()
    # The varied arm's outcomes move with its parameters: not one table copied over.
    varied = df[(df.arm == "test_prep") & (df.start_band == ALL)]
    assert varied.switches.nunique() > 2


# --- serial, pool and Dask give the same table -------------------------------------
def test_pool_of_two_equals_serial(tiny, serial, tmp_path):
    sweep, base = load_sweep(tiny)
    counts = run_sweep(sweep, base, tmp_path / "out", workers=2, source=str(tiny))
    assert counts == {"runs": RUNS, "skipped": 0, "ran": RUNS}
    assert_same(table(tmp_path / "out"), table(serial[0]))


# --- resume -----------------------------------------------------------------------
def test_resume_in_process_runs_only_missing_parts(tiny, serial, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(serial[0], out)
    lost = [1, 4, 7]
    for i in lost:
        (out / "outcomes" / f"run-{i:06d}.parquet").unlink()
    stray = out / "outcomes" / ".run-000004.parquet.deadbeef.tmp"
    stray.write_bytes(b"PAR1 half a part, then the machine died")
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in parts(out)}
    sweep, base = load_sweep(tiny)
    counts = run_sweep(sweep, base, out, workers=1, resume=True, source=str(tiny))
    assert counts == {"runs": RUNS, "skipped": RUNS - len(lost), "ran": len(lost)}
    assert_same(table(out), table(serial[0]))
    for p in parts(out):  # finished parts are never rewritten
        if p.name in kept:
            assert (p.stat().st_mtime_ns, p.read_bytes()) == kept[p.name]
    # A finished sweep resumes to nothing.
    again = run_sweep(sweep, base, out, workers=1, resume=True, source=str(tiny))
    assert again == {"runs": RUNS, "skipped": RUNS, "ran": 0}


def _live_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies do not count)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def _group_gone(pgid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _live_members(pgid):
            return True
        time.sleep(0.05)
    return False


def test_resume_after_kill_9(tiny, serial, tmp_path, capsys):
    out = tmp_path / "out"
    proc = subprocess.Popen([PLSIM, "sweep", tiny, "--out", out, "--workers", "2", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    pgid = os.getpgid(proc.pid)
    try:
        deadline = time.monotonic() + 120
        while not parts(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, ("the sweep ended before it could be killed: "
                                     f"{proc.stderr.read().decode()}")
        assert parts(out), "no run finished within 120 s"
        assert len(_live_members(pgid)) >= 3  # plsim and its two pool workers
    finally:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert _group_gone(pgid), "pool workers survived kill -9 of their process group"

    survived = parts(out)
    assert 0 < len(survived) < RUNS, "the sweep was not interrupted"
    reference = table(serial[0])
    for p in survived:  # every visible part is a whole run, equal to the uninterrupted one
        part = pd.read_parquet(p)
        run_id = int(p.stem.split("-")[1])
        assert set(part.run_id) == {run_id}
        want = reference[reference.run_id == run_id][part.columns]
        assert_same(part.sort_values(KEYS).reset_index(drop=True),
                    want.reset_index(drop=True))

    capsys.readouterr()
    assert run_cli(["sweep", tiny, "--out", out, "--resume", "--workers", "2"]) == 0
    said = capsys.readouterr().out
    m = re.search(r"(\d+) runs done now, (\d+) already finished, (\d+) in all", said)
    assert m, said
    assert tuple(map(int, m.groups())) == (RUNS - len(survived), len(survived), RUNS)
    assert_same(table(out), reference)


# --- refusing to mix sweeps ---------------------------------------------------------
def test_non_empty_out_without_resume_exits_2(tiny, serial, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(serial[0], out)
    before = snapshot(out)
    assert run_cli(["sweep", tiny, "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--resume" in err and str(out) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_resume_of_a_different_sweep_exits_2(tiny, serial, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(serial[0], out)
    before = snapshot(out)
    other = write_sweep(tmp_path, "other.toml", name="other", seed=8)
    assert run_cli(["sweep", other, "--out", out, "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different sweep" in err and "'tiny'" in err and "other.toml" in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_resume_into_a_folder_without_manifest_exits_2(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run_cli(["sweep", tiny, "--out", out, "--resume", "--quiet"]) == 2
    assert "no sweep manifest" in capsys.readouterr().err
    assert snapshot(out) == {"notes.txt": b"mine"}


def test_out_that_is_a_file_exits_2(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    assert run_cli(["sweep", tiny, "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not a directory" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "not a folder"


# --- bad sweep files --------------------------------------------------------------
def _replace(old: str, new: str, **kwargs):
    def make(folder: Path) -> str:
        text = sweep_text(**kwargs)
        assert old in text, old
        return text.replace(old, new, 1)
    return make


BAD = {
    # name: (sweep text, words the one-line message must contain)
    "unknown arm field": (_replace('"arms.test_prep.floor"', '"arms.test_prep.nonsense"'),
                          ["arms.test_prep.nonsense", "not a scenario field"]),
    "unknown section field": (_replace('"arms.test_prep.floor"', '"district.nope"'),
                              ["district.nope", "not a scenario field"]),
    "unknown arm": (_replace('"arms.test_prep.floor"', '"arms.noarm.floor"'),
                    ["arms.noarm.floor", "noarm"]),
    "reversed bounds": (_replace("low = 0.5\nhigh = 4.0", "low = 4.0\nhigh = 0.5"),
                        ["arms.test_prep.floor", "low (4.0) must be below high (0.5)"]),
    "empty range": (_replace("low = 0.5\nhigh = 4.0", "low = 2.0\nhigh = 2.0"),
                    ["arms.test_prep.floor", "must be below"]),
    "empty values": (_replace("low = 0.5\nhigh = 4.0", "values = []"),
                     ["arms.test_prep.floor", "values must not be empty"]),
    "text for a number": (_replace("low = 0.5", 'low = "a"'),
                          ["parameters.0.low", "valid number", "'a'"]),
    "unknown design": (_replace('design = "latin"', 'design = "factorial"'),
                       ["design", "factorial", "sobol"]),
    "unknown outcome": (_replace('"switches"]', '"happiness"]'),
                        ["happiness", "outcomes", "growth_sd"]),
    "sobol not a power of 2": (lambda d: sweep_text(design="sobol", samples=6),
                               ["sobol", "power of 2", "(got 6)"]),
    "sobol of one sample": (lambda d: sweep_text(design="sobol", samples=1),
                            ["sobol", "at least 2", "(got 1)"]),
    "morris of one trajectory": (lambda d: sweep_text(design="morris", samples=1),
                                 ["morris", "at least 2", "(got 1)"]),
    "varied seed": (lambda d: sweep_text(design="grid", parameters=(
        '\n[[parameters]]\npath = "seed"\nvalues = [1, 2]\n')),
                    ["parameter 'seed'", "sweep's own seed"]),
    "varied replicates": (lambda d: sweep_text(design="grid", parameters=(
        '\n[[parameters]]\npath = "replicates"\nvalues = [1, 2]\n')),
                          ["parameter 'replicates'", "sweep's own replicates"]),
    "value out of range": (_replace("high = 4.0", "high = 99"),
                           ["floor", "less than or equal to 12"]),
    "missing base": (lambda d: sweep_text(base="no_such_base.toml"),
                     ["base: ", "no scenario file", "no_such_base.toml"]),
    "not TOML": (lambda d: 'name = "x"\nthis is not [[ toml\n', ["not valid TOML"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_file_exits_2_naming_file_and_field(case, tmp_path, capsys):
    make, words = BAD[case]
    path = tmp_path / "bad_sweep.toml"
    path.write_text(make(tmp_path))
    out = tmp_path / "out"
    assert run_cli(["sweep", path, "--out", out, "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("plsim: error: ") and "Traceback" not in err
    assert str(path) in err, err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists()
    with pytest.raises(ScenarioError):
        load_sweep(path)


def test_bad_sweep_through_the_installed_script(tmp_path):
    path = tmp_path / "bad_sweep.toml"
    path.write_text(sweep_text().replace('"arms.test_prep.floor"', '"district.nope"'))
    out = tmp_path / "out"
    res = subprocess.run([PLSIM, "sweep", path, "--out", out], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"plsim: error: {path}: parameter 'district.nope': 'nope' is not a scenario field"]
    assert not out.exists()


# --- designs: how many runs each gives --------------------------------------------
THREE = FLOOR + WEEKS + """
[[parameters]]
path = "arms.floor3.floor"
values = [1.0, 2.0, 3.0, 4.0]
"""
D = 3


@pytest.mark.parametrize("design, samples, rows", [
    ("grid", 99, 3 * 3 * 4),          # levels x levels x values; samples ignored
    ("random", 7, 7),
    ("latin", 6, 6),
    ("sobol", 8, 8 * (D + 2)),        # N x (D + 2), no second order
    ("morris", 4, 4 * (D + 1)),       # trajectories x (D + 1)
])
def test_design_run_counts(design, samples, rows, tmp_path):
    replicates = 3
    path = write_sweep(tmp_path, design=design, samples=samples, replicates=replicates,
                       parameters=THREE)
    sweep, base = load_sweep(path)
    out = tmp_path / "out"
    exp = prepare(sweep, base, out, resume=False, source=str(path))  # no runs
    assert not parts(out)
    on_disk = pd.read_parquet(out / "experiments.parquet")
    assert_frame_equal(on_disk, exp)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(exp) == manifest["runs"] == rows * replicates
    assert manifest["samples"] == rows
    assert list(exp.run_id) == list(range(rows * replicates))
    assert (exp.groupby("sample").replicate.apply(sorted)
            == pd.Series([list(range(replicates))] * rows)).all()
    assert (exp.stream_key == exp.replicate).all()  # common random numbers by default
    floor, weeks, other = (exp[p] for p in ("arms.test_prep.floor",
                                            "arms.test_prep.test_prep_weeks",
                                            "arms.floor3.floor"))
    assert floor.between(0.5, 4.0).all() and weeks.between(0, 8).all()
    assert (weeks == weeks.round()).all() and set(other) <= {1.0, 2.0, 3.0, 4.0}
    x = design_matrix(sweep)
    assert x.shape == (rows, D)
    assert np.array_equal(x, design_matrix(sweep))  # reproducible from the seed
    if design == "grid":
        points = set(zip(floor, weeks, other, strict=True))
        assert len(points) == 36
        assert sorted(set(floor)) == [0.5, 2.25, 4.0] and sorted(set(weeks)) == [0, 4, 8]
    if design == "latin":  # one point in each of the N strata of every variable
        for j, (lo, hi) in enumerate(sweep.problem()["bounds"]):
            strata = np.floor((x[:, j] - lo) / (hi - lo) * samples).astype(int)
            assert sorted(strata) == list(range(samples))
    if design == "morris":  # each step of a trajectory moves exactly one variable
        for t in range(samples):
            steps = np.diff(x[t * (D + 1):(t + 1) * (D + 1)], axis=0)
            assert ((steps != 0).sum(axis=1) == 1).all()
        for j, (lo, hi) in enumerate(sweep.problem()["bounds"]):  # on a 4-level grid
            levels = (x[:, j] - lo) / (hi - lo) * 3
            assert np.allclose(levels, np.round(levels))


def test_stream_keys_without_common_random_numbers(tmp_path):
    path = write_sweep(tmp_path, crn=False)
    sweep, _ = load_sweep(path)
    exp = experiments(sweep, design_matrix(sweep))
    assert list(exp.stream_key) == list(exp.run_id) == list(range(RUNS))


# --- common random numbers ----------------------------------------------------------
def _arm_rows(df: pd.DataFrame, run_id: int, arm: str) -> pd.DataFrame:
    cols = ["year", "start_band", "growth_sd", "proficient", "switches", "n_students"]
    return df[(df.run_id == run_id) & (df.arm == arm)][cols].reset_index(drop=True)


def test_common_random_numbers(tmp_path):
    # Samples 0 and 2 set the same floor; sample 1 another. 3 samples x 2 replicates.
    values = '\n[[parameters]]\npath = "arms.test_prep.floor"\nvalues = [1.0, 3.5, 1.0]\n'
    path = write_sweep(tmp_path, design="grid", parameters=values)
    sweep, base = load_sweep(path)
    run_sweep(sweep, base, tmp_path / "crn", workers=1)
    df = table(tmp_path / "crn")
    run = {(int(r.sample), int(r.replicate)): int(r.run_id)
           for r in df[["sample", "replicate", "run_id"]].drop_duplicates().itertuples()}
    assert len(run) == 6
    for rep in (0, 1):
        # the same values and the same replicate: every arm identical
        for arm in ("traditional", "floor3", "test_prep"):
            assert_same(_arm_rows(df, run[0, rep], arm), _arm_rows(df, run[2, rep], arm))
        # arms the varied parameter does not touch: identical across all samples
        for arm in ("traditional", "floor3"):
            for s in (1, 2):
                assert_same(_arm_rows(df, run[0, rep], arm), _arm_rows(df, run[s, rep], arm))
        # the varied arm does move with its floor
        assert not _arm_rows(df, run[0, rep], "test_prep").equals(
            _arm_rows(df, run[1, rep], "test_prep"))
    # replicates are different districts
    assert not _arm_rows(df, run[0, 0], "traditional").equals(
        _arm_rows(df, run[0, 1], "traditional"))

    # Without common random numbers the same values give different draws.
    path = write_sweep(tmp_path, "indep.toml", design="grid", replicates=1, crn=False,
                       parameters=values.replace("3.5, 1.0", "1.0"))
    sweep, base = load_sweep(path)
    run_sweep(sweep, base, tmp_path / "indep", workers=1)
    ind = table(tmp_path / "indep")
    assert set(ind.run_id) == {0, 1}
    assert not _arm_rows(ind, 0, "traditional").equals(_arm_rows(ind, 1, "traditional"))
    # ... and run 0 (stream key 0) is the CRN sweep's replicate 0 of the same values
    assert_same(_arm_rows(ind, 0, "test_prep"), _arm_rows(df, run[0, 0], "test_prep"))


# --- Dask (last: the cluster's scheduler thread lives in this process) ----------------
@pytest.fixture(scope="module")
def dask_cluster(request):
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           silence_logs=logging.ERROR)
    request.addfinalizer(cluster.close)
    return cluster


def test_dask_local_cluster_equals_serial(tiny, serial, dask_cluster, tmp_path):
    from distributed import Client

    sweep, base = load_sweep(tiny)
    counts = run_sweep(sweep, base, tmp_path / "out", scheduler=dask_cluster.scheduler_address,
                       source=str(tiny))
    assert counts == {"runs": RUNS, "skipped": 0, "ran": RUNS}
    assert_same(table(tmp_path / "out"), table(serial[0]))
    with Client(dask_cluster.scheduler_address) as client:  # the runs ran on both workers
        pids = client.run(os.getpid)
        ran_model = client.run(lambda: "sim.district.model" in __import__("sys").modules)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert list(ran_model.values()) == [True, True]


def test_sweeps_record_accountability_outcomes_per_arm_and_year():
    from sim.experiments.sweeps import design_matrix, load_sweep, run_one, scenario_for

    sweep, base = load_sweep("scenarios/sweep_quick.toml")
    scenario = scenario_for(sweep, base, design_matrix(sweep)[0])
    out = run_one(scenario, 0, 0, ["growth_sd", "window_share", "program_active_share",
                                   "teacher_exit_rate", "va_true_corr"])
    everyone = out[out.start_band == "all students"].set_index("arm")
    assert everyone.loc["test_prep", "window_share"] == 1.0  # the arm's own window
    assert everyone.loc["floor3", "window_share"] == 0.0
    assert (everyone.program_active_share == 1.0).all()
    assert everyone.teacher_exit_rate.between(0, 1).all()
    assert everyone.loc["traditional", "va_true_corr"] > 0
    assert out[out.start_band != "all students"].window_share.isna().all()
