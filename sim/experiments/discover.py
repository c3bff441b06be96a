"""Scenario discovery on a finished sweep: where in parameter space does an outcome hold?

``plsim discover DIR --outcome NAME --above X`` (or ``--below X``) reads a
finished sweep (``plsim sweep ... --out DIR``), takes every run's outcome for
one arm, year and start band, marks the runs where it is above (below) ``X``
— the cases of interest — and runs PRIM (:mod:`sim.analysis.prim`) on the
sweep's parameters. Each run (one design sample x one replicate) is one
point, as in EMA Workbench. Written under
``DIR/discover/<outcome>_<above|below>_<X>_<arm>_y<year>_<band>/`` (with the
non-default PRIM settings appended, e.g. ``_d0.95``):

* ``boxes.csv``: per box and restricted parameter, the box's coverage, density
  (with its 95% Wilson interval), mass, runs and cases of interest, the kept range
  (low, high: inclusive, at full precision, each the parameter's value in some run,
  so that re-applying them selects exactly the box's runs) or values, and any
  minimum-support warning (fewer than 10 runs, or under ``--mass-min``);
* ``trajectory.csv``: every box of every peeling trajectory (coverage, density,
  mass, restricted parameters), with the chosen ones flagged;
* ``tradeoff.png``: the peeling trade-off, coverage against density, per box;
* ``boxes.txt``: one plain-language line per box (also printed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.analysis.figures import plain_text  # noqa: E402
from sim.analysis.prim import (  # noqa: E402
    MIN_RUNS,
    PrimBox,
    describe_limit,
    find_boxes,
    full_limits,
)
from sim.config.scenario import ScenarioError  # noqa: E402
from sim.experiments.sensitivity import (  # noqa: E402
    OUTCOME_LABELS,
    choose_arm,
    choose_band,
    choose_outcomes,
    choose_year,
    load_finished,
    slug,
)
from sim.experiments.storage import atomic_write, save_figure  # noqa: E402


def discovery_data(data, outcome: str, arm: str, year: int,
                   band: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(parameter values, outcome) per run of a finished sweep, in run order.

    Numeric parameters stay numeric (value lists of numbers too); strings and booleans
    are categories.
    """
    t = data.table
    rows = t[(t["arm"] == arm) & (t["year"] == year) & (t["start_band"] == band)]
    rows = rows.sort_values("run_id")
    y = rows[outcome].to_numpy(float)
    if len(rows) == 0 or np.isnan(y).all():
        raise ScenarioError(f"{data.dir}: --outcome {outcome}: no values for arm '{arm}', "
                            f"year {year}, {band}")
    keep = ~np.isnan(y)
    x = pd.DataFrame(index=rows.index[keep])
    for p in data.sweep.parameters:
        col = rows.loc[keep, p.path]
        numeric = p.is_range or all(isinstance(v, int | float) and not isinstance(v, bool)
                                    for v in p.values)
        x[p.path] = col.astype(float) if numeric else col.astype(str)
    return x.reset_index(drop=True), y[keep]


def box_lines(boxes: list[PrimBox], x: pd.DataFrame, condition: str) -> list[str]:
    """One plain-language line per box."""
    full = full_limits(x)
    lines = []
    for b in boxes:
        where = " and ".join(describe_limit(k, v, full[k]) for k, v in b.restrictions().items())
        where = f"where {where}" if where else "anywhere in the sweep (no restriction)"
        lo, hi = b.density_interval()
        line = (f"Box {b.number}: {where}, {condition} in {b.density:.0%} of runs (density, "
                f"95% {lo:.0%}-{hi:.0%}; {b.hits} of {b.n_runs} runs, {b.mass:.0%} of all "
                f"runs); the box holds {b.coverage:.0%} of all runs where it is (coverage).")
        if not b.meets_density:
            line += (" No box of the minimum support reaches the density asked for; this is "
                     "the densest on the trajectory.")
        if b.support_warning():
            line += f" Warning: {b.support_warning()}."
        lines.append(line)
    return lines


def boxes_table(boxes: list[PrimBox], x: pd.DataFrame) -> pd.DataFrame:
    """Per box and restricted parameter: the box's statistics and the kept range or values
    (bounds as they are: data values, not rounded)."""
    full = full_limits(x)
    rows = []
    for b in boxes:
        lo, hi = b.density_interval()
        stats = {"box": b.number, "coverage": b.coverage, "density": b.density,
                 "density_low": lo, "density_high": hi, "mass": b.mass, "runs": b.n_runs,
                 "cases": b.hits, "meets_density": b.meets_density,
                 "warning": b.support_warning()}
        restrictions = b.restrictions() or {None: None}
        for k, lim in restrictions.items():
            rec = {**stats, "parameter": k, "low": np.nan, "high": np.nan, "values": "",
                   "full_low": np.nan, "full_high": np.nan}
            if isinstance(lim, frozenset):
                rec["values"] = " | ".join(sorted(lim))
            elif lim is not None:
                rec.update(low=lim[0], high=lim[1], full_low=full[k][0], full_high=full[k][1])
            rows.append(rec)
    return pd.DataFrame(rows)


def trajectory_table(boxes: list[PrimBox]) -> pd.DataFrame:
    rows = [{"box": b.number, "step": i, "phase": s.phase, "coverage": s.coverage,
             "density": s.density, "mass": s.mass, "restricted": len(s.restricted),
             "parameters": " ".join(s.restricted), "chosen": i == b.chosen}
            for b in boxes for i, s in enumerate(b.trajectory)]
    return pd.DataFrame(rows)


@plain_text
def tradeoff_figure(boxes: list[PrimBox], title: str, path: Path) -> Path:
    """Coverage against density along each box's peeling trajectory (solid) and the
    pasting of the chosen box (dotted); the box reported circled and numbered; colour:
    number of restricted parameters."""
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    traj = trajectory_table(boxes)
    top = max(1, int(traj["restricted"].max()))
    markers = "os^Dv"
    for b in boxes:
        t = traj[traj["box"] == b.number]
        peeled, pasted = t[t["phase"] != "paste"], t[t["phase"] == "paste"]
        ax.plot(peeled["coverage"], peeled["density"], "-", color="0.7", lw=0.8, zorder=1)
        ax.plot(pasted["coverage"], pasted["density"], ":", color="0.4", lw=0.8, zorder=1)
        sc = ax.scatter(t["coverage"], t["density"], c=t["restricted"], cmap="viridis",
                        vmin=0, vmax=top, s=22, marker=markers[(b.number - 1) % 5], zorder=2,
                        label=f"box {b.number} trajectory")
        ax.scatter([b.coverage], [b.density], s=160, facecolor="none", edgecolor="tab:red",
                   lw=1.6, zorder=3)
        ax.annotate(f"box {b.number}", (b.coverage, b.density), xytext=(6, 6),
                    textcoords="offset points", color="tab:red", fontsize=9)
    fig.colorbar(sc, ax=ax, label="restricted parameters", ticks=range(top + 1))
    ax.set_xlabel("coverage (share of all cases of interest in the box)")
    ax.set_ylabel("density (share of the box's runs that are cases of interest)")
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def main_discover(args) -> int:
    """``plsim discover DIR``: PRIM boxes where an outcome of a finished sweep holds.

    Args:
        args: ``dir``, ``outcome``, ``above`` or ``below`` (a number), ``arm`` (None = the
            last), ``year`` (None = the last), ``band`` (None = all students),
            ``min_density``, ``max_boxes``, ``peel_alpha``, ``mass_min``, ``min_runs``.

    Returns:
        0; bad input raises ScenarioError (exit status 2, nothing written).
    """
    data = load_finished(args.dir)
    (outcome,) = choose_outcomes(data, args.outcome)
    arm, year = choose_arm(data, args.arm), choose_year(data, args.year)
    band = choose_band(data, args.band)
    above = args.above is not None
    threshold = float(args.above if above else args.below)
    if not np.isfinite(threshold):
        raise ScenarioError(f"{data.dir}: --{'above' if above else 'below'}: expected a finite "
                            f"number, got {threshold}")
    x, values = discovery_data(data, outcome, arm, year, band)
    min_runs = getattr(args, "min_runs", MIN_RUNS)
    y = values > threshold if above else values < threshold
    condition = f"{outcome} is {'above' if above else 'below'} {threshold:g}"
    where = f"arm '{arm}', year {year}, {band}"
    head = (f"Scenario discovery (PRIM) on sweep '{data.sweep.name}': {condition}, {where}; "
            f"{int(y.sum())} of {y.size} runs (each run: one design sample x one replicate). "
            f"{outcome}: {OUTCOME_LABELS.get(outcome, outcome)}.")
    try:
        boxes = find_boxes(x, y, peel_alpha=args.peel_alpha, mass_min=args.mass_min,
                           min_density=args.min_density, max_boxes=args.max_boxes,
                           min_runs=min_runs)
    except ValueError as err:
        raise ScenarioError(f"{data.dir}: {err}") from None
    if not boxes:
        print(head)
        print(f"No run has {condition}: no box to find (coverage and density undefined).")
        return 0
    lines = box_lines(boxes, x, condition)
    settings = "".join(f"_{k}{v:g}" for k, v, default in (  # non-default: their own folder
        ("d", args.min_density, 0.8), ("b", args.max_boxes, 3), ("p", args.peel_alpha, 0.05),
        ("m", args.mass_min, 0.05), ("r", min_runs, MIN_RUNS)) if v != default)
    folder = data.dir / "discover" / slug(
        f"{outcome}_{'above' if above else 'below'}_{threshold:g}_{arm}_y{year}_{band}"
        f"{settings}")
    folder.mkdir(parents=True, exist_ok=True)
    table, traj = boxes_table(boxes, x), trajectory_table(boxes)
    # bounds at full precision: re-applying them must select exactly the box's runs
    atomic_write(folder / "boxes.csv", lambda p: table.to_csv(p, index=False))
    atomic_write(folder / "trajectory.csv", lambda p: traj.to_csv(p, index=False,
                                                                 float_format="%.6g"))
    text = "\n".join([head, *lines]) + "\n"
    atomic_write(folder / "boxes.txt", lambda p: p.write_text(text))
    tradeoff_figure(boxes, f"{data.sweep.name}: {condition}\n{where}",
                    folder / "tradeoff.png")
    print(text, end="")
    print(f"Wrote boxes.csv, trajectory.csv, boxes.txt and tradeoff.png to {folder}")
    return 0
