"""Figures drawn from the summary table (PNG, matplotlib's Agg backend).

Every figure leaves room for what it writes: legends go below the axes (constrained
layout makes the room), points are marked with their strategy's number (its place in
the scenario, the same number in the legend) and those numbers are moved apart by
adjustText, and a panel whose every series stays the same says "no change" instead of
zooming into a band of rounding noise. ``names`` (label -> the name a person reads)
replaces the arms' labels in legends and titles.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from adjustText import adjust_text  # noqa: E402

from sim.analysis.summaries import ALL  # noqa: E402

SHARE_LIMITS = (-3.0, 103.0)  # a share in percent: the whole range, never a zoom on noise
FLAT = 1e-9  # a series whose values differ by less than this is constant

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


# --- layout helpers (also used by sim.presentation.figures) --------------------------
def new_figure(ncols: int = 1, width: float = 7.0, height: float = 5.0, **kw):
    """A figure with constrained layout (room for a legend placed outside the axes)."""
    return plt.subplots(1, ncols, figsize=(width, height), squeeze=False,
                        layout="constrained", **kw)


def display_name(arm: str, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(str(arm), str(arm))


def keyed_name(i: int, arm: str, names: Mapping[str, str] | None) -> str:
    """'3  Personalized playlist + ...': the number that marks the arm's points."""
    return f"{i + 1}  {display_name(arm, names)}"


def legend_below(fig, handles: list, labels: list[str], ncol: int | None = None) -> None:
    """One legend for the whole figure, below every axes (never over data)."""
    if not handles:
        return
    longest = max(len(s) for s in labels)
    ncol = ncol or (1 if longest > 48 else 2 if longest > 24 else min(4, len(labels)))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8,
               frameon=False)


def freeze(fig) -> None:
    """Lay the figure out now and keep it (texts moved afterwards stay where put)."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def number_points(ax, xs, ys, keys: list[str]) -> list:
    """Mark points with short keys, moved apart so no two overlap (adjustText, after the
    figure is laid out: call :func:`freeze` first)."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    texts = [ax.text(x, y, k, fontsize=9, fontweight="bold", ha="center", va="center",
                     bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                           "alpha": 0.8})
             for x, y, k, good in zip(xs, ys, keys, ok, strict=True) if good]
    if len(texts) > 0:
        adjust_text(texts, x=xs[ok], y=ys[ok], ax=ax, expand=(1.4, 1.6),
                    force_text=(0.4, 0.6), ensure_inside_axes=True, iter_lim=500,
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})
    return texts


def mark_flat(ax, series: list[np.ndarray], share: bool = False, span: float = 1.0) -> bool:
    """A panel whose every series is constant gets "(no change)" in its title and a
    y-axis of at least ``span`` units around its values (a share: 0-100%), not a
    matplotlib zoom of +-0.04; returns whether it was flat."""
    vals = [np.asarray(s, float)[np.isfinite(np.asarray(s, float))] for s in series]
    vals = [v for v in vals if v.size]
    if share:
        ax.set_ylim(*SHARE_LIMITS)
    if not vals or any(np.ptp(v) > FLAT for v in vals):
        return False
    if not share:
        every = np.concatenate(vals)
        mid, half = (every.max() + every.min()) / 2, max(span, np.ptp(every)) / 2 + span / 2
        ax.set_ylim(mid - half, mid + half)
    ax.set_title(f"{ax.get_title()}\n(no change over the years)", fontsize=10)
    return True


def wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


# --- figures ---------------------------------------------------------------------------
def _err(mean, lo, hi, f):
    if np.isnan(lo):
        return None
    return [[f * (mean - lo)], [f * (hi - mean)]]


def _colors(n):
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _errorbars(ax, rows, arms: list[str], names):
    """Each arm's growth against proficiency with 95% intervals; returns the legend's
    handles and labels and the points (x, y, key)."""
    colors = dict(zip(arms, _colors(len(arms)), strict=True))
    handles, labels, points = [], [], []
    for r in rows.itertuples():
        arm = str(r.arm)
        i = arms.index(arm)
        xerr = _err(r.proficient, r.proficient_lo, r.proficient_hi, 100)
        yerr = _err(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi, 1)
        h = ax.errorbar(100 * r.proficient, r.growth_sd, xerr=xerr, yerr=yerr, fmt="o",
                        color=colors[arm], capsize=3)
        handles.append(h)
        labels.append(keyed_name(i, arm, names))
        points.append((100 * r.proficient, r.growth_sd, str(i + 1)))
    return handles, labels, points


def _number(ax, points):
    if points:
        xs, ys, keys = zip(*points, strict=True)
        number_points(ax, xs, ys, list(keys))


def growth_vs_proficiency_figure(summary, year: int | None = None,
                                 names: Mapping[str, str] | None = None):
    """Each arm's mean growth against its proficiency, all program students (a Figure)."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band == ALL)]
    arms = [str(a) for a in summary.arm.cat.categories]
    fig, axes = new_figure(1, 7.5, 6.0)
    ax = axes[0][0]
    handles, labels, points = _errorbars(ax, s, arms, names)
    ax.set_xlabel("proficient on the state test (%)")
    ax.set_ylabel("growth, fall to spring (SD of the state's fall scores)")
    ax.set_title(f"Growth versus proficiency by strategy (year {year}; 95% intervals)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    legend_below(fig, handles, labels)
    freeze(fig)
    _number(ax, points)
    return fig


def growth_vs_proficiency(summary, path: Path, year: int | None = None,
                          names: Mapping[str, str] | None = None) -> Path:
    """Each arm's mean growth against its proficiency, all program students."""
    return _save(growth_vs_proficiency_figure(summary, year, names), path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _by_band(summary, year: int | None):
    """(year, the year's rows by band, the bands present)."""
    year = int(summary.year.max()) if year is None else year
    s = summary[(summary.year == year) & (summary.start_band != ALL)]
    bands = [b for b in s.start_band.cat.categories if b != ALL and (s.start_band == b).any()]
    return year, s, bands


def growth_vs_proficiency_by_band_figure(summary, year: int | None = None,
                                         names: Mapping[str, str] | None = None):
    """The same, one panel per starting-achievement band (a Figure)."""
    year, s, bands = _by_band(summary, year)
    arms = [str(a) for a in summary.arm.cat.categories]
    fig, axes = new_figure(max(1, len(bands)), 4.2 * max(1, len(bands)), 5.2)
    panels = []
    handles, labels = [], []
    for ax, band in zip(axes[0], bands, strict=False):
        h, lab, points = _errorbars(ax, s[s.start_band == band], arms, names)
        if len(h) > len(handles):
            handles, labels = h, lab
        panels.append((ax, points))
        ax.set_title(f"started {band}", fontsize=10)
        ax.set_xlabel("proficient (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("growth (SD of the state's fall scores)")
    fig.suptitle(f"Growth versus proficiency by starting band (year {year}; 95% intervals)",
                 fontsize=11)
    legend_below(fig, handles, labels)
    freeze(fig)
    for ax, points in panels:
        _number(ax, points)
    return fig


def growth_vs_proficiency_by_band(summary, path: Path, year: int | None = None,
                                  names: Mapping[str, str] | None = None) -> Path:
    """The same, one panel per starting-achievement band."""
    return _save(growth_vs_proficiency_by_band_figure(summary, year, names), path)


def time_use_by_band_figure(summary, year: int | None = None,
                            names: Mapping[str, str] | None = None):
    """Share of time on grade-level content and on already-mastered content, by band."""
    year, s, bands = _by_band(summary, year)
    arms = list(s.arm.cat.categories)
    fig, axes = new_figure(2, 11, 5.0)
    width = 0.8 / len(arms)
    handles = []
    for ax, metric, title in ((axes[0][0], "grade_level_share", "time on grade-level content"),
                              (axes[0][1], "mastered_share",
                               "time on already-mastered content")):
        handles = []
        for i, (arm, color) in enumerate(zip(arms, _colors(len(arms)), strict=True)):
            vals = [s[(s.arm == arm) & (s.start_band == b)][metric].mean() for b in bands]
            handles.append(ax.bar(np.arange(len(bands)) + i * width, np.array(vals) * 100,
                                  width, color=color))
        ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2, bands)
        ax.set_ylabel("% of days")
        ax.set_ylim(0, 103)
        ax.set_title(f"{title} (year {year})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    legend_below(fig, handles, [display_name(a, names) for a in arms])
    return fig


def time_use_by_band(summary, path: Path, year: int | None = None,
                     names: Mapping[str, str] | None = None) -> Path:
    """Share of time on grade-level content and on already-mastered content, by band."""
    return _save(time_use_by_band_figure(summary, year, names), path)


def ratings_vs_true_effect_figure(teacher_years, names: Mapping[str, str] | None = None):
    """True effect of the teachers in each rating band, one panel per arm (a Figure)."""
    arms = list(teacher_years.arm.cat.categories)
    bands = list(teacher_years.rating.cat.categories)
    # at most four panels a row: seven strategies in one row shrank the text past reading
    cols = max(1, min(4, len(arms)))
    rows = -(-len(arms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.0 * rows), squeeze=False,
                             sharey=True, layout="constrained")
    for ax in axes.ravel()[len(arms):]:
        ax.set_visible(False)
    for ax, arm in zip(axes.ravel(), arms, strict=False):
        t = teacher_years[teacher_years.arm == arm]
        data = [t.loc[t.rating == b, "true_effect"].to_numpy() for b in bands]
        ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(range(1, len(bands) + 1), [b.replace(" ", "\n") for b in bands],
                      fontsize=8)
        ax.set_title(wrap(display_name(arm, names), 26), fontsize=9)
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("true teacher effect (student SD)")
    fig.suptitle("Rating band versus true effectiveness")
    return fig


def ratings_vs_true_effect(teacher_years, path: Path,
                           names: Mapping[str, str] | None = None) -> Path:
    """True effect of the teachers in each rating band, one panel per arm."""
    return _save(ratings_vs_true_effect_figure(teacher_years, names), path)


def school_policies_by_year_figure(school_summary, names: Mapping[str, str] | None = None,
                                   program_arms: list[str] | None = None):
    """Share of schools with a test-prep window and with the program active, and
    proficiency, by year (a Figure). ``program_arms``: the arms that run a program (the
    only ones in the program panel; default every arm)."""
    fig, axes = new_figure(3, 13, 4.8)
    axes = axes[0]
    metrics = ("window_share", "program_active_share", "proficiency")
    series = {m: [] for m in metrics}
    handles, labels = [], []
    arms = [str(a) for a in dict.fromkeys(school_summary.arm.astype(str))]
    for (arm, g), color in zip(school_summary.groupby("arm", observed=True, sort=False),
                               _colors(len(arms)), strict=True):
        for ax, metric in zip(axes, metrics, strict=True):
            if metric == "program_active_share" and program_arms is not None and \
                    str(arm) not in program_arms:
                continue
            (line,) = ax.plot(g.year, 100 * g[metric], "o-", color=color)
            series[metric].append(100 * g[metric].to_numpy(float))
            if metric == "window_share":
                handles.append(line)
                labels.append(display_name(arm, names))
    for ax, metric, title in zip(axes, metrics, ("schools with a test-prep window (%)",
                                                 "schools with the program active (%)",
                                                 "proficient, program grades (%)"),
                                 strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("year")
        ax.set_xticks(sorted(school_summary.year.unique()))
        ax.grid(alpha=0.3)
        mark_flat(ax, series[metric], share=metric != "proficiency", span=10.0)
    legend_below(fig, handles, labels)
    return fig


def school_policies_by_year(school_summary, path: Path, names: Mapping[str, str] | None = None,
                            program_arms: list[str] | None = None) -> Path:
    """Share of schools with a test-prep window and with the program active, by year."""
    return _save(school_policies_by_year_figure(school_summary, names, program_arms), path)


def figure_jobs(summary, directory: Path, teacher_years=None,
                school_summary=None) -> list[tuple[Callable, tuple]]:
    """``(draw, args)`` of every figure of a run, each drawing into ``directory``, the
    slowest first (the bands' panels, then the ratings' panels), so that on several
    processes the longest does not start last."""
    jobs = [(growth_vs_proficiency_by_band,
             (summary, directory / "growth_vs_proficiency_by_band.png"))]
    if teacher_years is not None and len(teacher_years):
        jobs.append((ratings_vs_true_effect,
                     (teacher_years, directory / "ratings_vs_true_effect.png")))
    jobs += [(growth_vs_proficiency, (summary, directory / "growth_vs_proficiency.png")),
             (time_use_by_band, (summary, directory / "time_use_by_band.png"))]
    if school_summary is not None and len(school_summary):
        jobs.append((school_policies_by_year,
                     (school_summary, directory / "school_policies_by_year.png")))
    return jobs


@plain_text
def draw_job(job: tuple[Callable, tuple]) -> Path:
    """Draw one of ``figure_jobs`` (module-level: a process pool can run it)."""
    draw, args = job
    return draw(*args)


FIGURE_ORDER = ("growth_vs_proficiency.png", "growth_vs_proficiency_by_band.png",
                "time_use_by_band.png", "ratings_vs_true_effect.png",
                "school_policies_by_year.png")  # the order a run's manifest lists them


@plain_text
def draw_all(summary, directory: Path, teacher_years=None, school_summary=None,
             map_jobs: Callable = map) -> list[Path]:
    """Every figure of a run, into ``directory``; ``map_jobs(draw_job, jobs)`` draws them
    (``map``: here, one after another; an executor's ``map_unordered``: on its processes,
    the same files)."""
    directory.mkdir(parents=True, exist_ok=True)
    drawn = set(map_jobs(draw_job, figure_jobs(summary, directory, teacher_years,
                                               school_summary)))
    return [directory / name for name in FIGURE_ORDER if directory / name in drawn]
