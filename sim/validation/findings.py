"""The seed findings of design brief §9 as patterns, and how each is measured.

Findings are outputs of the mechanisms, never calibration targets: no parameter
is set or fitted to produce them. Each is measured on a shipped scenario
(``scenarios/``) with the common parameter set, as a paired difference between
two arms of the same replicate (same students, same random streams), over the
students of the program grades (intention to treat), one value per replicate.
A finding holds when the whole 95% interval across replicates lies on the side
the source describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.validation.patterns import FINDING, Pattern

MAIN = "the main seed (000), 'When Logics Collide'"
BELOW = -1.0  # baseline offset (grade-years) below which a student works below grade


@dataclass(frozen=True)
class Finding:
    """A finding pattern and what it is measured on.

    Args:
        pattern: the pattern (kind ``finding``).
        scenario: shipped scenario file name (in ``scenarios/``).
        arms: the arms it needs, as labelled in that scenario.
    """

    pattern: Pattern
    scenario: str
    arms: tuple[str, ...]
    compute: Callable[[dict, object], pd.Series]

    def values(self, tables: dict, reference) -> list[float]:
        """One value per replicate, from the run's tables and its statewide reference."""
        return [float(v) for v in self.compute(tables, reference).to_numpy()]


def _f(name, source, side, unit, measure, scenario, arms, compute) -> Finding:
    why = ("a direction, not a size: the 95% interval across replicates must lie entirely on "
           "that side of zero")
    make = Pattern.above if side == ">" else Pattern.below
    return Finding(make(name, FINDING, source, 0.0, unit, measure, why), scenario, arms,
                   compute)


def _diff(metric, arm, base, select=None):
    """A compute function: the paired difference of ``metric`` (``_paired``)."""
    return lambda tables, _ref: _paired(tables["student_years"], metric, arm, base, select)


def findings() -> list[Finding]:
    """Every seed finding of design §9, in report order."""
    tepp = ("traditional", "tepp")
    fs = ("floor3", "test_prep", "gradual_floor")
    ed = ("record_high_trust", "record_low_trust", "shared_high_trust", "shared_low_trust")
    below = f"students starting more than {-BELOW:g} year below grade"
    return [
        _f("personalized looks worse on the grade-level test (proficiency, tepp - traditional)",
           MAIN, "<", "share proficient",
           "tepp_case_study: program-grade share proficient, tepp minus traditional, mean "
           "over the years", "tepp_case_study.toml", tepp,
           _diff("proficient", "tepp", "traditional")),
        _f("... while growing students more (growth, tepp - traditional)", MAIN, ">",
           "fall SD", "tepp_case_study: program-grade mean growth, tepp minus traditional, "
           "mean over the years", "tepp_case_study.toml", tepp,
           _diff("growth_sd", "tepp", "traditional")),
        Finding(Pattern.around(
            "personalized vs comparison: about +3 percentile points in math (year 2)", FINDING,
            "RAND 2017 (seed 002)", 3.0, 3.0, "percentile points",
            "tepp_case_study, year 2: program-grade mean spring growth-test score, tepp minus "
            "traditional, in reference fall SD, as percentile points at the median "
            "(100 x (Phi(d) - 0.5))",
            "RAND's math estimate was significant, so its 95% interval excluded 0: the band is "
            "0-6 points, and the model's whole interval must lie in it"),
            "tepp_case_study.toml", tepp, _percentile_points),
        _f("test-prep window buys proficiency (test_prep - floor3)", MAIN, ">",
           "share proficient", "floor_strategies: program-grade share proficient, test_prep "
           "minus floor3, mean over the years", "floor_strategies.toml", fs,
           _diff("proficient", "test_prep", "floor3")),
        _f("... at the cost of growth (test_prep - floor3)", MAIN, "<", "fall SD",
           "floor_strategies: program-grade mean growth, test_prep minus floor3, mean over the "
           "years", "floor_strategies.toml", fs, _diff("growth_sd", "test_prep", "floor3")),
        _f("... and pulls high achievers back to mastered content (test_prep - floor3)", MAIN,
           ">", "share of days", "floor_strategies: share of days on already-mastered "
           "content of the top quarter by baseline offset, test_prep minus floor3",
           "floor_strategies.toml", fs,
           _diff("mastered_share", "test_prep", "floor3", _top_quarter)),
        _f("switching content on and off upsets students: engagement (test_prep - floor3)",
           MAIN, "<", "engagement (0-1)", f"floor_strategies: mean engagement of {below}, "
           "test_prep minus floor3", "floor_strategies.toml", fs,
           _diff("engagement", "test_prep", "floor3", _below)),
        _f("switching content on and off upsets students: anxiety (test_prep - floor3)",
           MAIN, ">", "anxiety (0-1)", f"floor_strategies: end-of-year anxiety of {below}, "
           "test_prep minus floor3", "floor_strategies.toml", fs,
           _diff("anxiety", "test_prep", "floor3", _below)),
        _f("gradual floors soften the switch: anxiety (gradual_floor - test_prep)", MAIN, "<",
           "anxiety (0-1)", f"floor_strategies: end-of-year anxiety of {below}, "
           "gradual_floor minus test_prep", "floor_strategies.toml", fs,
           _diff("anxiety", "gradual_floor", "test_prep", _below)),
        _f("gradual floors soften the switch: engagement (gradual_floor - test_prep)", MAIN,
           ">", "engagement (0-1)", f"floor_strategies: mean engagement of {below}, "
           "gradual_floor minus test_prep", "floor_strategies.toml", fs,
           _diff("engagement", "gradual_floor", "test_prep", _below)),
        _f("shared evaluation is received differently with and without trust (stress)", MAIN,
           ">", "stress (0-1)", "evaluation_designs: program teachers' mean stress, (shared "
           "low trust - shared high trust) - (record low trust - record high trust): the "
           "trust gap under shared evaluation beyond the one under teacher of record",
           "evaluation_designs.toml", ed, _trust_interaction),
        _f("program benefits grow with maturity (growth gain, last year - first year)",
           "i4tl study of customized learning (seed 004)", ">", "fall SD",
           "tepp_case_study: growth difference tepp minus traditional in the last year minus "
           "the same in year 1", "tepp_case_study.toml", tepp, _maturity),
        _f("accountability windows end programs (share of schools dropped by the last year)",
           MAIN, ">", "share of schools", "logics_collide, arm tepp: share of schools whose "
           "program is no longer active in the last year", "logics_collide.toml", ("tepp",),
           _dropped_share),
        _f("individualized pacing collapses where load outruns capacity (secondary - "
           "elementary)", "Pedal to the Metal (seed 003)", "<", "share of days",
           "michigan_pacing: program students' share of days off the common pace, secondary "
           "minus elementary", "michigan_pacing.toml", ("elementary", "secondary"),
           _diff("off_pace_share", "secondary", "elementary")),
    ]


# --- measurements (one value per replicate) ---------------------------------------------
def _program(rows: pd.DataFrame) -> pd.DataFrame:
    col = "program_grade" if "program_grade" in rows else "in_program"
    return rows[rows[col].astype(bool)]


def _paired(rows: pd.DataFrame, metric: str, arm: str, base: str,
            select=None, by_year: bool = False) -> pd.Series:
    """Per replicate (and year), mean of ``metric`` in ``arm`` minus in ``base``."""
    p = _program(rows)
    if select is not None:
        p = p[select(p)]
    p = p.assign(_m=p[metric].astype(float))
    keys = ["replicate", "year"]
    m = p.groupby(["arm", *keys], observed=True)["_m"].mean()
    d = (m.xs(arm, level="arm") - m.xs(base, level="arm")).dropna()
    return d if by_year else d.groupby(level="replicate").mean()


def _below(p: pd.DataFrame) -> pd.Series:
    return p.baseline_offset < BELOW


def _top_quarter(p: pd.DataFrame) -> pd.Series:
    cut = p.groupby(["arm", "replicate", "year"], observed=True).baseline_offset.transform(
        lambda x: x.quantile(0.75))
    return p.baseline_offset >= cut


def _percentile_points(tables: dict, reference) -> pd.Series:
    p = _program(tables["student_years"])
    p = p[p.year == min(2, int(p.year.max()))]
    sd = np.asarray(reference.fall_sd_by_grade, float)[p.grade.to_numpy(int)]
    p = p.assign(_z=p.spring_score / sd)
    m = p.groupby(["arm", "replicate"], observed=True)["_z"].mean()
    d = (m.xs("tepp", level="arm") - m.xs("traditional", level="arm")).dropna()
    return 100 * (pd.Series(stats.norm.cdf(d), index=d.index) - 0.5)


def _trust_interaction(tables: dict, _reference) -> pd.Series:
    teachers = tables["teacher_years"]
    t = teachers[teachers.program.astype(bool)] if "program" in teachers else teachers
    m = t.groupby(["arm", "replicate"], observed=True).stress.mean()

    def arm(label):
        return m.xs(label, level="arm")
    return ((arm("shared_low_trust") - arm("shared_high_trust"))
            - (arm("record_low_trust") - arm("record_high_trust"))).dropna()


def _maturity(tables: dict, _reference) -> pd.Series:
    d = _paired(tables["student_years"], "growth_sd", "tepp", "traditional", by_year=True)
    d = d.unstack("year")
    return (d[d.columns.max()] - d[d.columns.min()]).dropna()


def _dropped_share(tables: dict, _reference) -> pd.Series:
    schools = tables["school_years"]
    s = schools[schools.arm == "tepp"]
    last = s[s.year == s.year.max()]
    return 1.0 - last.groupby("replicate").program_active.mean().astype(float)
