"""Claims of the source papers, checked on the model's output.

A claim is checked by one or more *conditions*. Each condition is an estimate with
its 95% interval across replicates (independent synthetic districts) set against what
the claim says: a difference above or below zero, or a source's figure within a band.
Means get t-intervals; shares (0-1) intervals that stay within 0-1 (logit scale, or
Wilson's for a share of a few units such as schools: ``sim.analysis.shares``). The
verdict is computed from the intervals, never written in advance, in three states: a
claim **holds** when every condition's interval lies on the claim's side, **falls
short** when one lies wholly on the other side, and is **undecided** otherwise: an
interval straddles the line (the run cannot tell; the condition says about how many
replicates would), or the run is smaller than the claim's minimum design (a share of
four of five schools cannot show with two schools: the condition says "needs at least 5
schools"). Notebooks print one verdict line per claim, ``Claim N — text: holds`` (or
``falls short``, ``undecided``; ``VERDICT_LINE``).

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

from sim.analysis.shares import Z95, logit_interval, wilson_interval
from sim.config.scenario import (
    Scenario,
    ScenarioError,
    apply_override,
    parse_override,
    read_toml,
    validate_scenario,
)
from sim.experiments.runner import TABLES, run

HOLDS, FALLS_SHORT, UNDECIDED = "holds", "falls short", "undecided"
VERDICTS = (HOLDS, FALLS_SHORT, UNDECIDED)
VERDICT_LINE = r"^Claim (\d+) — .+: (holds|falls short|undecided)$"  # one per claim, printed


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
    """A mean across replicates with its 95% interval (in the metric's units).

    A t-interval for a mean (``estimate``); for a share (0-1) an interval that stays in
    0-1: on the logit scale (``estimate(..., share=True)``) or, for a share of a few units
    such as schools, Wilson's (``share``; ``units`` and ``unit`` say of what).

    Attributes:
        sd: SD of the per-replicate values (NaN for a Wilson interval or one value).
        units: for a share of units, the fewest units in a replicate (e.g. 2 schools).
        unit: what the units are ("schools").
        effective_units: Wilson's effective number of units after the design effect.
    """

    what: str
    mean: float
    lo: float
    hi: float
    n: int
    sd: float = np.nan
    units: int | None = None
    unit: str = ""
    effective_units: float = np.nan

    @property
    def design(self) -> dict[str, int]:
        """What the estimate was measured on: replicates and, for a share, its units."""
        out = {"replicates": self.n}
        if self.units is not None:
            out[self.unit] = self.units
        return out

    def __str__(self) -> str:
        if self.n == 0:
            return f"{self.what}: no estimate"
        if self.n == 1 and self.units is None:
            return f"{self.what}: {self.mean:+.3f} (1 replicate, no interval)"
        of = f" x {self.units} {self.unit} (Wilson)" if self.units is not None else ""
        return (f"{self.what}: {self.mean:+.3f} [95% {self.lo:+.3f}, {self.hi:+.3f}], "
                f"{self.n} replicate{'s' if self.n > 1 else ''}{of}")


def estimate(values, what: str, share: bool = False) -> Estimate:
    """Mean and 95% interval of per-replicate values (NaN dropped): a t-interval, or with
    ``share`` (values are shares, 0-1) the t-interval on the logit scale, inside 0-1."""
    x = pd.Series(values, dtype=float).dropna().to_numpy()
    if x.size == 0:
        return Estimate(what, np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(what, mean, np.nan, np.nan, 1)
    sd = float(x.std(ddof=1))
    if share:
        _, lo, hi = logit_interval(x)
        return Estimate(what, mean, lo, hi, int(x.size), sd)
    half = float(stats.t.ppf(0.975, x.size - 1) * sd / np.sqrt(x.size))
    return Estimate(what, mean, mean - half, mean + half, int(x.size), sd)


def share(values, units, what: str, unit: str = "schools") -> Estimate:
    """A share of a few units (e.g. schools with a window) across replicates: the pooled
    share with its 95% Wilson interval, design-effect adjusted (``analysis.shares``).

    Args:
        values: per replicate, the share of its units (0-1), indexed by replicate.
        units: per replicate, how many units (aligned with ``values``, or one number).
    """
    x = pd.Series(values, dtype=float)
    m = (units.reindex(x.index) if isinstance(units, pd.Series)
         else pd.Series(units, index=x.index, dtype=float)).astype(float)
    keep = x.notna() & (m > 0)
    x, m = x[keep], m[keep]
    if x.empty:
        return Estimate(what, np.nan, np.nan, np.nan, 0, units=0, unit=unit)
    mean, lo, hi, n_eff = wilson_interval(x.to_numpy(), m.to_numpy())
    return Estimate(what, mean, lo, hi, int(x.size), units=int(m.min()), unit=unit,
                    effective_units=n_eff)


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


def table_share(table: pd.DataFrame, flag: str, arm: str, year: int | None = None,
                what: str | None = None, unit: str = "schools",
                where: Callable[[pd.DataFrame], pd.Series] | None = None) -> Estimate:
    """The share of the rows (units: schools, teachers) of ``arm`` where ``flag`` is true,
    across replicates, with its Wilson interval (:func:`share`); rows as in
    :func:`table_metric`."""
    sel = table["arm"] == arm
    if year is not None:
        sel &= table["year"] == year
    if where is not None:
        sel &= where(table).astype(bool)
    rows = table.loc[sel]
    g = rows[flag].astype(float).groupby(rows["replicate"])
    return share(g.mean(), g.size(), what or f"share of {unit} with {flag}", unit)


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
MAX_REPLICATES = 100_000  # the largest design the "replicates would decide it" hint states


@dataclass(frozen=True)
class Condition:
    """An estimate set against what a claim says, judged in three states.

    ``kind``: ``above`` (holds when the interval lies above ``value``, falls short when it
    lies at or below it), ``below`` (the mirror), ``at_least`` (holds when the lower end is
    at or above ``value``, falls short when the upper end is below it), ``contains`` (a
    source's figure: holds when the interval lies within ``value ± tolerance``, falls
    short when it lies wholly outside). Otherwise the interval straddles the line and the
    condition is **undecided**: the run cannot tell.

    ``needs`` is the claim's minimum design, ``(("schools", 5),)`` or ``(("replicates",
    4),)``: a run smaller than that cannot show the claim, and the condition is undecided
    whatever its interval, saying what it needs. Two replicates are always needed.
    """

    estimate: Estimate
    kind: str
    value: float = 0.0
    tolerance: float = 0.0
    needs: tuple[tuple[str, int], ...] = ()

    def shortfalls(self) -> list[str]:
        """What the run lacks to show the claim: 'needs at least 5 schools (this run: 2)'."""
        design = self.estimate.design
        needs = dict(self.needs)
        needs["replicates"] = max(2, needs.get("replicates", 2))
        out = []
        for what, least in needs.items():
            have = design.get(what)
            if have is None or have < least:
                per = "" if what == "replicates" else " per replicate"
                out.append(f"needs at least {least} {what}{per} (this run: "
                           f"{'none' if have is None else have})")
        return out

    @property
    def state(self) -> str:
        """``holds``, ``falls short`` or ``undecided``."""
        e = self.estimate
        if self.shortfalls() or np.isnan(e.lo) or np.isnan(e.hi):
            return UNDECIDED
        v, tol = self.value, self.tolerance
        yes, no = {"above": (e.lo > v, e.hi <= v), "below": (e.hi < v, e.lo >= v),
                   "at_least": (e.lo >= v, e.hi < v),
                   "contains": (v - tol <= e.lo and e.hi <= v + tol,
                                e.hi < v - tol or e.lo > v + tol)}[self.kind]
        return HOLDS if yes else FALLS_SHORT if no else UNDECIDED

    @property
    def holds(self) -> bool:
        return self.state == HOLDS

    def edges(self) -> tuple[float, ...]:
        """The values the interval must clear to decide (the claim's line or band)."""
        if self.kind == "contains":
            return (self.value - self.tolerance, self.value + self.tolerance)
        return (self.value,)

    def replicates_to_decide(self) -> int | None:
        """Replicates after which the interval would clear the claim's line, were the mean
        and the replicates' spread what this run estimates (None: no estimate of either).
        A t-interval's half-width shrinks as 1/sqrt(n); a Wilson interval's as one over the
        square root of the units."""
        e = self.estimate
        gap = min(abs(e.mean - edge) for edge in self.edges()) if np.isfinite(e.mean) else 0
        if gap <= 0:
            return None
        if e.units is not None:  # Wilson: effective units needed, as replicates of this size
            p = min(max(e.mean, 1e-9), 1 - 1e-9)
            deff = e.n * e.units / e.effective_units if e.effective_units > 0 else 1.0
            units = Z95 ** 2 * p * (1 - p) / gap ** 2 * deff
            return int(min(MAX_REPLICATES, max(2, np.ceil(units / max(e.units, 1)))))
        if not np.isfinite(e.sd) or e.sd <= 0:
            return None
        for n in range(max(2, e.n), MAX_REPLICATES + 1):
            if stats.t.ppf(0.975, n - 1) * e.sd / np.sqrt(n) < gap:
                return n
        return MAX_REPLICATES

    def line(self) -> str:
        expected = {"above": f"above {self.value:g}", "below": f"below {self.value:g}",
                    "at_least": f"at least {self.value:g}",
                    "contains": f"within {self.value:g} ± {self.tolerance:g}"}[self.kind]
        mark = {HOLDS: "yes", FALLS_SHORT: "no", UNDECIDED: " ? "}[self.state]
        text = f"  [{mark}] {self.estimate}; expected {expected}"
        if self.state != UNDECIDED:
            return text
        why = self.shortfalls()
        if not why:
            n = self.replicates_to_decide()
            why = ["the interval straddles the line"
                   + (f"; about {n} replicates would decide it if the mean and spread stay "
                      "as estimated" if n else "")]
        return text + "\n        undecided: " + "; ".join(why)


def above(e: Estimate, value: float = 0.0, needs: dict | None = None) -> Condition:
    return Condition(e, "above", value, needs=tuple((needs or {}).items()))


def below(e: Estimate, value: float = 0.0, needs: dict | None = None) -> Condition:
    return Condition(e, "below", value, needs=tuple((needs or {}).items()))


def at_least(e: Estimate, value: float, needs: dict | None = None) -> Condition:
    return Condition(e, "at_least", value, needs=tuple((needs or {}).items()))


def contains(e: Estimate, value: float, tolerance: float,
             needs: dict | None = None) -> Condition:
    """A source's figure: the interval must lie within ``value ± tolerance``."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be at least 0 (got {tolerance})")
    return Condition(e, "contains", value, tolerance, tuple((needs or {}).items()))


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: holds when every condition holds, falls short when one falls
    short, undecided otherwise (no condition, or one the run cannot tell)."""

    number: int
    claim: str
    conditions: tuple[Condition, ...]

    @property
    def word(self) -> str:
        states = [c.state for c in self.conditions]
        if FALLS_SHORT in states:
            return FALLS_SHORT
        return HOLDS if states and all(s == HOLDS for s in states) else UNDECIDED

    @property
    def holds(self) -> bool:
        return self.word == HOLDS

    def __str__(self) -> str:
        lines = [c.line() for c in self.conditions] or ["  (no condition: nothing to tell)"]
        return "\n".join([*lines, f"Claim {self.number} — {self.claim}: {self.word}"])


def verdict(number: int, claim: str, *conditions: Condition) -> Verdict:
    """The verdict of claim ``number``; ``print`` it for the conditions and the line."""
    return Verdict(number, claim, tuple(conditions))
