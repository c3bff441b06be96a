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

from sim.analysis.summaries import ALL, contrast, replicate_means
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
# label; move-on days show in the pacing's words).
# Any other setting that departs from its default is said from its field's description
# (``_other_settings``), so a new arm option is described before anyone writes its words.
PHRASED = frozenset({"pacing", "floor", "ceiling", "test_prep_weeks", "gradual_floor",
                     "tutoring", "evaluation", "pd", "leaders", "review", "limit_paces",
                     "project_based", "advisory_hours_per_week",
                     "sections", "trust"})
UNSAID = frozenset({"label", "move_on_days"})
# a strategy's name as a person reads it: its pacing, then what it adds (human_names)
PACING_NAMES = {
    "traditional": "Grade-level pacing",
    "personalized": "Personalized playlist",
    "grade_level_first": "Grade-level-first units",
    "teacher_paced": "Teacher-paced groups",
    "extra_time": "Extra time on each skill",
    "move_on": "Move-on pacing",
}
TARGET_NAMES = {"near_cut": "near the cut", "furthest_behind": "for those furthest behind",
                "all": "for everyone"}
MIN_BAND_SHARE = 0.1  # a starting band is compared on its own only with this share of students
DEFAULT_TRUST = ArmSettings.model_fields["trust"].default  # other values are named


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
    if arm.get("sections", 1) > 1:
        out["sections"] = f"teachers of {arm['sections']} sections each"
    if arm.get("trust", DEFAULT_TRUST) != DEFAULT_TRUST:
        out["trust"] = f"teams of trust {arm['trust']:g} (0-1)"
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


def join_words(phrases: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(phrases) <= 2:
        return " and ".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _name_parts(arm: Mapping) -> list[str]:
    """What an arm adds to its pacing, in a few words each (for :func:`human_name`)."""
    parts = []
    if arm.get("floor") is not None:
        parts.append(f"floor {arm['floor']:g} years below")
    if arm.get("ceiling") is not None:
        parts.append(f"ceiling {arm['ceiling']:g} years above")
    if arm.get("gradual_floor"):
        parts.append("floor rising to grade level")
    if arm.get("test_prep_weeks"):
        parts.append(f"{arm['test_prep_weeks']:g}-week test prep")
    tutoring = arm.get("tutoring") or {}
    if tutoring.get("hours_per_week"):
        target = tutoring.get("target", "near_cut")
        parts.append(f"{tutoring['hours_per_week']:g} h/week tutoring "
                     f"{TARGET_NAMES.get(target, target)}")
    if arm.get("evaluation") == "shared":
        parts.append("team evaluation")
    if arm.get("trust", DEFAULT_TRUST) != DEFAULT_TRUST:
        parts.append("high-trust teams" if arm["trust"] > DEFAULT_TRUST else "low-trust teams")
    if arm.get("pd", "none") != "none":
        parts.append(f"{arm['pd']} PD")
    if arm.get("leaders"):
        parts.append("leaders under test pressure")
    if arm.get("review"):
        parts.append(f"review after {arm['review'].get('after_years', 3)} years")
    if arm.get("limit_paces"):
        parts.append("paces within teachers' capacity")
    if arm.get("sections", 1) > 1:
        parts.append(f"{arm['sections']} sections per teacher")
    if arm.get("teacher_load"):
        parts.append(f"{arm['teacher_load']:g} students per teacher")
    if arm.get("project_based"):
        parts.append("project-based")
    if arm.get("advisory_hours_per_week"):
        parts.append(f"{arm['advisory_hours_per_week']:g} h/week advisory")
    return parts


def human_name(arm: Mapping) -> str:
    """A strategy's name from its composition, e.g. 'Personalized playlist + floor 3 years
    below grade + 6-week test prep' (``arm``: one ``[[arms]]`` entry as data)."""
    pacing = arm.get("pacing", "traditional")
    return " + ".join([PACING_NAMES.get(pacing, str(pacing)), *_name_parts(arm)])


def human_names(arms: list[Mapping]) -> dict[str, str]:
    """Label -> :func:`human_name` for every arm of a scenario, in its order. Two arms
    whose settings read the same (they differ in a setting the name leaves out) keep
    their labels in brackets, so every name stays one strategy's."""
    names = {a["label"]: human_name(a) for a in arms}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {label: f"{n} ({label})" if counts[n] > 1 else n for label, n in names.items()}


def has_program(arm: Mapping) -> bool:
    """Whether the arm runs the personalized-learning program (any pacing but grade-level
    pacing of the whole class): only then is there a program to keep or drop."""
    return arm.get("pacing", "traditional") != "traditional"


def number(x: float, digits: int, signed: bool = False) -> str:
    """``x`` with ``digits`` decimals, rounded first so that no '-0.00' is printed (a
    value that rounds to zero reads '0.00', or '+0.00' when ``signed``)."""
    r = round(float(x), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{r:{'+' if signed else ''}.{digits}f}"


def format_ci(mean: float, lo: float, hi: float, f: float = 1.0, digits: int = 2,
              signed: bool = False, bounds: tuple[float, float] | None = None) -> str:
    """'mean [lo, hi]' scaled by ``f`` (100: a share in %, or a change in points) with
    ``digits`` decimals, as the reports' tables write a number with its 95% interval;
    ``bounds``: the quantity's range (a share's interval stays within [0, 1], a
    correlation's within [-1, 1])."""
    if not np.isfinite(mean):
        return "n/a"
    core = number(f * mean, digits, signed)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return core
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return f"{core} [{number(f * lo, digits, signed)}, {number(f * hi, digits, signed)}]"


def describe_arm(arm: Mapping) -> str:
    """An arm's settings in words, e.g. 'the personalized playlist with a floor of 3 years
    below grade' (``arm``: one ``[[arms]]`` entry as data, as in a run's manifest)."""
    phrases = _setting_phrases(arm)
    pacing = phrases.pop("pacing")
    return pacing if not phrases else f"{pacing} with {join_words(list(phrases.values()))}"


def describe_change(arm: Mapping, baseline: Mapping) -> str:
    """What ``arm`` changes relative to ``baseline``, e.g. 'adds a 6-week test-prep window'."""
    a, b = _setting_phrases(arm), _setting_phrases(baseline)
    pa, pb = a.pop("pacing"), b.pop("pacing")
    parts = [f"uses {pa} instead of {pb}"] if pa != pb else []
    added = [v for k, v in a.items() if b.get(k) != v]
    dropped = [v for k, v in b.items() if k not in a]
    if added:
        parts.append(f"adds {join_words(added)}")
    if dropped:
        parts.append(f"drops {join_words(dropped)}")
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


def _units(metric: str) -> tuple[float, str, str, int]:
    """(factor, unit, name, decimals) of a paired metric as the sentences write it."""
    if metric == "proficient":
        return 100.0, "points", "proficiency", 1
    return 1.0, "SD", "growth", 2


def format_change(metric: str, mean: float, lo: float, hi: float) -> str:
    """A paired change in words: 'raised growth by 0.10 SD [+0.08, +0.11]', or 'did not
    clearly change proficiency (-1.2 points [-4.0, +1.6])' when the interval spans zero.

    ``metric``: ``growth_sd`` (SD, two decimals) or ``proficient`` (a share, written in
    percentage points with one decimal). Brackets: the 95% interval of the signed change
    (none when NaN, with one replicate).
    """
    f, unit, name, digits = _units(metric)
    m, lo_, hi_ = f * mean, f * lo, f * hi
    if not np.isfinite(m):
        return f"left {name} unmeasured (no students)"
    if not (np.isfinite(lo_) and np.isfinite(hi_)):  # one replicate: no interval
        if round(m, digits) == 0:
            return f"did not change {name}"
        verb = "raised" if m > 0 else "lowered"
        return f"{verb} {name} by {number(abs(m), digits)} {unit}"
    interval = f"[{number(lo_, digits, True)}, {number(hi_, digits, True)}]"
    if not is_clear(lo, hi):
        return f"did not clearly change {name} ({number(m, digits, True)} {unit} {interval})"
    verb = "raised" if m > 0 else "lowered"
    return f"{verb} {name} by {number(abs(m), digits)} {unit} {interval}"


def _band_change(row: pd.Series) -> str:
    return format_change("growth_sd", row["growth_sd"], row["growth_sd_lo"], row["growth_sd_hi"])


def band_shares(student_years: pd.DataFrame, year: int | None = None) -> dict[str, float]:
    """Starting band -> its share of the program grades' students in ``year`` (default
    the last), from the first arm's rows (every arm has the same students)."""
    first = arm_labels(student_years)[0]
    rows = student_years[student_years["arm"] == first]
    year = int(rows["year"].max()) if year is None else int(year)
    reps = replicate_means(rows[rows["year"] == year], ("growth_sd",))
    reps = reps[reps["arm"] == first]  # the other arms' categories come back empty
    n = reps.groupby("start_band", observed=True)["n_students"].mean()
    total = n.get(ALL, np.nan)
    return {str(b): float(v / total) for b, v in n.items() if b != ALL and total > 0}


def _band_sentence(arm_name: str, bands: pd.DataFrame, shares: Mapping[str, float]) -> str:
    """Where growth changed most and least favourably, among the starting bands that hold
    at least MIN_BAND_SHARE of the students and whose interval excludes zero."""
    big = [b for b in bands.index if shares.get(str(b), 0.0) >= MIN_BAND_SHARE]
    clear = bands.loc[[b for b in big if is_clear(bands.loc[b, "growth_sd_lo"],
                                                  bands.loc[b, "growth_sd_hi"])]]
    if len(clear) >= 2:
        most, least = clear["growth_sd"].idxmax(), clear["growth_sd"].idxmin()
        text = (f"By starting achievement, {arm_name} {_band_change(clear.loc[most])} for "
                f"{BAND_WORDS.get(most, most)} (the most favourable clear change in growth) "
                f"and {_band_change(clear.loc[least])} for {BAND_WORDS.get(least, least)} "
                "(the least favourable)")
    elif len(clear) == 1:
        only = clear.index[0]
        text = (f"By starting achievement, growth changed clearly only for "
                f"{BAND_WORDS.get(only, only)}: {arm_name} {_band_change(clear.loc[only])}")
    else:
        text = (f"By starting achievement, {arm_name} changed growth clearly for no starting "
                "band that holds at least a tenth of the students")
    return text + "."


def small_bands_sentence(shares: Mapping[str, float]) -> str | None:
    """The starting bands left out of the band comparisons (under MIN_BAND_SHARE of the
    students), with their shares; None when there are none."""
    small = [b for b, v in shares.items() if v < MIN_BAND_SHARE]
    if not small:
        return None
    listed = join_words([f"{BAND_WORDS.get(b, b)} ({number(100 * shares[b], 0)}% of the "
                         "students)" for b in small])
    return (f"Starting bands with under a tenth of the students are not singled out above: "
            f"{listed}.")


def comparison_sentences(student_years: pd.DataFrame, baseline: str, year: int | None = None,
                         *, descriptions: Mapping[str, str] | None = None,
                         contrasts: pd.DataFrame | None = None,
                         names: Mapping[str, str] | None = None) -> list[str]:
    """Two sentences per arm comparing it with ``baseline`` (default year: the last).

    The first sentence gives the paired change in growth (SD) and proficiency
    (percentage points) for all students of the program grades, with 95% intervals
    across replicates; the second the starting bands where growth changed most and
    least favourably, among the bands with at least a tenth of the students and a change
    whose interval excludes zero; a last sentence names the bands left out, if any.
    ``descriptions`` maps labels to words (see :func:`arm_descriptions`) for the first
    sentence, ``names`` to short names (see :func:`human_names`) for the second; by
    default the labels are used. ``contrasts``: :func:`paired_contrasts` of the same
    rows, baseline and year, when the caller already has them.

    Raises:
        ScenarioError: unknown baseline arm or year.
    """
    table = paired_contrasts(student_years, baseline, year) if contrasts is None else contrasts
    words = dict(descriptions or {})
    short = dict(names or {})
    base_name = words.get(baseline, baseline)
    reps = int(student_years["replicate"].nunique())
    noise = (f"(95% intervals across {reps} replicates)" if reps > 1 else
             "(one replicate: no interval, so no telling a policy's effect from chance)")
    if table.empty:
        return [f"Only one arm ({baseline}): there is nothing to compare it with."]
    shares = band_shares(student_years, int(table["year"].iloc[0]))
    out = []
    for arm, g in table.groupby("arm", observed=True, sort=True):
        g = g.set_index("start_band")
        if ALL not in g.index:
            continue
        a = g.loc[ALL]
        growth, prof = (format_change(m, a[m], a[f"{m}_lo"], a[f"{m}_hi"]) for m in PAIRED)
        out.append(f"In year {int(a.year)}, compared with {base_name}, {words.get(arm, arm)} "
                   f"{prof} and {growth} for all students of the program grades {noise}.")
        bands = g.drop(index=ALL).dropna(subset=["growth_sd"])
        if len(bands):
            out.append(_band_sentence(short.get(arm, arm), bands, shares))
    small = small_bands_sentence(shares)
    return out + ([small] if small else [])


def _sign(x: float, digits: int) -> int:
    r = round(float(x), digits) if np.isfinite(x) else 0.0
    return int(np.sign(r))


def sign_change_sentences(student_years: pd.DataFrame, baseline: str,
                          names: Mapping[str, str] | None = None) -> list[str]:
    """One sentence for each arm and measure (growth, proficiency) whose paired difference
    from ``baseline`` (all program students) changes sign between years, e.g. 'The
    difference in proficiency between B and A changed sign between years: -1.2 points
    [-2.0, -0.4] in year 1, then +0.8 points [-0.1, +1.7] in year 2.' Differences that
    round to zero carry no sign; every year is listed where the sign differs from the
    last signed year's."""
    names = dict(names or {})
    years = sorted(int(y) for y in student_years["year"].unique())
    if len(years) < 2:
        return []
    per_year = [paired_contrasts(student_years, baseline, y) for y in years]
    table = pd.concat(per_year, ignore_index=True)
    table = table[table["start_band"] == ALL]
    out = []
    for arm, g in table.groupby("arm", observed=True, sort=True):
        g = g.sort_values("year")
        for metric in PAIRED:
            f, unit, name, digits = _units(metric)
            steps, last = [], 0
            for r in g.itertuples():
                sign = _sign(f * getattr(r, metric), digits)
                if sign == 0:
                    continue
                if last and sign != last:
                    steps.append(r)
                if not steps and last == 0:
                    first = r
                last = sign
            if not steps:
                continue

            def said(r, f=f, unit=unit, digits=digits, metric=metric):
                m, lo, hi = (f * getattr(r, metric + s) for s in ("", "_lo", "_hi"))
                ci = (f" [{number(lo, digits, True)}, {number(hi, digits, True)}]"
                      if np.isfinite(lo) and np.isfinite(hi) else "")
                return f"{number(m, digits, True)} {unit}{ci} in year {int(r.year)}"

            then = ", then ".join(said(r) for r in steps[:4])
            more = f" (and {len(steps) - 4} more changes of sign)" if len(steps) > 4 else ""
            out.append(f"The difference in {name} between {names.get(arm, arm)} and "
                       f"{names.get(baseline, baseline)} changed sign between years: "
                       f"{said(first)}, then {then}{more}.")
    return out


def accountability_sentences(teacher_summary: pd.DataFrame, school_summary: pd.DataFrame,
                             arms: list[Mapping] | None = None,
                             names: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per arm on teachers and schools, from the run's summaries
    (:func:`sim.analysis.summaries.teacher_summary` and ``school_summary``): how well
    value-added estimates track true effects (correlation), the share rated in the wrong
    band (%), teachers' mean stress (0-1) and the share leaving per year (%), and in the
    last year the share of schools with a test-prep window (%) and, for an arm whose
    program a review can drop, the share still running it (%). Means across replicates.

    ``arms`` (the scenario's ``[[arms]]`` as data) tells which arms run a program and
    which have a review; without it every arm's program share is given. ``names`` maps
    labels to the names written (default the labels)."""
    last = school_summary[school_summary.year == school_summary.year.max()].set_index("arm")
    settings = {a["label"]: a for a in arms or []}
    names = dict(names or {})
    out = []
    for r in teacher_summary.itertuples():
        text = (f"{names.get(r.arm, r.arm)}: teachers' value-added estimates correlated "
                f"{number(r.corr_estimate_true, 2)} with their true effects and "
                f"{number(100 * r.misclassified, 0)}% were rated in the wrong band; their "
                f"mean stress was {number(r.stress, 2)} (0-1) and "
                f"{number(100 * r.exit_rate, 1)}% left each year")
        if r.arm in last.index:
            s, arm = last.loc[r.arm], settings.get(r.arm)
            window = f"{number(100 * s.window_share, 0)}% of schools had a test-prep window"
            if arm is not None and not has_program(arm):
                text += f"; in year {int(s.year)}, {window} (this arm runs no program)"
            elif arm is not None and not arm.get("review"):
                text += (f"; in year {int(s.year)}, {window} (no review can drop this arm's "
                         "program)")
            else:
                text += (f"; in year {int(s.year)} the program still ran in "
                         f"{number(100 * s.program_active_share, 0)}% of schools and {window}")
        out.append(text + ".")
    return out


# --- robustness across a parameter ensemble (plsim run --ensemble) ----------------------
_MORE_LESS = {"growth_sd": ("grows students more than", "grows students less than",
                            "grows students as much as"),
              "proficient": ("keeps more students proficient than",
                             "keeps fewer students proficient than",
                             "keeps as many students proficient as")}


def robust_count(row: Mapping, metric: str) -> str:
    """'47 of 50' (members keeping the sign of the run's own difference), or ''."""
    agree, k = row.get(f"{metric}_agree"), row.get(f"{metric}_members")
    if agree is None or k is None or not np.isfinite(agree) or not k:
        return ""
    return f"{int(agree)} of {int(k)}"


def in_models(row: Mapping, metric: str) -> str:
    """'in 47 of 50 plausible models' (``robust_count`` in words), or ''."""
    count = robust_count(row, metric)
    return f"in {count} plausible models" if count else ""


def robust_level(agree: int, members: int) -> str:
    """How robust a comparison is whose sign ``agree`` of ``members`` plausible models
    keep: 'every' (all of them), 'most' (90% or more) or 'not' (fewer)."""
    return "every" if agree == members else "not" if agree < 0.9 * members else "most"


ROBUST_WORDS = {"every": "Robust: every plausible model agrees",
                "most": "Robust in most plausible models",
                "not": "Not robust: the plausible models disagree on its direction"}


def across_models(metric: str, low: float, high: float, unit: bool = True) -> str:
    """The interval across plausible models of a paired change in the metric's units:
    '-0.12 to -0.03 SD' (growth) or '-4.0 to +1.2 points' (proficiency, a share); without
    the unit when ``unit`` is false (a table's header names it)."""
    f, words, _, digits = _units(metric)
    span = f"{number(f * low, digits, True)} to {number(f * high, digits, True)}"
    return f"{span} {words}" if unit else span


def robustness_sentences(robust: pd.DataFrame, baseline_name: str,
                         names: Mapping[str, str], interval_words: str) -> list[str]:
    """How robust each comparison with the baseline is across the plausible models: 'Floor
    3 grows students less than Traditional in 47 of 50 plausible models (change in growth
    -0.12 to -0.03 SD across them, smallest to largest). Robust in most plausible models.'"""
    out = []
    for r in robust.to_dict("records"):
        name = names.get(r["arm"], r["arm"])
        for metric in ("growth_sd", "proficient"):
            where = in_models(r, metric)
            if not where:
                continue
            f, _, what, digits = _units(metric)
            mean = r[metric]
            more, less, same = _MORE_LESS[metric]
            verb = same if round(f * mean, digits) == 0 else (more if mean > 0 else less)
            level = robust_level(int(r[f"{metric}_agree"]), int(r[f"{metric}_members"]))
            span = across_models(metric, r[f"{metric}_ens_low"], r[f"{metric}_ens_high"])
            out.append(f"{name} {verb} {baseline_name} {where} (change in {what} {span} "
                       f"across them, {interval_words}). {ROBUST_WORDS[level]}.")
    return out
