"""The experiment engine under faults: kill -9, damaged and swapped parts, a second command
on a live folder, resume semantics, workers orphaned by a dead parent, Ctrl-C, a full disk.

Runs are the quick scenario cut to one school and one year (3 arms x 1-2 replicates),
so each command takes seconds; commands that must be killed run as subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from sim.cli import main
from sim.config.scenario import load_scenario
from sim.experiments.executor import resolve_workers
from sim.experiments.folder_lock import hold
from sim.experiments.run_parts import PARTS_DIR, RunParts
from sim.experiments.storage import TABLES

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
SMALL = ["--set", "years=1", "--set", "district.schools=1", "--no-report", "--quiet"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def plsim(*args) -> list[str]:
    return [sys.executable, "-m", "sim.cli", *map(str, args)]


def run_quiet(argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def tables(out: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES}


def assert_same_tables(out: Path, want: Path) -> None:
    got, ref = tables(out), tables(want)
    for t in TABLES:
        assert_frame_equal(got[t], ref[t])
    assert (out / "summary.csv").read_bytes() == (want / "summary.csv").read_bytes()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Uninterrupted runs with 1 and 2 replicates (the references)."""
    base = tmp_path_factory.mktemp("fresh")
    for n in (1, 2):
        assert run_quiet(["run", QUICK, "--out", base / f"r{n}", "--replicates", n, *SMALL]) == 0
    return base


def seals(out: Path) -> list[Path]:
    return sorted((out / PARTS_DIR / ".seals").glob("*.json"))


def start_killable(out: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen(plsim("run", QUICK, "--out", out, *SMALL, *extra), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(condition, seconds: float = 240) -> None:
    end = time.time() + seconds
    while not condition():
        assert time.time() < end, "timed out waiting"
        time.sleep(0.1)


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def resume(out: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(plsim("run", QUICK, "--out", out, *SMALL, "--resume", *extra),
                          env=ENV, capture_output=True, text=True, timeout=600)


# --- kill -9 and damaged parts ------------------------------------------------------------
def test_kill9_then_a_truncated_part_is_redone(fresh, tmp_path):
    out = tmp_path / "a"
    proc = start_killable(out, "--replicates", "2")
    wait_for(lambda: len(seals(out)) >= 2)
    kill_group(proc)
    assert not (out / "manifest.json").exists()
    victim = sorted((out / PARTS_DIR / "student_years").glob("*.parquet"))[0]
    victim.write_bytes(b"")  # truncated, as a crash of the disk might leave it
    done = resume(out)  # without --replicates: the recorded 2
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"part {victim.stem} is damaged" in done.stderr
    assert_same_tables(out, fresh / "r2")


def test_swapped_and_foreign_parts_are_redone(tmp_path, capsys):
    sc = load_scenario(QUICK, ["years=1", "district.schools=1"], replicates=2)
    from sim.experiments.runner import run_to_directory

    out, other = tmp_path / "a", tmp_path / "b"
    run_to_directory(sc, out)
    run_to_directory(sc.model_copy(update={"seed": sc.seed + 1}), other)
    d = out / PARTS_DIR / "student_years"
    a, b = d / "r0000-a000.parquet", d / "r0001-a000.parquet"
    tmp = d / "swap"
    a.rename(tmp), b.rename(a), tmp.rename(b)  # two parts swapped
    for sub in ("school_years", ".seals"):  # a part (and its seal) of another run
        suffix = ".json" if sub == ".seals" else ".parquet"
        shutil.copy(other / PARTS_DIR / sub / f"r0000-a002{suffix}",
                    out / PARTS_DIR / sub / f"r0000-a002{suffix}")
    capsys.readouterr()
    again = run_to_directory(sc, out, resume=True)
    err = capsys.readouterr().err
    assert again.ran == 3, err  # the two swapped parts and the foreign one
    assert err.count("plsim: warning: part") == 3
    assert "foreign" in err and "does not match its checksum" in err
    assert RunParts(out, sc).finished() == {(r, a) for r in range(2) for a in range(3)}


def test_kill9_in_the_final_stage_then_resume(fresh, tmp_path):
    """Killed while the results are moved into place: the staging folder, half the files
    and no manifest are left; the next command cleans up and finishes the run."""
    out = tmp_path / "a"
    code = ("import os, sys, sim.experiments.output as o\n"
            "real = o.os.replace\n"
            "calls = []\n"
            "class Os:\n"
            "    def __getattr__(self, n): return getattr(os, n)\n"
            "    def replace(self, a, b):\n"
            "        calls.append(a); real(a, b)\n"
            "        if len(calls) == 2: os._exit(9)  # as kill -9: no cleanup at all\n"
            "o.os = Os()\n"
            "from sim.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    args = ["run", str(QUICK), "--out", str(out), "--replicates", "1", *SMALL]
    proc = subprocess.run([sys.executable, "-c", code, *args], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr
    assert [p for p in out.iterdir() if p.name.startswith(".staging-")]
    assert not (out / "manifest.json").exists()
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert_same_tables(out, fresh / "r1")


# --- resume semantics -----------------------------------------------------------------
def test_resume_adds_replicates_to_a_finished_run_and_refuses_changes(fresh, tmp_path,
                                                                      capsys):
    out = tmp_path / "a"
    shutil.copytree(fresh / "r1", out)
    assert run_quiet(["run", QUICK, "--out", out, *SMALL, "--resume"]) == 0  # nothing to do
    capsys.readouterr()
    code = run_quiet(["run", QUICK, "--out", out, *SMALL, "--resume", "--seed", "5",
                      "--set", "district.class_size=22"])
    err = capsys.readouterr().err
    assert code == 2
    assert "seed: recorded 11, given 5" in err
    assert "district.class_size: recorded 20, given 22" in err
    assert run_quiet(["run", QUICK, "--out", out, *SMALL, "--resume",
                      "--replicates", "2"]) == 0
    assert_same_tables(out, fresh / "r2")
    assert run_quiet(["run", QUICK, "--out", out, *SMALL, "--resume",
                      "--replicates", "1"]) == 2
    assert "replicates: recorded 2, given 1" in capsys.readouterr().err
    assert_same_tables(out, fresh / "r2")  # refused: nothing changed


# --- one command per folder, nothing left behind ----------------------------------------
def test_a_second_command_on_a_live_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "a"
    with hold(out):
        code = run_quiet(["run", QUICK, "--out", out, "--replicates", "1", *SMALL,
                          "--resume"])
    assert code == 2
    assert f"in use by another plsim command (pid {os.getpid()})" in capsys.readouterr().err
    assert not out.exists()  # the holder created it and left nothing


def test_a_stale_lock_and_staging_folder_are_cleaned(fresh, tmp_path):
    from sim.experiments.runner import run_to_directory

    out = tmp_path / "a"
    run_to_directory(load_scenario(QUICK, ["years=1", "district.schools=1"], replicates=1),
                     out)  # every part finished, then killed before the results were built
    (out / ".plsim.lock").write_text(json.dumps({"pid": 999999}))  # its holder died
    (out / ".staging-0123456789ab").mkdir()
    (out / ".staging-0123456789ab" / "summary.csv").write_text("half")
    (out / ".parts" / "student_years" / ".r0000-a000.parquet.0badc0de.tmp").write_bytes(b"P")
    assert run_quiet(["run", QUICK, "--out", out, "--replicates", "1", *SMALL]) == 2
    assert run_quiet(["run", QUICK, "--out", out, "--replicates", "1", *SMALL,
                      "--resume"]) == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert_same_tables(out, fresh / "r1")


def test_sweep_and_study_parts_are_verified(tmp_path, capsys):
    """Sweeps and optimisations seal their parts the same way: a truncated sweep run or
    candidate is named in a warning and counts as unfinished (so it is run again)."""
    from sim.experiments import optimize, sweeps

    frame = pd.DataFrame({"run_id": [0], "growth_sd": [0.5]})
    for folder in ("outcomes", "candidates"):  # as the commands' prepare makes them
        (tmp_path / folder).mkdir()
    for i in range(3):
        sweeps.write_part(tmp_path, i, frame.assign(run_id=i), "fp")
    sweeps.part_path(tmp_path, 1).write_bytes(b"")
    assert sweeps.finished_runs(tmp_path, "fp") == {0, 2}
    assert "part run-000001 is damaged" in capsys.readouterr().err
    assert sweeps.finished_runs(tmp_path, "another sweep") == set()
    assert capsys.readouterr().err.count("foreign") == 2
    for i in range(2):
        optimize._write_part(tmp_path, i, {"candidate": i, "x": 1.0}, "fp")
    a, b = optimize.part_path(tmp_path, 0), optimize.part_path(tmp_path, 1)
    data = a.read_bytes()
    a.write_bytes(b.read_bytes()), b.write_bytes(data)  # swapped
    assert optimize.read_parts(tmp_path, "candidates", optimize.PART, "fp").empty
    assert capsys.readouterr().err.count("does not match its checksum") == 2


def _children(pid: int) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


@pytest.mark.skipif(not Path("/proc").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="needs /proc and two cores")
def test_pool_workers_exit_when_the_parent_is_killed(tmp_path):
    out = tmp_path / "a"
    # many replicates: the run is still going when the signal comes, even on an idle machine
    proc = start_killable(out, "--replicates", "40", "--workers", "2")
    wait_for(lambda: len(_children(proc.pid)) >= 2)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)  # the parent only, not its process group
    proc.wait()
    end = time.time() + 10
    while time.time() < end and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}/stat").exists()
             and " Z " not in Path(f"/proc/{w}/stat").read_text()]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, "pool workers outlived their parent"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_ctrl_c_with_workers_prints_one_line(tmp_path):
    out = tmp_path / "a"
    # many replicates: the run is still going when the signal comes, even on an idle machine
    proc = start_killable(out, "--replicates", "40", "--workers", "2")
    # the workers started and a run finished: a signal during the pool's forks lands in
    # Python's at-fork hooks, where an exception is ignored (a real Ctrl-C then is lost)
    wait_for(lambda: len(_children(proc.pid)) >= 2 and len(seals(out)) >= 1)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted; finished runs are kept; use --resume" in err


def test_full_disk_prints_one_line(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        proc = subprocess.run(plsim("run", QUICK, "--out", mnt / "a", "--replicates", "2",
                                    *SMALL), env=ENV, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "No space left on device" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_workers_above_the_cores_are_capped(capsys):
    n = os.cpu_count() or 1
    assert resolve_workers(n + 63) == min(n, len(os.sched_getaffinity(0)))
    assert f"--workers {n + 63} is more than" in capsys.readouterr().err


# --- damaged cache entries ----------------------------------------------------------------
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    import dataclasses

    from sim.district import cache

    @dataclasses.dataclass
    class Entry:
        values: np.ndarray

    monkeypatch.setenv("PLSIM_CACHE_DIR", str(tmp_path))
    computed = []

    def compute():
        computed.append(1)
        return Entry(np.arange(1000.0))

    cache.cached_dataclass("test_entry", {"n": 1}, Entry, compute)
    (entry,) = (tmp_path / "test_entry").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated: BadZipFile when read
    got = cache.cached_dataclass("test_entry", {"n": 1}, Entry, compute)
    assert len(computed) == 2 and got.values.sum() == np.arange(1000.0).sum()
    again = cache.cached_dataclass("test_entry", {"n": 1}, Entry, compute)
    assert len(computed) == 2 and again.values[-1] == 999.0  # rebuilt on disk


def test_a_run_killed_before_its_plan_resumes_as_new(tmp_path):
    sc = load_scenario(QUICK, ["years=1", "district.schools=1"], replicates=1)
    out = tmp_path / "a"
    (out / PARTS_DIR / "student_years").mkdir(parents=True)  # folders made, no plan yet
    parts = RunParts.open(out, sc, resume=True)
    assert (out / PARTS_DIR / "plan.json").is_file() and parts.finished() == set()
    (out / "notes.txt").write_text("not a run")
    (out / PARTS_DIR / "plan.json").unlink()
    (out / PARTS_DIR / "student_years" / "r0000-a000.parquet").write_bytes(b"x")
    with pytest.raises(Exception, match="holds no plsim run to resume"):
        RunParts.open(out, sc, resume=True)  # something there that is not ours: kept
    assert (out / PARTS_DIR / "student_years" / "r0000-a000.parquet").read_bytes() == b"x"
