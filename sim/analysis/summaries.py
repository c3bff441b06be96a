"""Reports: the summary table, its plain-words rendering and the figures.

Everything here reads the ``student_years`` table; nothing touches a live model.
Uncertainty is across replicates (independent synthetic districts): 95%
t-intervals of replicate means, and of paired replicate differences against
the first arm (the arms of a replicate share students and random streams).
Shares (0-1) get intervals that stay within 0-1 (``sim.analysis.shares``): the
t-interval on the logit scale for shares of many students or teachers, Wilson's
(design-effect adjusted) for shares of a district's few schools.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis.shares import logit_interval, wilson_interval
from sim.engine.outcomes import BANDS

ALL = "all students"
METRICS = ("growth_sd", "proficient", "grade_level_share", "mastered_share", "switches",
           "engagement")
PAIRED = ("growth_sd", "proficient")
SHARES = ("proficient",)  # metrics of the summary that are shares of students (0-1)
TEACHER_SHARES = ("misclassified", "exit_rate", "novice_share")  # shares of teachers
SCHOOL_SHARES = ("window_share", "tutoring_share", "program_active_share", "responded_share")


def _program_rows(rows: pd.DataFrame) -> pd.Series:
    """Students of the program grades, whether or not their school still runs the program
    (a dropped program's students still count: intention to treat)."""
    return rows["program_grade"] if "program_grade" in rows else rows["in_program"]


def replicate_means(rows: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Per arm x replicate x year x band (and all students): means of the metrics.

    Only students in the program grades count (also after a school drops the program);
    proficiency is over tested students.
    """
    metrics = list(metrics)
    prog = rows[_program_rows(rows)].copy()
    prog["proficient"] = prog["proficient"].astype("Float64")
    keys = ["arm", "replicate", "year"]
    by_band = prog.groupby(keys + ["start_band"], observed=False)
    all_ = prog.groupby(keys, observed=True)
    parts = []
    for grouped, band in ((by_band, None), (all_, ALL)):
        m = grouped[metrics].mean()
        m["n_students"] = grouped.size()
        m = m.reset_index()
        if band is not None:
            m["start_band"] = band
        parts.append(m)
    out = pd.concat(parts, ignore_index=True)
    out["start_band"] = pd.Categorical(out["start_band"].astype(str),
                                       categories=[ALL, *BANDS])
    return out.astype({c: float for c in metrics})


SUMMARY_COLUMNS = ("arm", "replicate", "year", "start_band", "program_grade", "in_program",
                   *METRICS)  # what ``replicate_means`` reads


def part_means(rows: pd.DataFrame) -> pd.DataFrame:
    """``replicate_means`` of one arm x replicate's student-years (the part's own arm only:
    the others are empty categories). Concatenated in table order, the parts' means give
    the whole run's (``summarise_replicates``)."""
    means = replicate_means(rows[[c for c in SUMMARY_COLUMNS if c in rows]])
    return means[means.arm.isin(rows.arm.unique())]


def mean_interval(x: pd.Series) -> tuple[float, float, float]:
    """Mean and 95% t interval (low, high) of the non-missing values, in their units
    (NaN interval with fewer than two values)."""
    x = x.dropna().to_numpy(float)
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = x.mean()
    if x.size < 2:
        return mean, np.nan, np.nan
    from scipy import stats  # here: the commands that need no interval never load it

    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return mean, mean - half, mean + half


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary table: arm x year x start band, with 95% intervals across replicates."""
    return summarise_replicates(replicate_means(rows))


def summarise_replicates(reps: pd.DataFrame) -> pd.DataFrame:
    """``summarise`` from the replicate means (``replicate_means``, which may be computed
    one arm x replicate at a time and concatenated: a run too large for memory)."""
    first_arm = reps["arm"].cat.categories[0] if hasattr(reps["arm"], "cat") else reps.arm[0]
    base = reps[reps.arm == first_arm].set_index(["replicate", "year", "start_band"])
    records = []
    for (arm, year, band), g in reps.groupby(["arm", "year", "start_band"], observed=True,
                                             sort=True):
        rec = {"arm": arm, "year": year, "start_band": band,
               "replicates": int(g.replicate.nunique()),
               "n_students": float(g.n_students.mean())}
        for m in METRICS:
            # a share's interval stays within 0-1 (the logit scale); the mean is the same
            mean, lo, hi = logit_interval(g[m]) if m in SHARES else mean_interval(g[m])
            rec[m] = mean
            if m in PAIRED:
                rec[f"{m}_lo"], rec[f"{m}_hi"] = lo, hi
        idx = pd.MultiIndex.from_arrays([g.replicate, g.year, g.start_band])
        for m in PAIRED:
            diff = pd.Series(g[m].to_numpy() - base[m].reindex(idx).to_numpy())
            rec[f"diff_{m}"], rec[f"diff_{m}_lo"], rec[f"diff_{m}_hi"] = mean_interval(diff)
        records.append(rec)
    out = pd.DataFrame.from_records(records)
    out["arm"] = pd.Categorical(out["arm"], categories=list(reps["arm"].cat.categories))
    out["start_band"] = pd.Categorical(out["start_band"].astype(str), categories=[ALL, *BANDS])
    return out.sort_values(["year", "start_band", "arm"]).reset_index(drop=True)


def contrast(rows: pd.DataFrame, arm: str, baseline: str, year: int | None = None,
             metrics=("growth_sd", "proficient", "mastered_share", "switches", "engagement",
                      "anxiety")) -> pd.DataFrame:
    """Paired difference ``arm - baseline`` by start band, with 95% intervals across replicates."""
    keep = [m for m in metrics if m in rows]
    reps = replicate_means(rows, keep)
    year = int(reps.year.max()) if year is None else year
    reps = reps[reps.year == year].set_index(["start_band", "replicate"])
    a = reps[reps.arm == arm][keep]
    b = reps[reps.arm == baseline][keep]
    diff = (a - b.reindex(a.index)).reset_index()
    out = []
    for band, g in diff.groupby("start_band", observed=True):
        rec = {"start_band": band}
        for m in keep:
            rec[m], rec[f"{m}_lo"], rec[f"{m}_hi"] = mean_interval(g[m])
        out.append(rec)
    return pd.DataFrame(out)


def teacher_records(teacher_years: pd.DataFrame) -> list[dict]:
    """Per arm x replicate (in that order): how ratings track true effects, turnover and
    stress, one record each (``teacher_summary``'s input; a part's own records can be
    made where the part ran)."""
    from sim.accountability.evaluation import run_metrics

    per_rep = []
    for (arm, rep), g in teacher_years.groupby(["arm", "replicate"], observed=True):
        prog = run_metrics(g[g.program]) if "program" in g and g.program.any() else {}
        rec = {"arm": arm, "replicate": rep, **run_metrics(g),
               **{f"program_{k}": v for k, v in prog.items() if k != "teachers_with_estimate"},
               "exit_rate": g.exited.mean(), "stress": g.stress.mean(), "drift": g.drift.mean(),
               "novice_share": g.novice.mean()}
        per_rep.append(rec)
    return per_rep


def teacher_summary(teacher_years: pd.DataFrame, records: list[dict] | None = None
                    ) -> pd.DataFrame:
    """Per arm: how ratings track true effects, turnover and stress (95% intervals across
    replicates). ``records``: ``teacher_records`` of the table (arm by arm, replicate by
    replicate), when already made; then ``teacher_years`` is not read."""
    reps = pd.DataFrame(teacher_records(teacher_years) if records is None else records)
    out = []
    for arm, g in reps.groupby("arm", observed=True, sort=False):
        rec = {"arm": arm, "replicates": len(g)}
        metrics = ["corr_estimate_true", "year_to_year_corr", "misclassified", "exit_rate",
                   "stress", "drift", "novice_share"]
        metrics += [c for c in g.columns if c.startswith("program_")]
        for m in metrics:
            share = m.removeprefix("program_") in TEACHER_SHARES
            rec[m], rec[f"{m}_lo"], rec[f"{m}_hi"] = (logit_interval if share
                                                      else mean_interval)(g[m])
        out.append(rec)
    return pd.DataFrame(out)


def school_summary(school_years: pd.DataFrame) -> pd.DataFrame:
    """Per arm x year: share of schools with a test-prep window, tutoring and the program
    active (pooled over replicates, with Wilson intervals: a district has few schools), and
    mean proficiency (logit-scale interval) and growth (means across replicates)."""
    s = school_years.assign(window=school_years.test_prep_weeks > 0,
                            tutored=school_years.tutoring > 0,
                            responded=school_years.response != "")
    per_rep = s.groupby(["arm", "year", "replicate"], observed=True).agg(
        window_share=("window", "mean"), tutoring_share=("tutored", "mean"),
        program_active_share=("program_active", "mean"), responded_share=("responded", "mean"),
        dropped=("dropped", "sum"), proficiency=("proficiency", "mean"),
        mean_growth_sd=("mean_growth_sd", "mean"), schools=("window", "size")).reset_index()
    out = []
    for (arm, year), g in per_rep.groupby(["arm", "year"], observed=True):
        rec = {"arm": arm, "year": year, "replicates": len(g)}
        for m in SCHOOL_SHARES:
            mean, lo, hi, _ = wilson_interval(g[m], g["schools"])
            # the mean of replicate shares, as before (pooled: the same with equal schools)
            rec[m], rec[f"{m}_lo"], rec[f"{m}_hi"] = float(g[m].mean()), lo, hi
        rec["proficiency"], rec["proficiency_lo"], rec["proficiency_hi"] = logit_interval(
            g["proficiency"])
        m = "mean_growth_sd"
        rec[m], rec[f"{m}_lo"], rec[f"{m}_hi"] = mean_interval(g[m])
        out.append(rec)
    return pd.DataFrame(out)


# --- plain words --------------------------------------------------------------------
def _ci(mean, lo, hi, pct=False, signed=False) -> str:
    f = 100.0 if pct else 1.0
    sign = "+" if signed else ""
    digits = 1 if pct else 2
    if np.isnan(mean):
        return "n/a"
    core = f"{mean * f:{sign}.{digits}f}"
    if np.isnan(lo):
        return core
    return f"{core} [{lo * f:{sign}.{digits}f}, {hi * f:{sign}.{digits}f}]"


def _cell(row, metric: str, **kw) -> str:
    return _ci(getattr(row, metric), getattr(row, f"{metric}_lo"), getattr(row, f"{metric}_hi"),
               **kw)


def format_summary(summary: pd.DataFrame, year: int | None = None) -> str:
    """The summary as a table a non-programmer can read (one year, default the last)."""
    year = int(summary.year.max()) if year is None else year
    s = summary[summary.year == year]
    first = s.arm.cat.categories[0]
    lines = [f"Year {year}: growth (fall-to-spring, in SD of the state's fall scores) and "
             f"proficiency (% at or above the state cut), students in the program grades.",
             "Brackets: 95% interval across replicates. 'vs' columns: difference from "
             f"'{first}' on the same students.", ""]
    header = (f"{'arm':<20}{'students':>9}  {'growth (SD)':<20}{'proficient %':<22}"
              f"{'vs growth':<22}{'vs proficient (pts)':<24}{'grade-level time':>17}"
              f"{'switches':>9}")
    for band in s.start_band.cat.categories:
        b = s[s.start_band == band]
        if b.empty:
            continue
        lines += [f"-- {band} --", header]
        for r in b.itertuples():
            lines.append(
                f"{str(r.arm):<20}{r.n_students:>9.0f}  "
                f"{_cell(r, 'growth_sd'):<20}{_cell(r, 'proficient', pct=True):<22}"
                f"{_cell(r, 'diff_growth_sd', signed=True):<22}"
                f"{_cell(r, 'diff_proficient', pct=True, signed=True):<24}"
                f"{100 * r.grade_level_share:>16.0f}%{r.switches:>9.1f}")
        lines.append("")
    return "\n".join(lines)
