"""Plain-language comparisons of arms, generated from the numbers.

Every number in a sentence is a paired difference ``arm - baseline`` of
replicate means (the arms of a replicate share students and random streams),
with its 95% t-interval across replicates, computed by
:func:`sim.analysis.summaries.contrast`. Growth is in SD of the state's fall
scores; proficiency in percentage points of students at or above the state
cut; both over the students of the program grades.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sim.analysis.summaries import ALL, contrast
from sim.config.parameters import ArmSettings
from sim.config.scenario import ScenarioError
from sim.engine.outcomes import BANDS

PAIRED = ("growth_sd", "proficient")
BAND_WORDS = {
    "3+ below": "students who started 3 or more years below grade",
    "1-3 below": "students who started 1 to 3 years below grade",
    "on grade": "students who started within a year of grade level",
    "above": "students who started a year or more above grade",
}
PACING_WORDS = {
    "traditional": "grade-level pacing",
    "personalized": "the personalized playlist",
    "grade_level_first": "grade-level-first units",
    "teacher_paced": "teacher-paced groups",
    "extra_time": "extra time on each skill",
    "move_on": "move-on pacing",
}
TARGET_WORDS = {"near_cut": "students just below the cut",
                "furthest_behind": "the students furthest behind", "all": "every student"}
# Arm settings with words of their own below, and those left unsaid on purpose (the
# label; trust, sections and move-on days show in the tables and the pacing's words).
# Any other setting that departs from its default is said from its field's description
# (``_other_settings``), so a new arm option is described before anyone writes its words.
PHRASED = frozenset({"pacing", "floor", "ceiling", "test_prep_weeks", "gradual_floor",
                     "tutoring", "evaluation", "pd", "leaders", "review", "limit_paces",
                     "project_based", "advisory_hours_per_week"})
UNSAID = frozenset({"label", "trust", "sections", "move_on_days"})


# --- numbers ------------------------------------------------------------------------
def arm_labels(student_years: pd.DataFrame) -> list[str]:
    """Arm labels in the scenario's order (the categories of ``arm``)."""
    arm = student_years["arm"]
    if hasattr(arm, "cat"):
        return [str(a) for a in arm.cat.categories]
    return [str(a) for a in dict.fromkeys(arm)]


def check_baseline(labels: list[str], baseline: str | None, source: str = "") -> str:
    """The baseline arm (default the first); ScenarioError naming the arms if unknown
    (``source``, e.g. the results' folder, starts the message)."""
    if baseline is None:
        return labels[0]
    if baseline not in labels:
        where = f"{source}: " if source else ""
        raise ScenarioError(f"{where}--baseline {baseline!r}: no such arm; arms: "
                            f"{', '.join(labels)}")
    return baseline


def paired_contrasts(student_years: pd.DataFrame, baseline: str | None = None,
                     year: int | None = None) -> pd.DataFrame:
    """Paired differences of every other arm against ``baseline``, one row per arm x band.

    Columns: ``arm, start_band, year, growth_sd, growth_sd_lo, growth_sd_hi, proficient,
    proficient_lo, proficient_hi`` (growth in SD, proficiency as a share 0-1; ``_lo``/``_hi``
    the 95% interval across replicates, NaN with one replicate). Bands follow
    ``[ALL, *BANDS]``, arms the scenario's order; default year the last, default
    baseline the first arm.

    Raises:
        ScenarioError: unknown baseline arm or year.
    """
    labels = arm_labels(student_years)
    baseline = check_baseline(labels, baseline)
    years = sorted(int(y) for y in student_years["year"].unique())
    year = years[-1] if year is None else int(year)
    if year not in years:
        raise ScenarioError(f"year {year}: not in these results; years: "
                            f"{', '.join(map(str, years))}")
    cols = ["arm", "start_band", "year",
            *[f"{m}{s}" for m in PAIRED for s in ("", "_lo", "_hi")]]
    rows = student_years[student_years["year"] == year]  # less to average per contrast
    parts = [contrast(rows[rows["arm"].isin([arm, baseline])], arm, baseline, year,
                      metrics=PAIRED).assign(arm=arm, year=year)
             for arm in labels if arm != baseline]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out["start_band"] = pd.Categorical(out["start_band"].astype(str), categories=[ALL, *BANDS])
    out["arm"] = pd.Categorical(out["arm"], categories=[a for a in labels if a != baseline])
    return out[cols].sort_values(["arm", "start_band"]).reset_index(drop=True)


# --- words for arms ---------------------------------------------------------------
def _setting_phrases(arm: Mapping) -> dict[str, str]:
    """What an arm does: its pacing, and one phrase per setting that departs from the
    defaults."""
    pacing = arm.get("pacing", "traditional")
    out = {"pacing": PACING_WORDS.get(pacing, pacing)}
    if arm.get("floor") is not None:
        out["floor"] = f"a floor of {arm['floor']:g} years below grade"
    if arm.get("ceiling") is not None:
        out["ceiling"] = f"a ceiling of {arm['ceiling']:g} years above grade"
    if arm.get("test_prep_weeks"):
        out["test_prep_weeks"] = f"a {arm['test_prep_weeks']:g}-week test-prep window"
    if arm.get("gradual_floor"):
        start = arm["gradual_floor"].get("start_floor", 3)
        out["gradual_floor"] = (f"a floor rising from {start:g} years below grade to grade "
                                "level by the test")
    tutoring = arm.get("tutoring") or {}
    if tutoring.get("hours_per_week"):
        target = tutoring.get("target", "near_cut")
        out["tutoring"] = (f"{tutoring['hours_per_week']:g} h/week of tutoring for "
                           f"{TARGET_WORDS.get(target, target)}")
    if arm.get("evaluation") == "shared":
        out["evaluation"] = "shared (team) teacher evaluation"
    if arm.get("pd", "none") != "none":
        out["pd"] = f"{arm['pd']} pacing PD"
    if arm.get("leaders"):
        out["leaders"] = "leaders who respond to test pressure"
    if arm.get("review"):
        out["review"] = f"a program review after {arm['review'].get('after_years', 3)} years"
    if arm.get("limit_paces"):
        out["limit_paces"] = "teachers limited to the paces they can run"
    if arm.get("teacher_load"):
        out["teacher_load"] = f"teachers carrying {arm['teacher_load']:g} students"
    if arm.get("project_based"):
        out["project_based"] = "project-based structures"
    if arm.get("advisory_hours_per_week"):
        out["advisory"] = f"{arm['advisory_hours_per_week']:g} h/week of advisory catch-up"
    return out | _other_settings(arm)


def _other_settings(arm: Mapping, fields=None) -> dict[str, str]:
    """One phrase per arm setting without words of its own whose value departs from its
    default: its field's description and the value ('homework before the test
    (minutes a day) 30'). ``fields``: name -> pydantic field (``ArmSettings``')."""
    out = {}
    for name, field in (fields or ArmSettings.model_fields).items():
        if name in PHRASED or name in UNSAID or arm.get(name) is None:
            continue
        value = arm[name]
        if value == field.get_default(call_default_factory=True):
            continue
        what = field.description or name.replace("_", " ")
        if isinstance(value, bool):
            out[name] = what if value else f"{what}: no"
        elif isinstance(value, int | float):
            out[name] = f"{what} {value:g}"
        else:
            out[name] = f"{what} {value}"
    return out


def _join(phrases: list[str]) -> str:
    if len(phrases) <= 2:
        return " and ".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def describe_arm(arm: Mapping) -> str:
    """An arm's settings in words, e.g. 'the personalized playlist with a floor of 3 years
    below grade' (``arm``: one ``[[arms]]`` entry as data, as in a run's manifest)."""
    phrases = _setting_phrases(arm)
    pacing = phrases.pop("pacing")
    return pacing if not phrases else f"{pacing} with {_join(list(phrases.values()))}"


def describe_change(arm: Mapping, baseline: Mapping) -> str:
    """What ``arm`` changes relative to ``baseline``, e.g. 'adds a 6-week test-prep window'."""
    a, b = _setting_phrases(arm), _setting_phrases(baseline)
    pa, pb = a.pop("pacing"), b.pop("pacing")
    parts = [f"uses {pa} instead of {pb}"] if pa != pb else []
    added = [v for k, v in a.items() if b.get(k) != v]
    dropped = [v for k, v in b.items() if k not in a]
    if added:
        parts.append(f"adds {_join(added)}")
    if dropped:
        parts.append(f"drops {_join(dropped)}")
    return ", ".join(parts) if parts else "has the same settings"


def arm_descriptions(arms: list[Mapping], baseline: str | None = None) -> dict[str, str]:
    """Label -> words for every arm (``arms``: the scenario's ``[[arms]]`` as data).

    With a ``baseline`` label, the baseline is described by its settings and every other
    arm by what it changes: 'test_prep (which adds a 6-week test-prep window)'.
    """
    by_label = {a["label"]: a for a in arms}
    base = by_label.get(baseline) if baseline else None
    out = {}
    for label, a in by_label.items():
        if base is None or label == baseline:
            out[label] = f"{label} ({describe_arm(a)})"
        else:
            out[label] = f"{label} (which {describe_change(a, base)})"
    return out


# --- sentences ---------------------------------------------------------------------
def is_clear(lo: float, hi: float) -> bool:
    """The interval excludes zero (a change distinguishable from replicate noise)."""
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


def format_change(metric: str, mean: float, lo: float, hi: float) -> str:
    """A paired change in words: 'raised growth by 0.10 SD [+0.08, +0.11]', or 'did not
    clearly change proficiency (-1.2 points [-4.0, +1.6])' when the interval spans zero.

    ``metric``: ``growth_sd`` (SD, two decimals) or ``proficient`` (a share, written in
    percentage points with one decimal). Brackets: the 95% interval of the signed change
    (none when NaN, with one replicate).
    """
    if metric == "proficient":
        f, unit, name, digits = 100.0, "points", "proficiency", 1
    else:
        f, unit, name, digits = 1.0, "SD", "growth", 2
    m, lo_, hi_ = f * mean, f * lo, f * hi
    if not np.isfinite(m):
        return f"left {name} unmeasured (no students)"
    if not (np.isfinite(lo_) and np.isfinite(hi_)):  # one replicate: no interval
        if round(m, digits) == 0:
            return f"did not change {name}"
        verb = "raised" if m > 0 else "lowered"
        return f"{verb} {name} by {abs(m):.{digits}f} {unit}"
    interval = f"[{lo_:+.{digits}f}, {hi_:+.{digits}f}]"
    if not is_clear(lo, hi):
        return f"did not clearly change {name} ({m:+.{digits}f} {unit} {interval})"
    verb = "raised" if m > 0 else "lowered"
    return f"{verb} {name} by {abs(m):.{digits}f} {unit} {interval}"


def _band_change(row: pd.Series) -> str:
    return format_change("growth_sd", row["growth_sd"], row["growth_sd_lo"], row["growth_sd_hi"])


def comparison_sentences(student_years: pd.DataFrame, baseline: str, year: int | None = None,
                         *, descriptions: Mapping[str, str] | None = None,
                         contrasts: pd.DataFrame | None = None) -> list[str]:
    """One or two sentences per arm comparing it with ``baseline`` (default year: the last).

    The first sentence gives the paired change in growth (SD) and proficiency
    (percentage points) for all students of the program grades, with 95% intervals
    across replicates; the second the starting bands where growth changed most and
    least. ``descriptions`` maps labels to words (see :func:`arm_descriptions`); by
    default the labels are used. ``contrasts``: :func:`paired_contrasts` of the same
    rows, baseline and year, when the caller already has them.

    Raises:
        ScenarioError: unknown baseline arm or year.
    """
    table = paired_contrasts(student_years, baseline, year) if contrasts is None else contrasts
    names = dict(descriptions or {})
    base_name = names.get(baseline, baseline)
    reps = int(student_years["replicate"].nunique())
    noise = (f"(95% intervals across {reps} replicates)" if reps > 1 else
             "(one replicate: no interval, so no telling a policy's effect from chance)")
    if table.empty:
        return [f"Only one arm ({baseline}): there is nothing to compare it with."]
    out = []
    for arm, g in table.groupby("arm", observed=True, sort=True):
        g = g.set_index("start_band")
        if ALL not in g.index:
            continue
        a = g.loc[ALL]
        growth, prof = (format_change(m, a[m], a[f"{m}_lo"], a[f"{m}_hi"]) for m in PAIRED)
        out.append(f"In year {int(a.year)}, compared with {base_name}, {names.get(arm, arm)} "
                   f"{prof} and {growth} for all students of the program grades {noise}.")
        bands = g.drop(index=ALL).dropna(subset=["growth_sd"])
        if len(bands) >= 2:
            most, least = bands["growth_sd"].idxmax(), bands["growth_sd"].idxmin()
            out.append(f"By starting achievement, {arm} {_band_change(bands.loc[most])} for "
                       f"{BAND_WORDS.get(most, most)} (the most favourable change in growth) "
                       f"and {_band_change(bands.loc[least])} for "
                       f"{BAND_WORDS.get(least, least)} (the least favourable).")
    return out


def accountability_sentences(teacher_summary: pd.DataFrame,
                             school_summary: pd.DataFrame) -> list[str]:
    """One sentence per arm on teachers and schools, from the run's summaries
    (:func:`sim.analysis.summaries.teacher_summary` and ``school_summary``): how well
    value-added estimates track true effects (correlation), the share rated in the wrong
    band (%), teachers' mean stress (0-1) and the share leaving per year (%), and in the
    last year the share of schools still running the program and with a test-prep window
    (%). Means across replicates."""
    last = school_summary[school_summary.year == school_summary.year.max()].set_index("arm")
    out = []
    for r in teacher_summary.itertuples():
        text = (f"{r.arm}: teachers' value-added estimates correlated "
                f"{r.corr_estimate_true:.2f} with their true effects and "
                f"{100 * r.misclassified:.0f}% were rated in the wrong band; their mean "
                f"stress was {r.stress:.2f} (0-1) and {100 * r.exit_rate:.1f}% left each year")
        if r.arm in last.index:
            s = last.loc[r.arm]
            text += (f"; in year {int(s.year)} the program still ran in "
                     f"{100 * s.program_active_share:.0f}% of schools and "
                     f"{100 * s.window_share:.0f}% had a test-prep window")
        out.append(text + ".")
    return out
