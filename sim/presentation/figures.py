"""The report's figures, as PNG bytes ready to embed (matplotlib's Agg backend).

Figures that :mod:`sim.analysis.figures` and :mod:`sim.experiments.sensitivity`
already draw are reused through :func:`drawn`, which lets them write into a
temporary folder and returns the bytes. The figures drawn here are the ones a
report adds: paired differences against a baseline arm, trajectories over
years, switches, and teachers' stress and exits by year.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.analysis.figures import plain_text  # noqa: E402
from sim.analysis.summaries import ALL  # noqa: E402

DPI = 100


def png(fig) -> bytes:
    """A figure as PNG bytes (no timestamp in the metadata); closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


@plain_text
def drawn(draw: Callable[..., object], *args, **kwargs) -> bytes:
    """Bytes of a figure that ``draw(*args, path, **kwargs)`` writes to a file path."""
    with tempfile.TemporaryDirectory(prefix="plsim-fig-") as tmp:
        path = Path(tmp) / "figure.png"
        draw(*args, path, **kwargs)
        return path.read_bytes()


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


def _paired_panel(ax, rows: pd.DataFrame, colors: dict) -> None:
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.plot([0], [0], "s", color="0.3")  # the baseline
    for r in rows.itertuples():
        if not np.isfinite(r.growth_sd):
            continue
        ax.errorbar(100 * r.proficient, r.growth_sd,
                    xerr=_err(r.proficient, r.proficient_lo, r.proficient_hi, 100),
                    yerr=_err(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi, 1),
                    fmt="o", capsize=3, color=colors[str(r.arm)], label=str(r.arm))
        ax.annotate(str(r.arm), (100 * r.proficient, r.growth_sd), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.grid(alpha=0.3)


@plain_text
def paired_frontier(contrasts: pd.DataFrame, baseline: str, arms: list[str]) -> bytes:
    """Change in growth (SD) against change in proficiency (points) of each arm versus
    ``baseline`` (the square at 0, 0), all program students; bars: paired 95% intervals."""
    rows = contrasts[contrasts.start_band == ALL]
    fig, ax = plt.subplots(figsize=(7, 5))
    _paired_panel(ax, rows, arm_colors(arms))
    ax.annotate(baseline, (0, 0), textcoords="offset points", xytext=(5, -12), fontsize=8,
                color="0.3")
    year = int(rows.year.iloc[0]) if len(rows) else ""
    ax.set_xlabel(f"change in proficient (percentage points) versus {baseline}")
    ax.set_ylabel(f"change in growth (SD) versus {baseline}")
    ax.set_title(f"Each arm minus {baseline}, same students (year {year}; paired 95% "
                 "intervals)", fontsize=10)
    fig.tight_layout()
    return png(fig)


@plain_text
def paired_frontier_by_band(contrasts: pd.DataFrame, baseline: str, arms: list[str]) -> bytes:
    """The same differences, one panel per starting-achievement band."""
    rows = contrasts[contrasts.start_band != ALL].dropna(subset=["growth_sd"])
    bands = [b for b in contrasts.start_band.cat.categories
             if b != ALL and (rows.start_band == b).any()]
    colors = arm_colors(arms)
    fig, axes = plt.subplots(1, max(1, len(bands)), figsize=(4.2 * max(1, len(bands)), 4.4),
                             squeeze=False)
    for ax, band in zip(axes[0], bands, strict=False):
        _paired_panel(ax, rows[rows.start_band == band], colors)
        ax.set_title(f"started {band}", fontsize=10)
        ax.set_xlabel("change in proficient (points)")
    axes[0][0].set_ylabel(f"change in growth (SD) versus {baseline}")
    fig.suptitle(f"Each arm minus {baseline} by starting band (paired 95% intervals)",
                 fontsize=10)
    fig.tight_layout()
    return png(fig)


@plain_text
def trajectories(summary: pd.DataFrame) -> bytes:
    """Growth (SD) and proficiency (%) by year for each arm, all program students, with
    95% intervals across replicates."""
    s = summary[summary.start_band == ALL]
    arms = [str(a) for a in summary.arm.cat.categories]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
        g = s[s.arm == arm].sort_values("year")
        x = g.year + 0.03 * (i - (len(arms) - 1) / 2)  # side by side: bars do not hide
        for ax, m, f in ((axes[0], "growth_sd", 1), (axes[1], "proficient", 100)):
            lo, hi = g[f"{m}_lo"].to_numpy(float), g[f"{m}_hi"].to_numpy(float)
            mean = g[m].to_numpy(float)
            yerr = None if np.isnan(lo).all() else [f * (mean - lo), f * (hi - mean)]
            ax.errorbar(x, f * mean, yerr=yerr, fmt="o-", capsize=3, color=color,
                        label=arm)
    years = sorted(int(y) for y in s.year.unique())
    for ax, title in zip(axes, ("growth, fall to spring (SD)", "proficient (%)"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(years)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Trajectories over years, students in the program grades (95% intervals)",
                 fontsize=10)
    fig.tight_layout()
    return png(fig)


@plain_text
def switches_by_band(summary: pd.DataFrame, year: int | None = None) -> bytes:
    """Switches between personalized and grade-level content per student-year, by band."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band != ALL)]
    bands = [b for b in summary.start_band.cat.categories
             if b != ALL and (s.start_band == b).any()]
    arms = [str(a) for a in summary.arm.cat.categories]
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
        vals = [s[(s.arm == arm) & (s.start_band == b)].switches.mean() for b in bands]
        ax.bar(np.arange(len(bands)) + i * width, vals, width, label=arm, color=color)
    ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2, bands)
    ax.set_ylabel("switches per student-year")
    ax.set_title(f"On/off switches between personalized and grade-level content (year {year})",
                 fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig)


def teacher_years_means(teacher_years: pd.DataFrame) -> pd.DataFrame:
    """Per arm x year: teachers' mean stress (0-1) and exit rate (share leaving), means
    over replicates of each replicate's mean."""
    per_rep = teacher_years.groupby(["arm", "year", "replicate"], observed=True).agg(
        stress=("stress", "mean"), exit_rate=("exited", "mean")).reset_index()
    return per_rep.groupby(["arm", "year"], observed=True)[["stress", "exit_rate"]].mean(
        ).reset_index()


@plain_text
def teacher_outcomes_by_year(teacher_years: pd.DataFrame) -> bytes:
    """Teachers' mean stress and the share who leave, by year and arm."""
    means = teacher_years_means(teacher_years)
    arms = [str(a) for a in teacher_years.arm.cat.categories]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for arm, color in zip(arms, _colors(len(arms)), strict=True):
        g = means[means.arm == arm].sort_values("year")
        axes[0].plot(g.year, g.stress, "o-", color=color, label=arm)
        axes[1].plot(g.year, 100 * g.exit_rate, "o-", color=color, label=arm)
    for ax, title in zip(axes, ("teachers' mean stress (0-1)", "teachers who leave (%)"),
                         strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(sorted(int(y) for y in means.year.unique()))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Teachers by year (means across replicates)", fontsize=10)
    fig.tight_layout()
    return png(fig)
