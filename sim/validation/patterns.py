"""Patterns: what the model is checked against, and whether it reproduces them.

A *pattern* is one fact or finding with a source, a target and a tolerance band
(pattern-oriented modelling: Grimm et al. 2005). Two kinds:

* ``calibration`` — a public fact of design brief §9 (variance split, baseline
  proficiency, growth by grade, faster growth of lower starters, summer loss,
  SD of teacher effects, teachers rated below proficient, teacher turnover). It
  **holds** when the mean across replicates lies in the band ``[low, high]``
  (target ± tolerance). These, and only these, are what ``plsim calibrate --fit``
  fits.
* ``finding`` — a finding of the source papers the mechanisms may or may not
  produce (never fitted). It **holds** when the whole 95% interval across
  replicates lies in the band (usually one side of zero): the effect is there
  and distinguishable from noise; it **falls short** when the whole interval
  lies outside the band; otherwise it is **undecided**: the interval straddles
  the band's edge and the run cannot tell (``verdict``).

In a ``--quick`` run (small districts, few replicates) the rule for facts is
relaxed and says so (``quick``): a calibration pattern holds when its interval
overlaps the band. Findings are judged by their intervals in both, so a quick
run leaves many undecided rather than calling them. The tolerances never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

CALIBRATION, FINDING = "calibration", "finding"
HOLDS, FALLS_SHORT, UNDECIDED = "holds", "falls short", "undecided"


@dataclass(frozen=True)
class Pattern:
    """One fact or finding.

    Args:
        name: short unique name (what is compared).
        kind: ``calibration`` or ``finding``.
        source: where the target comes from.
        target: the source's value; ``None`` for a direction only ("> 0").
        tolerance: half-width of the band around ``target`` (``None`` with a
            one-sided band).
        low, high: the band the simulated value must fall in (``±inf`` for a
            one-sided band).
        unit: unit of the value.
        measure: how the model's value is measured.
        why: why the tolerance is what it is (from the source's own precision).
    """

    name: str
    kind: str
    source: str
    target: float | None
    tolerance: float | None
    low: float
    high: float
    unit: str
    measure: str
    why: str

    @classmethod
    def around(cls, name, kind, source, target, tolerance, unit, measure, why) -> Pattern:
        """A two-sided band ``target ± tolerance``."""
        return cls(name, kind, source, target, tolerance, target - tolerance,
                   target + tolerance, unit, measure, why)

    @classmethod
    def above(cls, name, kind, source, bound, unit, measure, why) -> Pattern:
        """A one-sided band: the value must exceed ``bound``."""
        return cls(name, kind, source, None, None, bound, math.inf, unit, measure, why)

    @classmethod
    def below(cls, name, kind, source, bound, unit, measure, why) -> Pattern:
        """A one-sided band: the value must be below ``bound``."""
        return cls(name, kind, source, None, None, -math.inf, bound, unit, measure, why)

    def target_text(self) -> str:
        if self.target is not None:
            return f"{self.target:g} ± {self.tolerance:g}"
        if math.isinf(self.high):
            return f"> {self.low:g}"
        return f"< {self.high:g}"

    def loss(self, value: float) -> float:
        """Squared distance from the target in tolerance units (one-sided: from the band,
        in units of 0.1); what ``plsim calibrate --fit`` minimises. NaN counts as far off."""
        if value is None or not np.isfinite(value):
            return 100.0
        if self.target is not None:
            return ((value - self.target) / self.tolerance) ** 2
        gap = max(0.0, self.low - value, value - self.high)
        return (gap / 0.1) ** 2


@dataclass
class Outcome:
    """A pattern's simulated value (mean across replicates) with its 95% interval."""

    pattern: Pattern
    value: float
    ci_low: float
    ci_high: float
    replicates: int
    quick: bool = False
    note: str = ""
    holds: bool = field(init=False)
    verdict: str = field(init=False)

    def __post_init__(self):
        self.holds = judge(self.pattern, self.value, self.ci_low, self.ci_high, self.quick)
        self.verdict = verdict(self.pattern, self.value, self.ci_low, self.ci_high, self.quick)

    def as_dict(self) -> dict:
        p = self.pattern
        return {"name": p.name, "kind": p.kind, "source": p.source,
                "target": p.target if p.target is not None else p.target_text(),
                "tolerance": p.tolerance, "low": _finite(p.low), "high": _finite(p.high),
                "value": _finite(self.value), "ci_low": _finite(self.ci_low),
                "ci_high": _finite(self.ci_high), "holds": bool(self.holds),
                "verdict": self.verdict,
                "unit": p.unit, "replicates": self.replicates, "quick": self.quick,
                "measure": p.measure, "why": p.why, "note": self.note}


def judge(p: Pattern, value: float, lo: float, hi: float, quick: bool = False) -> bool:
    """Whether a pattern holds (rules in the module docstring)."""
    if not np.isfinite(value):
        return False
    inside = p.low <= value <= p.high
    if p.kind == CALIBRATION:
        if quick:
            return bool(inside or (np.isfinite(lo) and lo <= p.high and hi >= p.low))
        return bool(inside)
    return bool(np.isfinite(lo) and p.low <= lo and hi <= p.high)


def verdict(p: Pattern, value: float, lo: float, hi: float, quick: bool = False) -> str:
    """``holds``, ``falls short`` or (findings only) ``undecided``: a calibration fact
    holds or falls short as :func:`judge` says; a finding falls short when its whole
    interval lies outside the band and is undecided when the interval straddles an edge
    of the band or there is none (fewer than two replicates)."""
    if judge(p, value, lo, hi, quick):
        return HOLDS
    if p.kind == CALIBRATION:
        return FALLS_SHORT
    if np.isfinite(lo) and np.isfinite(hi) and (hi < p.low or lo > p.high):
        return FALLS_SHORT
    return UNDECIDED


def interval(values) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of per-replicate values (NaNs dropped), and their number."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if x.size == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half, int(x.size)


def outcome(pattern: Pattern, per_replicate, quick: bool = False, note: str = "") -> Outcome:
    mean, lo, hi, n = interval(per_replicate)
    return Outcome(pattern, mean, lo, hi, n, quick, note)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None
