"""PRIM scenario discovery: recovers planted boxes; plsim discover on a finished sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.prim import describe_limit, find_boxes, full_limits
from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def planted(n=1200, noise=0.02, seed=3):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "c": rng.random(n),
                      "k": rng.choice(["p", "q", "r"], n), "i": rng.integers(0, 5, n)})
    inside = x.a.between(0.2, 0.6) & (x.b > 0.5) & (x.k != "r")
    y = inside.to_numpy() ^ (rng.random(n) < noise)
    return x, y, inside.to_numpy()


def test_prim_recovers_a_planted_box():
    x, y, inside = planted()
    boxes = find_boxes(x, y)
    b = boxes[0]
    lim = b.restrictions()
    assert set(lim) == {"a", "b", "k"}  # the noise inputs c and i are left free
    assert abs(lim["a"][0] - 0.2) < 0.04 and abs(lim["a"][1] - 0.6) < 0.04
    assert abs(lim["b"][0] - 0.5) < 0.04 and lim["b"][1] == pytest.approx(x.b.max())
    assert lim["k"] == frozenset({"p", "q"})
    # 2% of labels flipped: most cases of interest are in the box, and it is dense
    assert b.coverage > 0.8 and b.density > 0.9, (b.coverage, b.density)
    agree = (b.step.inside == inside).mean()
    assert agree > 0.97
    # the trajectory peels monotonically: mass falls, density rises along the peel
    peel = [s for s in b.trajectory if s.phase in ("start", "peel")]
    assert all(p.mass > q.mass for p, q in zip(peel, peel[1:], strict=False))
    assert peel[-1].density > peel[0].density + 0.5
    assert b.meets_density


def test_prim_two_boxes_and_integer_inputs():
    rng = np.random.default_rng(8)
    n = 1500
    x = pd.DataFrame({"u": rng.random(n), "years": rng.integers(1, 7, n).astype("int64"),
                      "v": rng.random(n)})
    y = ((x.u < 0.25) & (x.years >= 4)) | (x.v > 0.85)
    boxes = find_boxes(x, y.to_numpy(), max_boxes=3)
    assert len(boxes) >= 2
    found = [set(b.restrictions()) for b in boxes]
    assert {"v"} in found and {"u", "years"} in found
    two = boxes[[set(b.restrictions()) for b in boxes].index({"u", "years"})]
    assert two.restrictions()["years"][0] == 4 and two.density > 0.9
    total = sum(b.coverage for b in boxes)
    assert 0.9 < total <= 1.0 + 1e-9  # later boxes cover cases left outside earlier ones


def test_prim_edge_cases_and_words():
    x, y, _ = planted(n=300)
    assert find_boxes(x, np.zeros(300, bool)) == []
    everywhere = find_boxes(x, np.ones(300, bool))
    assert len(everywhere) == 1 and everywhere[0].restrictions() == {}
    assert everywhere[0].coverage == 1 and everywhere[0].density == 1
    with pytest.raises(ValueError, match="peel_alpha"):
        find_boxes(x, y, peel_alpha=1.5)
    full = full_limits(x)
    assert describe_limit("a", (0.2, 0.6), full["a"]) == "a from 0.2 to 0.6"
    assert describe_limit("b", (0.5, full["b"][1]), full["b"]) == "b ≥ 0.5"
    assert describe_limit("k", frozenset({"q", "p"}), full["k"]) == "k is p or q"


def noisy_box(seed, n=2000):
    """2,000 uniform points in 5 dims; a case of interest with probability 0.9 inside
    [0.2, 0.6] x [0.3, 0.8] (x0, x1), 0.1 outside."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((n, 5)), columns=[f"x{i}" for i in range(5)])
    inside = x.x0.between(0.2, 0.6) & x.x1.between(0.3, 0.8)
    y = rng.random(n) < np.where(inside, 0.9, 0.1)
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_prim_recovers_a_noisy_planted_box(seed):
    """Friedman & Fisher's peeling to the minimum support, then pasting: the box's bounds
    within 0.05 of the planted ones, only x0 and x1 restricted, density >= 0.8 and the
    coverage of the planted box itself (0.9 x 0.2 / (0.9 x 0.2 + 0.1 x 0.8) = 0.69)
    within 0.06. (EMA Workbench 2.5.3 on the same data: sim/analysis/prim.py's docstring.)"""
    x, y = noisy_box(seed)
    b = find_boxes(x, y, max_boxes=1)[0]
    lim = b.restrictions()
    assert set(lim) == {"x0", "x1"}
    assert np.allclose(lim["x0"], (0.2, 0.6), atol=0.05), lim
    assert np.allclose(lim["x1"], (0.3, 0.8), atol=0.05), lim
    assert b.density >= 0.8 and b.meets_density and abs(b.coverage - 0.69) < 0.06
    assert b.support_warning() == ""
    lo, hi = b.density_interval()
    assert lo < b.density < hi and hi - lo < 0.12


def test_the_densest_box_is_the_densest_of_the_trajectory_with_enough_runs():
    x, y = noisy_box(2)
    b = find_boxes(x, y, max_boxes=1, min_density=1.0)[0]  # no box reaches 1.0
    assert not b.meets_density
    peeled = [s for s in b.trajectory if s.phase != "paste"]
    big = [s for s in peeled if s.inside.sum() >= 100]  # 5% of 2,000 runs
    assert b.density >= max(s.density for s in big) - 1e-12
    assert b.n_runs >= 100
    # peeling goes to the minimum support, through steps that lower the mean
    assert min(s.inside.sum() for s in peeled) < 100 / (1 - 0.05) + 1


def test_a_box_under_the_minimum_support_says_so():
    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.random(24), "b": rng.random(24)})
    y = (x.a < 0.1).to_numpy()
    b = find_boxes(x, y, min_runs=1, mass_min=0.05)[0]  # allowed down to 2 runs
    assert b.n_runs < 10 and b.density == 1.0
    assert b.support_warning().startswith(f"small box: {b.n_runs} runs")
    strict = find_boxes(x, y)[0]  # the default minimum support: 10 runs
    assert strict.n_runs >= 10 and strict.support_warning() == ""
    tiny = find_boxes(x.head(6), y[:6] | True)[0]  # 6 runs in all: under 10 whatever
    assert "small box: 6 runs" in tiny.support_warning()


# --- the command on a small finished sweep ---------------------------------------------
SWEEP = """
name = "tiny_sweep"
base = "{base}"
overrides = ["years=1", "district.schools=1", "district.classes_per_grade=1",
             "district.class_size=15", "assessment.reference_students_per_grade=200"]
design = "latin"
samples = 10
replicates = 1
seed = 3
outcomes = ["growth_sd", "proficient", "program_active_share"]

[[arms]]
label = "policy"
pacing = "personalized"
floor = 3

[[parameters]]
path = "arms.policy.floor"
low = 0.5
high = 4

[[parameters]]
path = "arms.policy.test_prep_weeks"
low = 0
high = 8
integer = true
"""


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disc")
    spec = tmp / "sweep.toml"
    spec.write_text(SWEEP.format(base=(ROOT / "scenarios" / "quick.toml").as_posix()))
    out = tmp / "sw"
    # the statewide reference, computed once here, is inherited by the forked workers
    # (and by test_optimize's tiny study, which has the same mechanisms)
    from sim.district.reference import state_reference
    from sim.experiments.sweeps import design_matrix, load_sweep, scenario_for

    sweep, base = load_sweep(spec)
    state_reference(scenario_for(sweep, base, design_matrix(sweep)[0]))
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    return out


def test_discover_on_a_finished_sweep(sweep_dir, capsys):
    t = pd.read_parquet(sweep_dir / "outcomes")
    g = t[(t.start_band == "all students")].growth_sd
    cut = float(np.median(g))
    assert main(["discover", str(sweep_dir), "--outcome", "growth_sd", "--above",
                 f"{cut}"]) == 0
    text = capsys.readouterr().out
    assert "coverage" in text and "density" in text and "Box 1:" in text
    folder = next((sweep_dir / "discover").iterdir())
    boxes = pd.read_csv(folder / "boxes.csv")
    assert {"box", "coverage", "density", "mass", "parameter", "low", "high"} <= set(boxes)
    assert boxes["coverage"].between(0, 1).all() and boxes["density"].between(0, 1).all()
    traj = pd.read_csv(folder / "trajectory.csv")
    assert traj["chosen"].sum() == boxes["box"].nunique()
    assert (folder / "tradeoff.png").stat().st_size > 5_000
    assert (folder / "boxes.txt").read_text().count("Box ") == boxes["box"].nunique()
    # the same input gives the same boxes
    before = (folder / "boxes.csv").read_bytes()
    assert main(["discover", str(sweep_dir), "--outcome", "growth_sd", "--above",
                 f"{cut}"]) == 0
    assert (folder / "boxes.csv").read_bytes() == before
    # nothing above an impossible threshold: said plainly, not an error
    assert main(["discover", str(sweep_dir), "--outcome", "growth_sd", "--above", "99"]) == 0
    assert "No run has growth_sd is above 99" in capsys.readouterr().out


def reapply(boxes: pd.DataFrame, x: pd.DataFrame, y: np.ndarray) -> list[tuple[int, int]]:
    """(runs, cases) of each box of a boxes.csv, re-applied to the runs in order (a later
    box counts only runs outside earlier ones), bounds inclusive as written."""
    left = np.ones(len(x), bool)
    out = []
    for _, g in boxes.groupby("box", sort=True):
        m = left.copy()
        for r in g.itertuples():
            if isinstance(r.parameter, str) and r.values == r.values and r.values:
                m &= x[r.parameter].astype(str).isin(r.values.split(" | ")).to_numpy()
            elif isinstance(r.parameter, str):
                v = x[r.parameter].to_numpy(float)
                m &= (v >= r.low) & (v <= r.high)
        out.append((int(m.sum()), int(y[m].sum())))
        left &= ~m
    return out


def test_boxes_csv_bounds_reproduce_the_reported_counts_exactly(sweep_dir, capsys):
    """Re-applying boxes.csv's written bounds selects exactly the reported runs and cases
    (bounds are data values at full precision), and a box under 10 runs is flagged."""
    from sim.experiments.discover import discovery_data
    from sim.experiments.sensitivity import load_finished

    data = load_finished(sweep_dir)
    x, values = discovery_data(data, "growth_sd", "policy", 1, "all students")
    cut = float(np.quantile(values, 0.6))
    assert main(["discover", str(sweep_dir), "--outcome", "growth_sd", "--above", f"{cut}",
                 "--min-runs", "2", "--max-boxes", "2"]) == 0
    text = capsys.readouterr().out
    folder = next(f for f in (sweep_dir / "discover").iterdir() if f.name.endswith("_r2"))
    boxes = pd.read_csv(folder / "boxes.csv", keep_default_na=False,
                        na_values={"low": [""], "high": [""]})
    reported = boxes.groupby("box")[["runs", "cases"]].first()
    assert reapply(boxes, x, values > cut) == list(reported.itertuples(index=False, name=None))
    assert (boxes["runs"] < 10).any()  # 10 runs in all: every restricted box is small
    assert "Warning: small box" in text
    small = boxes[boxes["runs"] < 10]
    assert small["warning"].str.startswith("small box").all()


@pytest.mark.parametrize("args,message", [
    (["--outcome", "nope", "--above", "1"], "not recorded by this sweep"),
    (["--outcome", "growth_sd", "--above", "1", "--arm", "x"], "no such arm"),
    (["--outcome", "growth_sd", "--above", "1", "--year", "4"], "not in this sweep"),
    (["--outcome", "growth_sd", "--above", "1", "--band", "middle"], "no such start band"),
    (["--outcome", "program_active_share", "--above", "0.5", "--band", "on grade"],
     "no values for arm"),
    (["--outcome", "growth_sd", "--above", "nan"], "finite number"),
])
def test_discover_bad_input(sweep_dir, capsys, args, message):
    before = sorted(p.name for p in sweep_dir.rglob("*"))
    assert main(["discover", str(sweep_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert sorted(p.name for p in sweep_dir.rglob("*")) == before


def test_discover_needs_a_sweep_and_one_threshold(tmp_path, capsys):
    assert main(["discover", str(tmp_path), "--outcome", "growth_sd", "--above", "1"]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    for bad in (["--outcome", "growth_sd"], ["--outcome", "growth_sd", "--above", "1",
                                            "--below", "2"]):
        with pytest.raises(SystemExit) as exc:
            main(["discover", str(tmp_path), *bad])
        assert exc.value.code == 2


def test_shipped_survival_sweep_validates():
    from sim.experiments.sweeps import load_sweep

    sweep, base = load_sweep(ROOT / "scenarios" / "sweep_survival.toml")
    assert "program_active_share" in sweep.outcomes
    paths = {p.path for p in sweep.parameters}
    assert {"arms.tepp.leaders.responsiveness", "arms.tepp.review.after_years",
            "arms.tepp.review.min_improvement", "arms.tepp.review.evidence",
            "arms.tepp.trust"} <= paths
    assert base["years"] == 5
