"""The report's figures, as PNG bytes ready to embed (matplotlib's Agg backend).

Figures that :mod:`sim.analysis.figures` and :mod:`sim.experiments.sensitivity`
already draw are reused through :func:`drawn`, which lets them write into a
temporary folder and returns the bytes. The figures drawn here are the ones a
report adds: paired differences against a baseline arm, trajectories over
years, switches, teachers' stress and exits by year, and the brief's bars of each
strategy's change against the baseline. Each ``*_figure`` function returns the
matplotlib Figure (for tests of its layout); the others its PNG bytes. Layout: legends
below the axes, points numbered as in the legend and moved apart (adjustText), flat
panels marked "no change" (:mod:`sim.analysis.figures`' helpers).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.analysis.figures import (  # noqa: E402
    display_name,
    freeze,
    keyed_name,
    legend_below,
    mark_flat,
    new_figure,
    number_points,
    plain_text,
    wrap,
)
from sim.analysis.summaries import ALL  # noqa: E402
from sim.experiments.executor import Executor, resolve_workers  # noqa: E402

DPI = 100


def png(fig) -> bytes:
    """A figure as PNG bytes (no timestamp in the metadata); closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def as_png(figure: Callable[..., object]) -> Callable[..., bytes]:
    """``figure``'s drawing as PNG bytes, with names drawn as plain text: the same
    arguments, ``png(figure(...))``."""
    @plain_text
    def draw(*args, **kwargs) -> bytes:
        return png(figure(*args, **kwargs))

    draw.__name__ = figure.__name__.removesuffix("_figure")
    draw.__doc__ = f"PNG bytes of :func:`{figure.__name__}`."
    return draw


@plain_text
def drawn(draw: Callable[..., object], *args, **kwargs) -> bytes:
    """Bytes of a figure that ``draw(*args, path, **kwargs)`` writes to a file path."""
    with tempfile.TemporaryDirectory(prefix="plsim-fig-") as tmp:
        path = Path(tmp) / "figure.png"
        draw(*args, path, **kwargs)
        return path.read_bytes()


def drawn_all(jobs: list[tuple[Callable[..., object], tuple]],
              workers: int | None = 1) -> list[bytes]:
    """``drawn(draw, *args)`` of every ``(draw, args)``, in order, on at most ``workers``
    local processes (``Executor``; the same bytes whatever the number)."""
    with Executor(min(resolve_workers(workers), max(len(jobs), 1)), what="figures") as ex:
        got = dict(ex.map_unordered(drawn_job, list(enumerate(jobs))))
    return [got[i] for i in range(len(jobs))]


def drawn_job(item: tuple[int, tuple[Callable[..., object], tuple]]) -> tuple[int, bytes]:
    """One of ``drawn_all``'s figures, with its place (module-level: a pool can run it)."""
    i, (draw, args) = item
    return i, drawn(draw, *args)


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _err(mean: float, lo: float, hi: float, f: float):
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return [[f * (mean - lo)], [f * (hi - mean)]]


def arm_colors(arms: list[str]) -> dict[str, tuple]:
    """One colour per arm, in the scenario's order (the same as sim.analysis.figures)."""
    return dict(zip(arms, _colors(len(arms)), strict=True))


def _paired_panel(ax, rows: pd.DataFrame, colors: dict, arms: list[str],
                  names: Mapping[str, str] | None):
    """Each arm's paired change (growth against proficiency) with its intervals; returns
    the legend's handles and labels and the points to number."""
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.plot([0], [0], "s", color="0.3")  # the baseline
    handles, labels, points = [], [], []
    for r in rows.itertuples():
        if not np.isfinite(r.growth_sd):
            continue
        arm = str(r.arm)
        i = arms.index(arm)
        handles.append(ax.errorbar(
            100 * r.proficient, r.growth_sd,
            xerr=_err(r.proficient, r.proficient_lo, r.proficient_hi, 100),
            yerr=_err(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi, 1),
            fmt="o", capsize=3, color=colors[arm]))
        labels.append(keyed_name(i, arm, names))
        points.append((100 * r.proficient, r.growth_sd, str(i + 1)))
    ax.grid(alpha=0.3)
    return handles, labels, points


def _number(ax, points) -> None:
    if points:
        xs, ys, keys = zip(*points, strict=True)
        number_points(ax, xs, ys, list(keys))


@plain_text
def paired_frontier_figure(contrasts: pd.DataFrame, baseline: str, arms: list[str],
                           names: Mapping[str, str] | None = None):
    """Change in growth (SD) against change in proficiency (points) of each arm versus
    ``baseline`` (the square at 0, 0), all program students; bars: paired 95% intervals."""
    rows = contrasts[contrasts.start_band == ALL]
    base = display_name(baseline, names)
    fig, axes = new_figure(1, 7.5, 6.0)
    ax = axes[0][0]
    handles, labels, points = _paired_panel(ax, rows, arm_colors(arms), arms, names)
    (square,) = ax.plot([], [], "s", color="0.3")
    handles, labels = [square, *handles], [f"{arms.index(baseline) + 1}  {base} (baseline, "
                                           "at 0, 0)", *labels]
    year = int(rows.year.iloc[0]) if len(rows) else ""
    ax.set_xlabel("change in proficient (percentage points)")
    ax.set_ylabel("change in growth (SD)")
    ax.set_title(f"Each strategy minus the baseline, same students (year {year}; paired "
                 "95% intervals)", fontsize=10)
    legend_below(fig, handles, labels)
    freeze(fig)
    _number(ax, points)
    return fig


@plain_text
def paired_frontier_by_band_figure(contrasts: pd.DataFrame, baseline: str, arms: list[str],
                                   names: Mapping[str, str] | None = None):
    """The same differences, one panel per starting-achievement band."""
    rows = contrasts[contrasts.start_band != ALL].dropna(subset=["growth_sd"])
    bands = [b for b in contrasts.start_band.cat.categories
             if b != ALL and (rows.start_band == b).any()]
    colors = arm_colors(arms)
    fig, axes = new_figure(max(1, len(bands)), 4.2 * max(1, len(bands)), 5.2)
    panels, handles, labels = [], [], []
    for ax, band in zip(axes[0], bands, strict=False):
        h, lab, points = _paired_panel(ax, rows[rows.start_band == band], colors, arms, names)
        if len(h) > len(handles):
            handles, labels = h, lab
        panels.append((ax, points))
        ax.set_title(f"started {band}", fontsize=10)
        ax.set_xlabel("change in proficient (points)")
    axes[0][0].set_ylabel("change in growth (SD)")
    fig.suptitle(f"Each strategy minus {display_name(baseline, names)} by starting band "
                 "(paired 95% intervals)", fontsize=11)
    legend_below(fig, handles, labels)
    freeze(fig)
    for ax, points in panels:
        _number(ax, points)
    return fig


@plain_text
def trajectories_figure(summary: pd.DataFrame, names: Mapping[str, str] | None = None):
    """Growth (SD) and proficiency (%) by year for each arm, all program students, with
    95% intervals across replicates; the legend below the panels."""
    s = summary[summary.start_band == ALL]
    arms = [str(a) for a in summary.arm.cat.categories]
    fig, axes = new_figure(2, 11, 5.2)
    axes = axes[0]
    handles, series = [], {0: [], 1: []}
    for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
        g = s[s.arm == arm].sort_values("year")
        x = g.year + 0.03 * (i - (len(arms) - 1) / 2)  # side by side: bars do not hide
        for k, (ax, m, f) in enumerate(((axes[0], "growth_sd", 1), (axes[1], "proficient", 100))):
            lo, hi = g[f"{m}_lo"].to_numpy(float), g[f"{m}_hi"].to_numpy(float)
            mean = g[m].to_numpy(float)
            yerr = None if np.isnan(lo).all() else [f * (mean - lo), f * (hi - mean)]
            h = ax.errorbar(x, f * mean, yerr=yerr, fmt="o-", capsize=3, color=color)
            series[k].append(f * mean)
            if k == 0:
                handles.append(h)
    years = sorted(int(y) for y in s.year.unique())
    for k, (ax, title) in enumerate(zip(axes, ("growth, fall to spring (SD)", "proficient (%)"),
                                        strict=True)):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(years)
        ax.grid(alpha=0.3)
        mark_flat(ax, series[k], span=0.1 if k == 0 else 10.0)
    legend_below(fig, handles, [display_name(a, names) for a in arms])
    fig.suptitle("Over the years, students in the program grades (95% intervals)",
                 fontsize=11)
    return fig


@plain_text
def switches_by_band_figure(summary: pd.DataFrame, year: int | None = None,
                            names: Mapping[str, str] | None = None):
    """Switches between personalized and grade-level content per student-year, by band."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band != ALL)]
    bands = [b for b in summary.start_band.cat.categories
             if b != ALL and (s.start_band == b).any()]
    arms = [str(a) for a in summary.arm.cat.categories]
    width = 0.8 / len(arms)
    fig, axes = new_figure(1, 8, 5.0)
    ax = axes[0][0]
    handles = []
    for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
        vals = [s[(s.arm == arm) & (s.start_band == b)].switches.mean() for b in bands]
        handles.append(ax.bar(np.arange(len(bands)) + i * width, vals, width, color=color))
    ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2, bands)
    ax.set_ylabel("switches per student-year")
    ax.set_title(f"On/off switches between personalized and grade-level content (year {year})",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    legend_below(fig, handles, [display_name(a, names) for a in arms])
    return fig


def teacher_years_means(teacher_years: pd.DataFrame) -> pd.DataFrame:
    """Per arm x year: teachers' mean stress (0-1) and exit rate (share leaving), means
    over replicates of each replicate's mean."""
    per_rep = teacher_years.groupby(["arm", "year", "replicate"], observed=True).agg(
        stress=("stress", "mean"), exit_rate=("exited", "mean")).reset_index()
    return per_rep.groupby(["arm", "year"], observed=True)[["stress", "exit_rate"]].mean(
        ).reset_index()


@plain_text
def teacher_outcomes_by_year_figure(teacher_years: pd.DataFrame,
                                    names: Mapping[str, str] | None = None):
    """Teachers' mean stress and the share who leave, by year and arm."""
    means = teacher_years_means(teacher_years)
    arms = [str(a) for a in teacher_years.arm.cat.categories]
    fig, axes = new_figure(2, 11, 4.8)
    axes = axes[0]
    handles, series = [], {0: [], 1: []}
    for arm, color in zip(arms, _colors(len(arms)), strict=True):
        g = means[means.arm == arm].sort_values("year")
        handles += axes[0].plot(g.year, g.stress, "o-", color=color)
        axes[1].plot(g.year, 100 * g.exit_rate, "o-", color=color)
        series[0].append(g.stress.to_numpy(float))
        series[1].append(100 * g.exit_rate.to_numpy(float))
    for k, (ax, title) in enumerate(zip(axes, ("teachers' mean stress (0-1)",
                                               "teachers who leave (%)"), strict=True)):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(sorted(int(y) for y in means.year.unique()))
        ax.grid(alpha=0.3)
        mark_flat(ax, series[k], span=0.1 if k == 0 else 5.0)
    legend_below(fig, handles, [display_name(a, names) for a in arms])
    fig.suptitle("Teachers by year (means across replicates)", fontsize=11)
    return fig


VERDICT_COLORS = {"better": "#2e7d32", "worse": "#c62828"}  # otherwise grey: not clear


def _verdict_color(lo: float, hi: float) -> str:
    if np.isfinite(lo) and np.isfinite(hi) and lo > 0:
        return VERDICT_COLORS["better"]
    if np.isfinite(lo) and np.isfinite(hi) and hi < 0:
        return VERDICT_COLORS["worse"]
    return "0.55"


@plain_text
def change_bars_figure(names: list[str], growth: list[tuple], proficient: list[tuple],
                       baseline: str, year: int | str = ""):
    """The brief's figure: each strategy's paired change against ``baseline`` (mean and
    95% interval), growth in SD on the left, proficiency in percentage points on the
    right, one row per strategy (``names`` in the brief's order, top to bottom); green
    when the interval is above zero, red below, grey across it."""
    n = len(names)
    fig, axes = new_figure(2, 11, 1.2 + 0.48 * max(n, 1), sharey=True)
    y = np.arange(n)[::-1]
    for ax, values, f, title in ((axes[0][0], growth, 1.0, "growth (SD a year)"),
                                 (axes[0][1], proficient, 100.0, "proficient (points)")):
        ax.axvline(0, color="0.3", lw=1)
        for yi, (m, lo, hi) in zip(y, values, strict=True):
            if not np.isfinite(m):
                continue
            color = _verdict_color(lo, hi)
            xerr = None if not (np.isfinite(lo) and np.isfinite(hi)) else [
                [f * (m - lo)], [f * (hi - m)]]
            ax.errorbar(f * m, yi, xerr=xerr, fmt="o", color=color, capsize=4, lw=2,
                        markersize=7)
        ax.set_title(f"change in {title} vs {baseline}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        lo_all = [f * v[1] for v in values if np.isfinite(v[1])] + [f * v[0] for v in values
                                                                    if np.isfinite(v[0])]
        hi_all = [f * v[2] for v in values if np.isfinite(v[2])] + [f * v[0] for v in values
                                                                    if np.isfinite(v[0])]
        reach = max([abs(v) for v in lo_all + hi_all] + [0.01 if f == 1.0 else 1.0])
        ax.set_xlim(-1.15 * reach, 1.15 * reach)  # zero in the middle: left worse, right better
    axes[0][0].set_yticks(y, [wrap(nm, 38) for nm in names], fontsize=9)
    axes[0][0].set_ylim(-0.6, n - 0.4)
    fig.suptitle(f"Each strategy against {baseline}, year {year} (paired 95% intervals; "
                 "right of the line is better)", fontsize=11)
    return fig


# the figures as PNG bytes (the report's and the page's)
paired_frontier = as_png(paired_frontier_figure)
paired_frontier_by_band = as_png(paired_frontier_by_band_figure)
trajectories = as_png(trajectories_figure)
switches_by_band = as_png(switches_by_band_figure)
teacher_outcomes_by_year = as_png(teacher_outcomes_by_year_figure)
change_bars = as_png(change_bars_figure)
