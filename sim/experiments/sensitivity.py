"""Sensitivity of a finished sweep: Sobol or Morris indices, and outcome-by-parameter summaries.

Both commands read a sweep's output directory (``plsim sweep --out DIR``),
average each outcome over replicates per design sample, and write under DIR:

* ``plsim sensitivity DIR`` (sobol or morris designs only): SALib's indices for
  one arm x year x start band, printed and written to
  ``DIR/sensitivity/<arm>_y<year>_<band>.csv``, ``.txt`` (the printed text) and
  ``.png``. Sobol: S1 (share of the outcome's variance due to the parameter alone)
  and ST (including its interactions), unitless, with SALib's 95% bootstrap
  half-widths (``S1_conf``) and percentile bootstrap intervals (``S1_low``,
  ``S1_high``; 1000 resamples of the design's base rows), and a convergence check
  per outcome (``converged``, ``n_needed``): a first-order index above the total
  one, or a half-width above ±0.1, prints a warning with the N that would bring
  the half-widths to ±0.1 (they shrink roughly as 1/sqrt(N)). Morris: mu* (mean
  absolute elementary effect), sigma (their SD) and mu (signed mean), in the
  outcome's units per the parameter's full range.
* ``plsim sweep-summary DIR`` (any design): each outcome's mean by parameter bin
  and arm, ``DIR/summary/sweep_summary.csv``, and one figure per outcome,
  ``DIR/summary/<outcome>.png``.

A missing or unfinished sweep, or an unknown outcome, arm, year or band, raises
:class:`sim.config.scenario.ScenarioError` (the CLI exits with status 2).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from sim.analysis.figures import plain_text  # noqa: E402
from sim.analysis.summaries import ALL  # noqa: E402
from sim.config.scenario import ScenarioError  # noqa: E402
from sim.engine.outcomes import BANDS  # noqa: E402
from sim.experiments.storage import atomic_write, save_figure  # noqa: E402
from sim.experiments.sweeps import Sweep, finished_runs, read_outcomes  # noqa: E402

INDEX_DESIGNS = ("sobol", "morris")
SOBOL_COLUMNS = ("S1", "S1_conf", "ST", "ST_conf")
SOBOL_INTERVALS = ("S1_low", "S1_high", "ST_low", "ST_high")  # percentile bootstrap, 95%
RESAMPLES = 1000  # bootstrap resamples of the design rows (SALib's default is 100)
HALF_WIDTH_MAX = 0.1  # a Sobol index known to within ± this (95%) counts as converged
MORRIS_COLUMNS = ("mu_star", "mu_star_conf", "sigma", "mu")
BINS = 5  # quantile bins of a range parameter in the sweep summary
UNSEEDED_SOBOL = 2**31 - 1  # SALib's sobol treats seed 0 as "no seed": use this instead
OUTCOME_LABELS = {
    "window_share": "share of schools with a test-prep window (0-1)",
    "program_active_share": "share of schools still running the program (0-1)",
    "teacher_exit_rate": "share of teachers who leave (0-1)",
    "teacher_stress": "teachers' mean stress (0-1)",
    "va_true_corr": "correlation of value-added estimates with true effects",
    "growth_sd": "growth, fall to spring (SD of the state's fall scores)",
    "proficient": "share proficient on the state test (0-1)",
    "grade_level_share": "share of days on grade-level content (0-1)",
    "mastered_share": "share of days on already-mastered content (0-1)",
    "switches": "on/off content switches per student-year (count)",
    "engagement": "mean daily engagement (0-1)",
}


@dataclass(frozen=True)
class SweepData:
    """A finished sweep read from its directory.

    Attributes:
        dir: the sweep's output directory.
        manifest: ``manifest.json`` as data.
        sweep: the resolved sweep (parameters, design, outcomes, seed).
        table: every run's outcomes joined to its experiment row (``read_outcomes``).
    """

    dir: Path
    manifest: dict
    sweep: Sweep
    table: pd.DataFrame

    @property
    def arms(self) -> list[str]:
        """Arm labels in the scenario's order."""
        return [a["label"] for a in self.manifest["base_scenario"]["arms"]]

    @property
    def samples(self) -> int:
        """Number of design samples (rows of the design matrix)."""
        return int(self.manifest["samples"])


# --- reading and selecting ----------------------------------------------------------
def load_finished(directory: str | Path) -> SweepData:
    """Read a sweep directory whose every run has finished; ScenarioError otherwise."""
    d = Path(directory)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        raise ScenarioError(f"{d}: not a sweep directory (no manifest.json); "
                            f"run `plsim sweep SWEEP.toml --out {d}` first")
    try:
        manifest = json.loads(manifest_path.read_text())
        sweep = Sweep.model_validate(manifest["sweep"])
        runs = int(manifest["runs"])
        for key in ("problem", "samples", "base_scenario"):
            manifest[key]
    except (ValueError, KeyError, TypeError, ValidationError) as err:
        raise ScenarioError(f"{d}: manifest.json is not a readable sweep manifest "
                            f"({type(err).__name__})") from None
    done = len(finished_runs(d) & set(range(runs)))
    if done < runs:
        raise ScenarioError(f"{d}: sweep unfinished: {done} of {runs} runs finished; "
                            f"complete it with `plsim sweep SWEEP.toml --out {d} --resume`")
    try:
        table = read_outcomes(d)
    except (OSError, ValueError) as err:  # pyarrow's errors derive from these
        raise ScenarioError(f"{d}: cannot read the sweep's tables ({type(err).__name__})"
                            ) from None
    return SweepData(d, manifest, sweep, table)


def choose_outcomes(data: SweepData, outcome: str | None) -> list[str]:
    """The outcomes to analyse: one named (checked) or every recorded outcome."""
    recorded = list(data.sweep.outcomes)
    if outcome is None:
        return recorded
    if outcome not in recorded:
        raise ScenarioError(f"{data.dir}: --outcome {outcome!r}: not recorded by this sweep; "
                            f"recorded: {', '.join(recorded)}")
    return [outcome]


def choose_arm(data: SweepData, arm: str | None) -> str:
    """The arm to analyse: one named (checked) or the scenario's last arm."""
    if arm is None:
        return data.arms[-1]
    if arm not in data.arms:
        raise ScenarioError(f"{data.dir}: --arm {arm!r}: no such arm; arms: "
                            f"{', '.join(data.arms)}")
    return arm


def choose_year(data: SweepData, year: int | None) -> int:
    """The year to analyse: one named (checked) or the last year every run reached."""
    years = sorted(int(y) for y in data.table["year"].unique())
    if year is None:
        return int(data.table.groupby("run_id")["year"].max().min())
    if year not in years:
        raise ScenarioError(f"{data.dir}: --year {year}: not in this sweep; years: "
                            f"{', '.join(map(str, years))}")
    return int(year)


def choose_band(data: SweepData, band: str | None) -> str:
    """The start band to analyse (default all students), checked."""
    bands = [ALL, *BANDS]
    band = ALL if band is None else band
    if band not in bands:
        raise ScenarioError(f"{data.dir}: --band {band!r}: no such start band; bands: "
                            f"{', '.join(repr(b) for b in bands)}")
    return band


def sample_means(data: SweepData, outcomes: list[str], arm: str, year: int,
                 band: str) -> pd.DataFrame:
    """Each outcome averaged over replicates, one row per design sample (0..samples-1)."""
    t = data.table
    rows = t[(t["arm"] == arm) & (t["year"] == year) & (t["start_band"] == band)]
    return rows.groupby("sample")[outcomes].mean().reindex(range(data.samples))


def design_coordinates(data: SweepData) -> np.ndarray:
    """The raw design coordinates (``x:`` columns), one row per sample in sample order."""
    cols = [f"x:{name}" for name in data.manifest["problem"]["names"]]
    x = data.table.groupby("sample")[cols].first().reindex(range(data.samples))
    return x.to_numpy(float)


def usable_outcomes(means: pd.DataFrame, design: str) -> tuple[list[str], list[str]]:
    """Outcomes fit for analysis, and notes on those dropped (NaN, or constant for Sobol)."""
    keep, notes = [], []
    for o in means.columns:
        y = means[o].to_numpy(float)
        if np.isnan(y).any():
            notes.append(f"{o}: no value for {int(np.isnan(y).sum())} of {y.size} design "
                         "samples (e.g. a band with no students)")
        elif design == "sobol" and np.ptp(y) == 0:
            notes.append(f"{o}: the same in every design sample (no variance to apportion)")
        else:
            keep.append(o)
    return keep, notes


# --- indices ------------------------------------------------------------------------
def sobol_indices(problem: dict, y: np.ndarray, seed: int) -> pd.DataFrame:
    """SALib Sobol first-order and total indices (unitless), one row per parameter.

    SALib bootstraps the N base rows (``RESAMPLES`` times); ``S1_conf`` / ``ST_conf`` are
    its 95% half-widths (1.96 x the bootstrap SD) and ``S1_low`` ... ``ST_high`` the
    percentile bootstrap interval (2.5% and 97.5% of the resampled indices), which need
    not be symmetric.

    Args:
        problem: the SALib problem of the sweep.
        y: one outcome per design sample, in sample order (N x (D + 2) values).
        seed: the sweep seed (bootstrap of the confidence intervals).
    """
    from SALib.analyze import sobol

    res = sobol.analyze(copy.deepcopy(problem), y, calc_second_order=False,
                        num_resamples=RESAMPLES, keep_resamples=True,
                        seed=seed or UNSEEDED_SOBOL)
    out = pd.DataFrame({c: np.asarray(res[c], float) for c in SOBOL_COLUMNS},
                       index=pd.Index(problem["names"], name="parameter"))
    for name in ("S1", "ST"):
        draws = np.asarray(res[f"{name}_conf_all"], float)  # resamples x parameters
        out[f"{name}_low"] = np.nanquantile(draws, 0.025, axis=0)
        out[f"{name}_high"] = np.nanquantile(draws, 0.975, axis=0)
    return out


def sobol_base_rows(problem: dict, y_size: int) -> int:
    """N, the Sobol design's base rows: ``y_size / (D + 2)`` (no second-order indices)."""
    return y_size // (len(problem["names"]) + 2)


def rows_for_half_width(n: int, half: float, target: float = HALF_WIDTH_MAX) -> int:
    """Base rows N after which a half-width ``half`` seen at ``n`` would shrink below
    ``target``: bootstrap half-widths of Sobol estimators shrink roughly as 1/sqrt(N), so
    N x (half / target)^2, rounded up to a power of two (what Sobol sequences want)."""
    need = n * (half / target) ** 2
    return int(2 ** np.ceil(np.log2(max(need, n, 1))))


def convergence_notes(result: pd.DataFrame, n: int, dims: int,
                      target: float = HALF_WIDTH_MAX) -> dict[str, tuple[str, int]]:
    """Signs that Sobol estimates have not converged: outcome -> (note in words, the N
    for a half-width of ``target``), for the outcomes that show one.

    Two signs: a first-order index above the total one (impossible for the true indices,
    which satisfy S1 <= ST), and a 95% half-width above ``target``. Each note says what
    a larger N would do: the half-width shrinks roughly as 1/sqrt(N), so the note gives
    the N (and the design points, N x (D + 2)) for a half-width of ``target``.
    """
    notes = {}
    for outcome, g in result.groupby("outcome", sort=False):
        above = g[g["S1"] > g["ST"]]
        parts = [f"first order above total for {r.parameter} (S1 {r.S1:.3g} > ST {r.ST:.3g})"
                 for r in above.itertuples()]
        half = float(np.nanmax(g[["S1_conf", "ST_conf"]].to_numpy(float)))
        if half > target:
            parts.append(f"intervals up to ±{half:.2g} (wider than ±{target:g})")
        if not parts:
            continue
        need = rows_for_half_width(n, max(half, target))
        notes[outcome] = (f"{outcome}: not converged at N = {n}: {'; '.join(parts)}. "
                          f"Half-widths shrink roughly as 1/sqrt(N): for ±{target:g}, about "
                          f"N = {need} ({need * (dims + 2)} design points, each x the "
                          "replicates).", need)
    return notes


def morris_indices(problem: dict, x: np.ndarray, y: np.ndarray, seed: int,
                   levels: int = 4) -> pd.DataFrame:
    """SALib Morris screening measures, one row per parameter.

    mu*, sigma and mu are in the outcome's units per the parameter's full range.

    Args:
        problem: the SALib problem of the sweep.
        x: raw design coordinates, one row per sample, in sample order.
        y: one outcome per design sample, in sample order.
        seed: the sweep seed (bootstrap of the confidence interval of mu*).
        levels: the design's grid levels (``morris_levels`` of the sweep).
    """
    from SALib.analyze import morris

    res = morris.analyze(copy.deepcopy(problem), x, y, num_levels=levels, seed=seed)
    return pd.DataFrame({c: np.asarray(res[c], float) for c in MORRIS_COLUMNS},
                        index=pd.Index(problem["names"], name="parameter"))


def indices(data: SweepData, means: pd.DataFrame, outcomes: list[str]) -> pd.DataFrame:
    """Indices of every outcome, long: outcome, parameter, then the design's columns."""
    problem, seed = data.manifest["problem"], data.sweep.seed
    if data.sweep.design == "sobol":
        frames = {o: sobol_indices(problem, means[o].to_numpy(float), seed) for o in outcomes}
    else:
        x = design_coordinates(data)
        levels = data.sweep.morris_levels
        frames = {o: morris_indices(problem, x, means[o].to_numpy(float), seed, levels)
                  for o in outcomes}
    return indices_frame(frames)


def indices_frame(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-outcome index tables (indexed by parameter) as one long table: outcome,
    parameter, then the index columns."""
    return pd.concat(frames, names=["outcome"]).reset_index()


# --- sensitivity: text, file, figure ------------------------------------------------
def slug(text: str) -> str:
    """A file-name-safe form of a label: ``'3+ below'`` -> ``'3plus-below'``."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text.replace("+", "plus")).strip("-").lower()


def _pm(mean: float, half: float) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3g}" if np.isnan(half) else f"{mean:.3g} ± {half:.2g}"


def _iv(mean: float, lo: float, hi: float) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3g}" if np.isnan(lo) else f"{mean:.3g} [{lo:.2g}, {hi:.2g}]"


def format_indices(result: pd.DataFrame, design: str, header: str) -> str:
    """A plain table per outcome: parameter, indices with their 95% half-widths."""
    if design == "sobol":
        cols = {"S1": lambda r: _iv(r.S1, r.S1_low, r.S1_high),
                "ST": lambda r: _iv(r.ST, r.ST_low, r.ST_high)}
        legend = ("S1: share of the outcome's variance due to the parameter alone; ST: "
                  "including its interactions (small negative values are estimation noise). "
                  f"Brackets: 95% percentile bootstrap interval ({RESAMPLES} resamples of the "
                  "design's base rows).")
    else:
        cols = {"mu*": lambda r: _pm(r.mu_star, r.mu_star_conf),
                "sigma": lambda r: _pm(r.sigma, np.nan), "mu": lambda r: _pm(r.mu, np.nan)}
        legend = ("mu*: mean absolute elementary effect, in the outcome's units per the "
                  "parameter's full range; sigma: their SD (nonlinearity or interactions); "
                  "mu: signed mean. ± 95% bootstrap half-width.")
    width = max(12, *(len(p) for p in result["parameter"])) + 2
    lines = [header, legend]
    for outcome, g in result.groupby("outcome", sort=False):
        lines += ["", f"{outcome} — {OUTCOME_LABELS.get(outcome, outcome)}",
                  f"{'parameter':<{width}}" + "".join(f"{c:<24}" for c in cols)]
        lines += [f"{r.parameter:<{width}}" + "".join(f"{f(r):<24}" for f in cols.values())
                  for r in g.itertuples()]
    return "\n".join(lines)


@plain_text
def indices_figure(result: pd.DataFrame, design: str, title: str, path: Path) -> Path:
    """Bars per parameter, one panel per outcome: S1 and ST (error bars: 95% half-widths),
    or mu* (error bars) and sigma; written atomically."""
    outcomes = list(dict.fromkeys(result["outcome"]))
    names = list(dict.fromkeys(result["parameter"]))
    bars = ((("S1", "S1_conf"), ("ST", "ST_conf")) if design == "sobol"
            else (("mu_star", "mu_star_conf"), ("sigma", None)))
    ncols = min(3, len(outcomes))
    nrows = -(-len(outcomes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(
        4.2 * ncols + 2.5, nrows * max(2.6, 1.2 + 0.6 * len(names))))
    pos = np.arange(len(names))
    for k, (ax, outcome) in enumerate(zip(axes.flat, outcomes, strict=False)):
        g = result[result["outcome"] == outcome].set_index("parameter").reindex(names)
        for i, (col, conf) in enumerate(bars):
            err = None if conf is None else g[conf].to_numpy(float)
            ax.barh(pos + (i - 0.5) * 0.38, g[col], 0.38, xerr=err, capsize=3,
                    label=col.replace("_star", "*"))
        ax.set_yticks(pos, names if k % ncols == 0 else [""] * len(names))
        ax.invert_yaxis()
        ax.set_title(outcome, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.flat[len(outcomes):]:
        ax.set_visible(False)
    return _save(fig, axes, title, path)


def _save(fig, axes, title: str, path: Path) -> Path:
    """Legend, title and an atomic PNG write of a figure of panels."""
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def main_sensitivity(args) -> int:
    """``plsim sensitivity DIR``: Sobol or Morris indices of a finished sweep.

    Args:
        args: ``dir``, ``outcome`` (None = every recorded), ``arm`` (None = the last),
            ``year`` (None = the last), ``band`` (default all students).

    Returns:
        0; bad input raises ScenarioError.
    """
    data = load_finished(args.dir)
    design = data.sweep.design
    if design not in INDEX_DESIGNS:
        raise ScenarioError(f"{data.dir}: design '{design}': sensitivity indices need a sobol "
                            f"or morris design; use `plsim sweep-summary {data.dir}` for "
                            "outcomes against parameters")
    outcomes = choose_outcomes(data, args.outcome)
    arm, year = choose_arm(data, args.arm), choose_year(data, args.year)
    band = choose_band(data, getattr(args, "band", None))
    means = sample_means(data, outcomes, arm, year, band)
    keep, notes = usable_outcomes(means, design)
    for note in notes:
        print(f"note: {note}; skipped")
    if not keep:
        raise ScenarioError(f"{data.dir}: no outcome can be analysed for arm '{arm}', year "
                            f"{year}, {band} ({'; '.join(notes)})")
    result = indices(data, means, keep)
    where = f"arm '{arm}', year {year}, {band}"
    reps = data.sweep.replicates
    base = "N" if design == "sobol" else "trajectories"
    header = (f"{design.capitalize()} indices of sweep '{data.sweep.name}' ({data.samples} "
              f"design points, {base} = {data.sweep.samples}, x {reps} replicate(s) averaged), "
              f"{where}.")
    text = format_indices(result, design, header)
    if design == "sobol":
        notes = convergence_notes(result, data.sweep.samples, len(data.sweep.parameters))
        result = result.assign(
            converged=~result["outcome"].isin(list(notes)),
            n_needed=[notes.get(o, ("", data.sweep.samples))[1] for o in result["outcome"]])
        text += "\n\n" + ("\n".join(f"warning: {n}" for n, _ in notes.values()) if notes
                           else "Converged: every S1 <= ST and every half-width within "
                                f"±{HALF_WIDTH_MAX:g}.")
    print(text)
    stem = data.dir / "sensitivity" / f"{slug(arm)}_y{year}_{slug(band)}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    table = result.assign(design=design, arm=arm, year=year, start_band=band)
    table = table[["design", "arm", "year", "start_band", *result.columns]]
    atomic_write(stem.with_suffix(".csv"), lambda p: table.to_csv(p, index=False))
    atomic_write(stem.with_suffix(".txt"), lambda p: p.write_text(text + "\n"))
    indices_figure(result, design, f"{data.sweep.name}: {design} indices, {where}",
                   stem.with_suffix(".png"))
    print(f"\nWrote {stem.with_suffix('.csv')}, {stem.with_suffix('.txt')} and "
          f"{stem.with_suffix('.png')}")
    return 0


# --- sweep summary -------------------------------------------------------------------
def _fmt(v: float) -> str:
    return f"{v:.3g}"


def parameter_bins(sweep: Sweep, per_sample: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per parameter, indexed by sample: ``bin`` (ordered label) and ``x`` (plot position).

    Ranges with more than ``BINS`` distinct values fall into quantile bins labelled by
    the values they hold; other ranges and value lists get one bin per value (``x``
    of a value list is the value's index).
    """
    out = {}
    for p in sweep.parameters:
        if p.is_range:
            v = per_sample[p.path].astype(float)
            if v.nunique() > BINS:
                code = pd.Series(pd.qcut(v, BINS, labels=False, duplicates="drop"), v.index)
            else:
                code = v.rank(method="dense")
            lo = v.groupby(code).transform("min").map(_fmt)
            hi = v.groupby(code).transform("max").map(_fmt)
            label = lo.where(lo == hi, "[" + lo + ", " + hi + "]")
            order = label.groupby(code).first().sort_index().tolist()
            x = v
        else:
            names = list(dict.fromkeys(str(val) for val in p.values))
            raw = np.floor(per_sample[f"x:{p.path}"].to_numpy(float)).astype(int)
            idx = np.minimum(raw, len(p.values) - 1)
            label = pd.Series(np.array([str(val) for val in p.values], object)[idx],
                              per_sample.index)
            order, x = names, label.map({n: i for i, n in enumerate(names)}).astype(float)
        out[p.path] = pd.DataFrame({"bin": pd.Categorical(label, categories=order,
                                                          ordered=True), "x": x})
    return out


def summary_table(means: pd.DataFrame, bins: dict[str, pd.DataFrame],
                  outcomes: list[str]) -> pd.DataFrame:
    """Long table: outcome, parameter, bin, x_mean, arm, mean (of sample means), n (samples)."""
    frames = []
    for path, b in bins.items():
        joined = means.join(b, on="sample")
        agg = {"x_mean": ("x", "mean"), "n": ("sample", "size"),
               **{o: (o, "mean") for o in outcomes}}
        stats = joined.groupby(["bin", "arm"], observed=True).agg(**agg).reset_index()
        long = stats.melt(id_vars=["bin", "arm", "x_mean", "n"], value_vars=outcomes,
                          var_name="outcome", value_name="mean")
        frames.append(long.assign(parameter=path, bin=long["bin"].astype(str)))
    out = pd.concat(frames, ignore_index=True)
    return out[["outcome", "parameter", "bin", "x_mean", "arm", "mean", "n"]]


def format_summary_table(table: pd.DataFrame, header: str) -> str:
    """Per outcome and parameter: bins down, arms across, mean of the sample means."""
    lines = [header]
    for (outcome, path), g in table.groupby(["outcome", "parameter"], sort=False):
        wide = g.pivot_table(index="bin", columns="arm", values="mean", sort=False)
        wide["samples"] = g.groupby("bin", sort=False)["n"].max()
        lines += ["", f"{outcome} — {OUTCOME_LABELS.get(outcome, outcome)}, by {path}",
                  wide.to_string(float_format=_fmt)]
    return "\n".join(lines)


@plain_text
def summary_figure(means: pd.DataFrame, bins: dict[str, pd.DataFrame], table: pd.DataFrame,
                   sweep: Sweep, outcome: str, arms: list[str], title: str, path: Path) -> Path:
    """One panel per parameter: sample means against the parameter (one colour per arm)
    with the binned means as a line; written atomically."""
    n = len(bins)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(4.3 * ncols, 3.6 * nrows))
    colors = plt.get_cmap("tab10")
    by_path = {p.path: p for p in sweep.parameters}
    for ax, (p_path, b) in zip(axes.flat, bins.items(), strict=False):
        joined = means.join(b, on="sample")
        lines = table[(table["outcome"] == outcome) & (table["parameter"] == p_path)]
        for i, arm in enumerate(arms):
            pts = joined[joined["arm"] == arm]
            line = lines[lines["arm"] == arm].sort_values("x_mean")
            ax.scatter(pts["x"], pts[outcome], s=12, alpha=0.5, color=colors(i % 10))
            ax.plot(line["x_mean"], line["mean"], "-o", ms=3, color=colors(i % 10), label=arm)
        if not by_path[p_path].is_range:
            ax.set_xticks(range(len(b["bin"].cat.categories)), b["bin"].cat.categories)
        ax.set_xlabel(p_path, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(outcome)
    return _save(fig, axes, title, path)


def sweep_summary(data: SweepData, arms: list[str], year: int
                  ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """Every recorded outcome against every parameter, all students, one year.

    Returns:
        ``means`` (per arm x sample: outcomes averaged over replicates), ``bins`` (see
        :func:`parameter_bins`) and the long ``table`` of :func:`summary_table`.
    """
    outcomes = list(data.sweep.outcomes)
    t = data.table
    rows = t[t["arm"].isin(arms) & (t["year"] == year) & (t["start_band"] == ALL)]
    rows = rows.assign(arm=pd.Categorical(rows["arm"], categories=arms))
    means = rows.groupby(["arm", "sample"], observed=True)[outcomes].mean().reset_index()
    cols = [c for p in data.sweep.parameters for c in (p.path, f"x:{p.path}")]
    per_sample = t.groupby("sample")[cols].first()
    bins = parameter_bins(data.sweep, per_sample)
    return means, bins, summary_table(means, bins, outcomes)


def main_sweep_summary(args) -> int:
    """``plsim sweep-summary DIR``: each outcome against each parameter, every design.

    Args:
        args: ``dir``, ``arm`` (None = every arm), ``year`` (None = the last).

    Returns:
        0; bad input raises ScenarioError.
    """
    data = load_finished(args.dir)
    arms = data.arms if args.arm is None else [choose_arm(data, args.arm)]
    year, outcomes = choose_year(data, args.year), list(data.sweep.outcomes)
    means, bins, table = sweep_summary(data, arms, year)
    where = f"year {year}, {ALL}; means over design samples (each averaged over replicates)"
    print(format_summary_table(table, f"Sweep '{data.sweep.name}' ({data.sweep.design}, "
                                      f"{data.samples} samples): {where}."))
    folder = data.dir / "summary"
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "sweep_summary.csv"
    out = table.assign(year=year, start_band=ALL)
    atomic_write(csv, lambda p: out.to_csv(p, index=False))
    for o in outcomes:
        title = (f"{data.sweep.name}: {OUTCOME_LABELS.get(o, o)}, year {year}, {ALL}\n"
                 "points: design samples (replicate means); lines: means by parameter bin")
        summary_figure(means, bins, table, data.sweep, o, arms, title, folder / f"{o}.png")
    print(f"\nWrote {csv} and {len(outcomes)} figure(s) in {folder}")
    return 0
