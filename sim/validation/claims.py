"""Claims of the source papers, checked on the model's output.

A claim is checked by one or more *conditions*. Each condition is an estimate with
its 95% t-interval across replicates (independent synthetic districts) set against
what the claim says: a difference above or below zero, or a source's figure inside the
interval. The verdict is computed from the intervals, never written in advance: a
claim **holds** when every condition does and **falls short** otherwise (an interval
that straddles zero falls short: the model does not show it at this size). Notebooks
print one verdict line per claim, ``Claim N — text: holds`` or ``... falls short``
(``VERDICT_LINE``).

Student metrics count the students of the program grades (``program_grade``, also
after a school drops the program: intention to treat), as the summary table does;
proficiency is over tested students. ``ClaimRuns`` runs scenario files with a chosen
subset of their arms and caches each arm's tables: every (replicate, arm) of a
scenario is an independent task on the same students and random streams, so an arm
gives the same rows whichever other arms run beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.config.scenario import (
    Scenario,
    ScenarioError,
    apply_override,
    parse_override,
    read_toml,
    validate_scenario,
)
from sim.experiments.runner import TABLES, run

HOLDS, FALLS_SHORT = "holds", "falls short"
VERDICT_LINE = r"^Claim (\d+) — .+: (holds|falls short)$"  # one per claim, printed


# --- scenarios and runs ------------------------------------------------------------------
def scenario_with(path: str | Path, arms: Sequence[str] | None = None,
                  overrides: Iterable[str] = (), replicates: int | None = None,
                  seed: int | None = None) -> Scenario:
    """A scenario file with only the named arms (in that order), ``--set``-style
    overrides (``district.schools=2``; arms by label) and optional replicates and seed,
    validated like ``plsim run`` validates it (``ScenarioError`` on bad input)."""
    data = read_toml(path)
    if arms is not None:
        by_label = {a.get("label"): a for a in data.get("arms", [])}
        missing = [a for a in arms if a not in by_label]
        if missing:
            raise ScenarioError(f"{path}: arms: no arm {missing} (arms: {sorted(by_label)})")
        data["arms"] = [by_label[a] for a in arms]
    for text in overrides:
        apply_override(data, *parse_override(text, str(path)), f"{path} (--set {text})")
    if replicates is not None:
        data["replicates"] = replicates
    if seed is not None:
        data["seed"] = seed
    return validate_scenario(data, str(path))


@dataclass
class Tables:
    """The tables of one run, restricted to some arms (``arm`` categorical, in order)."""

    scenario: Scenario
    student_years: pd.DataFrame
    teacher_years: pd.DataFrame
    school_years: pd.DataFrame

    @property
    def arms(self) -> list[str]:
        return [a.label for a in self.scenario.arms]

    @property
    def last_year(self) -> int:
        return int(self.scenario.years)


@dataclass
class ClaimRuns:
    """Runs scenario files for claims, each (file, settings, arm) once.

    Args:
        overrides: ``--set``-style overrides applied to every scenario (e.g. quick sizes).
        replicates: replicates of every run (None: the file's).
        workers: processes per run (1 = serial, 0 = all cores); results do not depend on it.
    """

    overrides: tuple[str, ...] = ()
    replicates: int | None = None
    workers: int = 1
    _cache: dict = field(default_factory=dict, repr=False)

    def tables(self, path: str | Path, arms: Sequence[str],
               overrides: Iterable[str] = ()) -> Tables:
        """The tables of ``arms`` of a scenario file, running the arms not yet run."""
        settings = (str(path), tuple(self.overrides) + tuple(overrides))
        todo = [a for a in arms if (settings, a) not in self._cache]
        if todo:
            sc = scenario_with(path, todo, settings[1], self.replicates)
            res = run(sc, workers=self.workers)
            for label in todo:
                self._cache[settings, label] = {
                    t: getattr(res, t)[getattr(res, t)["arm"] == label] for t in TABLES}
        sc = scenario_with(path, arms, settings[1], self.replicates)
        frames = {}
        for t in TABLES:
            parts = [self._cache[settings, a][t].assign(arm=lambda d: d["arm"].astype(str))
                     for a in arms]
            frame = pd.concat(parts, ignore_index=True)
            frame["arm"] = pd.Categorical(frame["arm"], categories=list(arms))
            frames[t] = frame
        return Tables(sc, frames["student_years"], frames["teacher_years"],
                      frames["school_years"])


# --- estimates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A mean across replicates with its 95% t-interval (in the metric's units)."""

    what: str
    mean: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return f"{self.what}: no estimate"
        if self.n == 1:
            return f"{self.what}: {self.mean:+.3f} (1 replicate, no interval)"
        return (f"{self.what}: {self.mean:+.3f} [95% {self.lo:+.3f}, {self.hi:+.3f}], "
                f"{self.n} replicates")


def estimate(values, what: str) -> Estimate:
    """Mean and 95% t-interval of per-replicate values (NaN dropped)."""
    x = pd.Series(values, dtype=float).dropna().to_numpy()
    if x.size == 0:
        return Estimate(what, np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(what, mean, np.nan, np.nan, 1)
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return Estimate(what, mean, mean - half, mean + half, int(x.size))


def paired(a: pd.Series, b: pd.Series, what: str) -> Estimate:
    """Estimate of ``a - b`` paired by replicate (both indexed by replicate)."""
    return estimate((a - b.reindex(a.index)).dropna(), what)


def student_metric(rows: pd.DataFrame, metric: str, arm: str, year: int | None = None,
                   bands: Sequence[str] | None = None,
                   where: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.Series:
    """Per replicate: the mean of ``metric`` over program-grade students of ``arm``.

    Args:
        year: reported year (None: every year pooled).
        bands: starting-achievement bands to pool (None: all students).
        where: a further row filter, e.g. ``lambda r: r.tutored``.
    """
    sel = rows["program_grade"] & (rows["arm"] == arm)
    if year is not None:
        sel &= rows["year"] == year
    if bands is not None:
        sel &= rows["start_band"].astype(str).isin(list(bands))
    if where is not None:
        sel &= where(rows).astype(bool)
    values = rows.loc[sel, metric].astype("Float64").astype(float)
    return values.groupby(rows.loc[sel, "replicate"]).mean()


def table_metric(table: pd.DataFrame, metric: str, arm: str, year: int | None = None,
                 where: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.Series:
    """Per replicate: the mean of ``metric`` over rows of ``arm`` of a teacher or school
    table (e.g. ``stress`` of program teachers: ``where=lambda t: t.program``)."""
    sel = table["arm"] == arm
    if year is not None:
        sel &= table["year"] == year
    if where is not None:
        sel &= where(table).astype(bool)
    return table.loc[sel, metric].astype(float).groupby(table.loc[sel, "replicate"]).mean()


def sweep_slopes(table: pd.DataFrame, parameters: Sequence[str], outcome: str, arm: str,
                 year: int, band: str = "all students") -> pd.DataFrame:
    """Per replicate of a sweep: the least-squares slopes of ``outcome`` on the varied
    ``parameters`` (all at once, with an intercept) across the design samples.

    Args:
        table: a sweep's outcomes joined to its experiments (``read_outcomes``): one row
            per run x arm x year x start band, with ``replicate`` and each parameter.
    Returns:
        One row per replicate, one column per parameter: the outcome's change per unit of
        the parameter (outcome units per parameter unit), the others held fixed.
    """
    t = table[(table["arm"] == arm) & (table["year"] == year) & (table["start_band"] == band)]
    out = {}
    for rep, g in t.groupby("replicate"):
        g = g.dropna(subset=[outcome])
        x = np.column_stack([np.ones(len(g)), g[list(parameters)].to_numpy(float)])
        if len(g) <= x.shape[1]:
            continue
        coef, *_ = np.linalg.lstsq(x, g[outcome].to_numpy(float), rcond=None)
        out[rep] = coef[1:]
    return pd.DataFrame.from_dict(out, orient="index", columns=list(parameters))


# --- conditions and verdicts -------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """An estimate set against what a claim says.

    ``kind``: ``above`` (the interval lies above ``value``), ``below`` (under it),
    ``at_least`` (the interval's lower end is at or above it), ``contains`` (a source's
    figure lies inside the interval).
    """

    estimate: Estimate
    kind: str
    value: float = 0.0

    @property
    def holds(self) -> bool:
        e = self.estimate
        if e.n < 2 or np.isnan(e.lo) or np.isnan(e.hi):
            return False
        return {"above": e.lo > self.value, "below": e.hi < self.value,
                "at_least": e.lo >= self.value,
                "contains": e.lo <= self.value <= e.hi}[self.kind]

    def line(self) -> str:
        expected = {"above": f"above {self.value:g}", "below": f"below {self.value:g}",
                    "at_least": f"at least {self.value:g}",
                    "contains": f"interval containing {self.value:g}"}[self.kind]
        mark = "yes" if self.holds else "no"
        return f"  [{mark}] {self.estimate}; expected {expected}"


def above(e: Estimate, value: float = 0.0) -> Condition:
    return Condition(e, "above", value)


def below(e: Estimate, value: float = 0.0) -> Condition:
    return Condition(e, "below", value)


def at_least(e: Estimate, value: float) -> Condition:
    return Condition(e, "at_least", value)


def contains(e: Estimate, value: float) -> Condition:
    return Condition(e, "contains", value)


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: holds when every condition holds."""

    number: int
    claim: str
    conditions: tuple[Condition, ...]

    @property
    def holds(self) -> bool:
        return bool(self.conditions) and all(c.holds for c in self.conditions)

    @property
    def word(self) -> str:
        return HOLDS if self.holds else FALLS_SHORT

    def __str__(self) -> str:
        lines = [c.line() for c in self.conditions]
        return "\n".join([*lines, f"Claim {self.number} — {self.claim}: {self.word}"])


def verdict(number: int, claim: str, *conditions: Condition) -> Verdict:
    """The verdict of claim ``number``; ``print`` it for the conditions and the line."""
    return Verdict(number, claim, tuple(conditions))
