"""Hostile input is data (issue 25, items 6 and 7): absurd files and values get status 2
and one message within seconds, never a traceback, a hang or an unbounded read; a run too
large for this machine is refused before anything is allocated; names are never markup,
paths or TOML text."""

from __future__ import annotations

import json
import os
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import tomli_w

from sim.cli import main
from sim.config.scenario import MAX_ARMS, MAX_DEPTH, MAX_FILE_BYTES, ScenarioError, load_scenario
from sim.experiments import resources

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
QUICK_TEXT = QUICK.read_text(encoding="utf-8")
BIG = "9" * 5000
HUGE_DISTRICT = ["--set", "district.schools=2000", "--set", "district.classes_per_grade=50",
                 "--set", "district.class_size=200"]  # 180,000,000 students


@pytest.fixture
def cli(capsys):
    """``sim.cli.main(argv)`` in process -> (status, stdout, stderr, seconds)."""

    def call(argv):
        capsys.readouterr()
        start = time.perf_counter()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err, time.perf_counter() - start

    return call


def _deep(tmp: Path) -> Path:
    p = tmp / "deep.toml"
    p.write_text("x = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n")
    return p


def _bigint(tmp: Path) -> Path:
    p = tmp / "bigint.toml"
    p.write_text(QUICK_TEXT.replace("seed = 11", f"seed = {BIG}"))
    return p


def _fifo(tmp: Path) -> Path:
    p = tmp / "pipe.toml"
    os.mkfifo(p)  # no writer: reading it would block forever
    return p


def _huge(tmp: Path) -> Path:
    p = tmp / "huge.toml"
    with open(p, "wb") as f:  # sparse: no disk used
        f.truncate(3 * 2**30)
    return p


def _arms(tmp: Path) -> Path:
    p = tmp / "arms.toml"
    p.write_text('name = "many"\n' + "".join(f'[[arms]]\nlabel = "a{i}"\n' for i in range(100_000)))
    return p


def _directory(tmp: Path) -> Path:
    (tmp / "adir.toml").mkdir()
    return tmp / "adir.toml"


# (id, argv after "check" given tmp_path, words the message must hold)
CASES = [
    ("inline tables 1,000 deep", lambda t: [_deep(t)], ["nested too deeply"]),
    ("5,000-digit integer in the file", lambda t: [_bigint(t)], ["line 4", "4,300 digits"]),
    ("5,000-digit integer in --set", lambda t: [QUICK, "--set", f"seed={BIG}"],
     ["--set seed", "4,300 digits"]),
    ("--set with 2,000 '['", lambda t: [QUICK, "--set", "x=" + "[" * 2000],
     ["--set x", "nested too deeply"]),
    ("--set path of 5,000 parts", lambda t: [QUICK, "--set", "a." * 5000 + "b=1"],
     [f"at most {MAX_DEPTH}"]),
    ("/dev/zero", lambda t: ["/dev/zero"], ["character device, not a regular file"]),
    ("a FIFO", lambda t: [_fifo(t)], ["FIFO", "not a regular file"]),
    ("a directory", lambda t: [_directory(t)], ["a directory, not a regular file"]),
    ("a 3 GB file", lambda t: [_huge(t)], ["3,221,225,472 bytes", f"{MAX_FILE_BYTES:,}"]),
    ("100,000 arms", lambda t: [_arms(t)], ["arms", f"at most {MAX_ARMS}"]),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_or_value_is_refused_quickly(cli, tmp_path, make, words):
    code, out, err, seconds = cli(["check", *make(tmp_path)])
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("plsim: error: ")
    assert len(err.strip().splitlines()) == 1, err
    assert len(err) < 400, f"the message quotes the input back whole: {len(err)} chars"
    for w in words:
        assert w in err, err
    assert seconds < 20, f"{seconds:.1f} s"


def test_a_file_just_under_the_limit_is_read(tmp_path):
    """The limit refuses size, not content: a scenario padded with a comment to the limit
    still loads."""
    p = tmp_path / "padded.toml"
    text = QUICK_TEXT + "#"
    p.write_text(text + "x" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n")
    assert p.stat().st_size == MAX_FILE_BYTES
    assert load_scenario(p).name == "quick"


def test_repeated_labels_among_many_arms_are_named(tmp_path):
    p = tmp_path / "dupes.toml"
    arms = "".join(f'[[arms]]\nlabel = "a{i % (MAX_ARMS // 2)}"\n' for i in range(MAX_ARMS))
    p.write_text('name = "dupes"\n' + arms)
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match="repeated: a0, a1, a10, a100"):
        load_scenario(p)
    assert time.perf_counter() - start < 5


# --- memory and time before a run --------------------------------------------------------
def test_a_district_of_180_million_students_is_refused_before_allocating(cli, tmp_path):
    out = tmp_path / "big"
    code, stdout, err, seconds = cli(["run", QUICK, "--out", out, *HUGE_DISTRICT])
    assert code == 2 and "Traceback" not in err
    assert "180,000,000 students" in err and " GB " in err and "available" in err
    assert "--ignore-memory-check" in err
    assert seconds < 5 and not out.exists()


def test_check_prints_the_estimate_and_warns_when_too_large(cli):
    code, out, err, _ = cli(["check", QUICK])
    assert code == 0 and "memory: about" in out and "per worker" in out and "time: about" in out
    code, out, err, _ = cli(["check", QUICK, *HUGE_DISTRICT])
    assert code == 0 and "will refuse it" in out


def test_the_check_can_be_overridden_and_refuses_what_does_not_fit(monkeypatch):
    sc = load_scenario(QUICK)
    monkeypatch.setattr(resources, "available_bytes", lambda: 100e6)  # 100 MB free
    with pytest.raises(ScenarioError, match=r"needs about 4\d\d MB .* has 100 MB available"):
        resources.check_memory(sc, workers=1, source="q")
    assert resources.check_memory(sc, workers=1, ignore=True).in_all > 100e6


def test_the_estimate_matches_measured_peaks():
    """Peak RSS measured with /usr/bin/time around `plsim run --no-report` (serial; MB):
    the estimate is within 0-25% over, never more than 5% under (docs/performance.md)."""
    measured = [([], 432), (["district.schools=30", "years=1"], 486),
                (["district.schools=10", "curriculum.units_per_grade=12",
                  "curriculum.skills_per_unit=20", "years=1"], 703)]
    for sets, peak_mb in measured:
        sc = load_scenario(QUICK, sets, replicates=None if not sets else 1)
        est = resources.estimate(sc, workers=1)
        ratio = est.in_all / 1e6 / peak_mb
        assert 0.95 < ratio < 1.25, (sets, est.in_all / 1e6, peak_mb)


def test_workers_add_their_own_pages_not_a_second_interpreter():
    sc = load_scenario(QUICK)
    one, two = resources.estimate(sc, 1), resources.estimate(sc, 2)
    assert two.workers == 2 and two.per_worker < one.per_worker
    assert one.in_all < two.in_all < 2 * one.in_all
    tasks, cores = len(sc.arms) * sc.replicates, len(os.sched_getaffinity(0))
    assert resources.estimate(sc, 64).workers == min(tasks, cores)  # as the executor caps


# --- names are data ------------------------------------------------------------------------
def test_a_name_that_is_bad_tex_draws_as_plain_text(tmp_path):
    from sim.experiments.sensitivity import indices_figure

    result = pd.DataFrame({"outcome": ["proficient"] * 2, "parameter": ["$\\foo$", "b$x$"],
                           "S1": [0.1, 0.2], "S1_conf": [0.01, 0.02], "ST": [0.2, 0.3],
                           "ST_conf": [0.01, 0.02]})
    path = indices_figure(result, "sobol", "$\\foo$: sobol indices", tmp_path / "i.png")
    assert path.stat().st_size > 1000


def _fake_run(d: Path) -> Path:
    d.mkdir()
    files = {"student_years.parquet": "x", "summary.csv": "x", "figures/a.png": "x"}
    (d / "manifest.json").write_text(json.dumps({"scenario": {}, "files": files}))
    return d


@pytest.mark.parametrize("target", ["manifest.json", "summary.csv", "figures/a.png",
                                    "new.html", "../run/student_years.parquet", "."])
def test_report_never_writes_over_the_runs_own_files(cli, tmp_path, target):
    run = _fake_run(tmp_path / "run")
    (run / "figures").mkdir()
    before = (run / "manifest.json").read_bytes()
    code, out, err, _ = cli(["report", run, "--out", run / target])
    assert code == 2 and "Traceback" not in err, err
    assert "run's own files" in err or "is a directory" in err
    assert (run / "manifest.json").read_bytes() == before


def test_report_baseline_must_be_a_label_before_it_names_a_file(cli, tmp_path):
    run = _fake_run(tmp_path / "run")
    code, out, err, _ = cli(["report", run, "--baseline", "../../x"])
    assert code == 2 and "not an arm label" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_fitted_parameters_file_comes_from_a_toml_writer():
    from sim.validation.fit import fitted_toml

    trial = SimpleNamespace(loss=1.5, values={"learning.base_rate": 0.5, "district.x": -1.0,
                                              "learning.n": 3})
    settings = SimpleNamespace(replicates=2, quick=False)
    result = SimpleNamespace(settings=settings, sampler="tpe", seed=1, start=trial,
                             best=trial, start_source="a\n[learning]\nbase_rate = 99\r")
    text = fitted_toml(result, 4)
    assert tomllib.loads(text) == {"district": {"x": -1.0},
                                   "learning": {"base_rate": 0.5, "n": 3}}
    assert "# Started from: a?[learning]?base_rate = 99?." in text


def test_a_5000_digit_seed_option_is_refused_in_one_short_line(cli, tmp_path):
    code, out, err, _ = cli(["run", QUICK, "--out", tmp_path / "o", "--seed", BIG])
    assert code == 2 and "--seed" in err and "4,300 digits" in err and len(err) < 300
    assert not (tmp_path / "o").exists()


def test_a_sweep_whose_largest_point_does_not_fit_is_refused(cli, tmp_path):
    sweep = tmp_path / "big.toml"
    sweep.write_text(tomli_w.dumps({
        "name": "big", "base": str(QUICK), "samples": 2, "outcomes": ["proficient"],
        "overrides": ["district.classes_per_grade=50", "district.class_size=200"],
        "parameters": [{"path": "district.schools", "low": 1, "high": 2000, "integer": True}]}))
    code, out, err, seconds = cli(["sweep", sweep, "--out", tmp_path / "o", "--workers", "1"])
    assert code == 2 and " GB " in err and "available" in err, err
    assert seconds < 20 and not (tmp_path / "o").exists()  # importing sweeps: ~8 s busy
