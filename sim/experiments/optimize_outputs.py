"""The files of a finished study: candidates, the Pareto set, the shipped strategies, figure.

``write_outputs`` writes ``candidates.parquet``, ``pareto.csv``,
``references.csv`` and ``figures/pareto.png`` (each atomically);
``format_front`` is the table ``plsim optimize`` prints.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.analysis.figures import plain_text  # noqa: E402
from sim.analysis.noisy_front import LEVEL  # noqa: E402
from sim.analysis.pareto import non_dominated  # noqa: E402
from sim.experiments.optimize_spec import OptimizeSpec, Problem, objective_columns  # noqa: E402
from sim.experiments.storage import atomic_write  # noqa: E402


def write_outputs(problem: Problem, out: Path, cands: pd.DataFrame,
                  refs: pd.DataFrame) -> list[str]:
    """candidates.parquet, pareto.csv, references.csv, figures/pareto.png (atomically),
    from every candidate's row (``cands``) and the strategies' rows (``refs``)."""
    spec = problem.spec
    cands = cands.sort_values("candidate", ignore_index=True)
    names = [o.name for o in spec.objectives]
    maximize = [o.maximize for o in spec.objectives]
    front_mask = non_dominated(cands[names].to_numpy(float), maximize)
    cands.insert(1, "pareto", front_mask)
    atomic_write(out / "candidates.parquet", lambda p: cands.to_parquet(p, index=False))
    cols = ["candidate", *[lv.name for lv in spec.levers], *objective_columns(spec),
            "replicates", "front_probability", "front"]
    front = cands.loc[front_mask, cols].sort_values(names[0], ascending=not maximize[0],
                                                    kind="stable", ignore_index=True)
    atomic_write(out / "pareto.csv", lambda p: front.to_csv(p, index=False,
                                                           float_format="%.6g"))
    files = ["candidates.parquet", "pareto.csv"]
    if len(refs):
        refs = refs[["strategy", *objective_columns(spec), "replicates", "front_probability",
                     "front", "dominated_by", "possibly_dominated_by"]]
        atomic_write(out / "references.csv", lambda p: refs.to_csv(p, index=False,
                                                                  float_format="%.6g"))
        files.append("references.csv")
    (out / "figures").mkdir(exist_ok=True)
    pareto_figure(spec, cands, front, refs, out / "figures" / "pareto.png")
    return [*files, "figures/pareto.png"]


@plain_text
def pareto_figure(spec: OptimizeSpec, cands: pd.DataFrame, front: pd.DataFrame,
                  refs: pd.DataFrame, path: Path) -> Path:
    """Objectives pairwise: every candidate (grey), the non-dominated ones (coloured by
    the next objective, with 95% intervals) and the shipped strategies (labelled)."""
    objs = spec.objectives
    pairs = [(i, j) for i in range(len(objs)) for j in range(i + 1, len(objs))]
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(5.2 * ncols, 4.4 * nrows))
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        a, b = objs[i].name, objs[j].name
        ax.scatter(cands[a], cands[b], s=10, color="0.75", label="candidates")
        other = next((o.name for k, o in enumerate(objs) if k not in (i, j)), None)
        ax.errorbar(front[a], front[b], xerr=_err(front, a), yerr=_err(front, b), fmt="none",
                    ecolor="tab:blue", alpha=0.35, lw=0.8)
        sure = (front["front"] == "yes").to_numpy() if "front" in front else \
            np.ones(len(front), bool)
        sc = ax.scatter(front[a][sure], front[b][sure], s=28,
                        c=front[other][sure] if other else "tab:blue", cmap="viridis",
                        edgecolor="k", lw=0.4, zorder=3, label="non-dominated (decided)")
        ax.scatter(front[a][~sure], front[b][~sure], s=28, facecolor="none", edgecolor="k",
                   lw=0.8, zorder=3, label="non-dominated on the means (undecided)")
        for r in front.itertuples():  # candidate ids, as in pareto.csv
            ax.annotate(str(int(r.candidate)), (getattr(r, a), getattr(r, b)), fontsize=6,
                        xytext=(3, -7), textcoords="offset points", color="0.2")
        if other:
            fig.colorbar(sc, ax=ax, label=other)
        if len(refs):
            ax.scatter(refs[a], refs[b], marker="X", s=70, color="tab:red", edgecolor="k",
                       zorder=4, label="shipped strategies")
            for r in refs.itertuples():
                ax.annotate(r.strategy, (getattr(r, a), getattr(r, b)), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
        _limits(ax, [cands, refs], a, b)
        ax.set_xlabel(f"{a} ({objs[i].direction[:3]})")
        ax.set_ylabel(f"{b} ({objs[j].direction[:3]})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7, loc="best")
    decided = int((front["front"] == "yes").sum()) if "front" in front else len(front)
    fig.suptitle(f"{spec.name}: {len(cands)} candidates x {spec.replicates}+ replicates; "
                 f"{len(front)} non-dominated on the means, {decided} decided "
                 f"(95% intervals across replicates; numbers: candidate ids)", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def _limits(ax, frames: list[pd.DataFrame], a: str, b: str) -> None:
    """Axis limits from the points (not the intervals, which may reach far out)."""
    for name, setter in ((a, ax.set_xlim), (b, ax.set_ylim)):
        v = pd.concat([f[name] for f in frames if len(f)]).to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            pad = 0.08 * (v.max() - v.min()) or 0.05 * (abs(v.max()) or 1)
            setter(v.min() - pad, v.max() + pad)


def _err(frame: pd.DataFrame, name: str):
    lo, hi = frame[f"{name}_low"], frame[f"{name}_high"]
    if lo.isna().all():
        return None
    return np.vstack([(frame[name] - lo).fillna(0), (hi - frame[name]).fillna(0)])


def format_front(problem: Problem, out: Path) -> str:
    """The non-dominated set and the shipped strategies as a plain table."""
    front = pd.read_csv(out / "pareto.csv")
    spec = problem.spec
    lines = [f"{len(front)} non-dominated candidate(s) of {spec.trials} "
             f"(objectives: " + ", ".join(f"{o.direction} {o.name}" for o in spec.objectives)
             + "; mean [95% interval] over replicates):"]
    shown = ["candidate", *[lv.name for lv in spec.levers]]
    table = front[shown].copy()
    for o in spec.objectives:
        table[o.name] = [_ci(r, o.name) for r in front.to_dict("records")]
    if "front_probability" in front:
        table["reps"] = front["replicates"]
        table["P(front)"] = [f"{p:.2f} {v}" for p, v in zip(front["front_probability"],
                                                          front["front"], strict=True)]
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    ref_path = out / "references.csv"
    if ref_path.exists():
        refs = pd.read_csv(ref_path, keep_default_na=False)
        t = refs[["strategy"]].copy()
        for o in spec.objectives:
            t[o.name] = [_ci(r, o.name) for r in refs.to_dict("records")]
        t["beaten by"] = [x or "-" for x in refs["dominated_by"].astype(str)]
        if "possibly_dominated_by" in refs:
            t["possibly by (P)"] = [x or "-" for x in refs["possibly_dominated_by"].astype(str)]
        lines += ["", "Shipped strategies (beaten by: candidates better on every objective "
                      f"with probability >= {LEVEL:.2f} over the replicates' noise; possibly "
                      "by: undecided):", t.to_string(index=False)]
    return "\n".join(lines)


def _ci(row: dict, name: str) -> str:
    m, lo, hi = (row[name], row.get(f"{name}_low"), row.get(f"{name}_high"))
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        lo = hi = math.nan
    return f"{m:.3g}" if math.isnan(lo) else f"{m:.3g} [{lo:.3g}, {hi:.3g}]"
