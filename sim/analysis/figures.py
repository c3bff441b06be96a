"""Figures drawn from the summary table (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.analysis.summaries import ALL  # noqa: E402

# Names and labels (a sweep's or spec's name, a parameter's path, an objective) are data,
# drawn as the characters they are: never parsed as mathtext ("$\\foo$" is bad TeX and
# failed the whole figure) or TeX. plsim's own texts use no mathtext and no axis is
# logarithmic (whose tick labels would need it).
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def plain_text(draw):
    """Decorator: ``draw`` makes (and saves) its figure with every text plain: texts read
    ``text.parse_math`` when created, tick labels when drawn, so the context spans both."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(PLAIN_TEXT):
            return draw(*args, **kwargs)
    return wrapper


def _errorbars(ax, rows, colors):
    for r, color in zip(rows.itertuples(), colors, strict=False):
        xerr = _err(r.proficient, r.proficient_lo, r.proficient_hi, 100)
        yerr = _err(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi, 1)
        ax.errorbar(100 * r.proficient, r.growth_sd, xerr=xerr, yerr=yerr, fmt="o",
                    color=color, capsize=3, label=str(r.arm))
        ax.annotate(str(r.arm), (100 * r.proficient, r.growth_sd), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)


def _err(mean, lo, hi, f):
    if np.isnan(lo):
        return None
    return [[f * (mean - lo)], [f * (hi - mean)]]


def _colors(n):
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def growth_vs_proficiency(summary, path: Path, year: int | None = None) -> Path:
    """Each arm's mean growth against its proficiency, all program students."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band == ALL)]
    fig, ax = plt.subplots(figsize=(7, 5))
    _errorbars(ax, s, _colors(len(s)))
    ax.set_xlabel("proficient on the state test (%)")
    ax.set_ylabel("growth, fall to spring (SD of the state's fall scores)")
    ax.set_title(f"Growth versus proficiency by arm (year {year}; 95% intervals)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _by_band(summary, year: int | None):
    """(year, the year's rows by band, the bands present)."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band != ALL)]
    bands = [b for b in s.start_band.cat.categories if b != ALL and (s.start_band == b).any()]
    return year, s, bands


def growth_vs_proficiency_by_band(summary, path: Path, year: int | None = None) -> Path:
    """The same, one panel per starting-achievement band."""
    year, s, bands = _by_band(summary, year)
    fig, axes = plt.subplots(1, len(bands), figsize=(4.2 * len(bands), 4.4), squeeze=False)
    for ax, band in zip(axes[0], bands, strict=True):
        b = s[s.start_band == band]
        _errorbars(ax, b, _colors(len(b)))
        ax.set_title(f"started {band}")
        ax.set_xlabel("proficient (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("growth (SD of the state's fall scores)")
    fig.suptitle(f"Growth versus proficiency by starting band (year {year}; 95% intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def time_use_by_band(summary, path: Path, year: int | None = None) -> Path:
    """Share of time on grade-level content and on already-mastered content, by band."""
    year, s, bands = _by_band(summary, year)
    arms = list(s.arm.cat.categories)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(arms)
    for ax, metric, title in ((axes[0], "grade_level_share", "time on grade-level content"),
                              (axes[1], "mastered_share", "time on already-mastered content")):
        for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
            vals = [s[(s.arm == arm) & (s.start_band == b)][metric].mean() for b in bands]
            ax.bar(np.arange(len(bands)) + i * width, np.array(vals) * 100, width,
                   label=arm, color=color)
        ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2, bands)
        ax.set_ylabel("% of days")
        ax.set_title(title)
    axes[1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ratings_vs_true_effect(teacher_years, path: Path) -> Path:
    """True effect of the teachers in each rating band, one panel per arm."""
    arms = list(teacher_years.arm.cat.categories)
    bands = list(teacher_years.rating.cat.categories)
    fig, axes = plt.subplots(1, len(arms), figsize=(3.6 * len(arms), 4), squeeze=False,
                             sharey=True)
    for ax, arm in zip(axes[0], arms, strict=True):
        t = teacher_years[teacher_years.arm == arm]
        data = [t.loc[t.rating == b, "true_effect"].to_numpy() for b in bands]
        ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(range(1, len(bands) + 1), [b.replace(" ", "\n") for b in bands],
                      fontsize=8)
        ax.set_title(arm, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("true teacher effect (student SD)")
    fig.suptitle("Rating versus true effectiveness")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def school_policies_by_year(school_summary, path: Path) -> Path:
    """Share of schools with a test-prep window and with the program active, by year."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for (arm, g), color in zip(school_summary.groupby("arm", observed=True, sort=False),
                               _colors(school_summary.arm.nunique()), strict=True):
        for ax, metric in zip(axes, ("window_share", "program_active_share", "proficiency"),
                              strict=True):
            ax.plot(g.year, 100 * g[metric], "o-", color=color, label=str(arm))
    for ax, title in zip(axes, ("schools with a test-prep window (%)",
                                "schools with the program active (%)",
                                "proficient, program grades (%)"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(sorted(school_summary.year.unique()))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@plain_text
def draw_all(summary, directory: Path, teacher_years=None, school_summary=None) -> list[Path]:
    """Every figure of a run, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [growth_vs_proficiency(summary, directory / "growth_vs_proficiency.png"),
             growth_vs_proficiency_by_band(summary,
                                           directory / "growth_vs_proficiency_by_band.png"),
             time_use_by_band(summary, directory / "time_use_by_band.png")]
    if teacher_years is not None and len(teacher_years):
        paths.append(ratings_vs_true_effect(teacher_years,
                                            directory / "ratings_vs_true_effect.png"))
    if school_summary is not None and len(school_summary):
        paths.append(school_policies_by_year(school_summary,
                                             directory / "school_policies_by_year.png"))
    return paths
