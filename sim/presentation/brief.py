"""The one-page brief that opens a run's report (and the page's results).

:func:`build_brief` turns a finished run's tables into plain data: what district was
run (from the scenario actually run, not a preset's prose), one headline sentence for
each question a school board asks (which strategy grows students most; which keeps
most students proficient; what each does to teachers; what happens to the program),
and the strategies ranked by growth with proficiency beside it, each with its 95%
interval and a verdict against the baseline ('better', 'worse' or 'no clear
difference': whether the paired interval across replicates excludes zero).
:func:`brief_html` renders it as an HTML fragment (every name and label escaped) with
one figure; the report and the web page show the same brief.

Units: growth in SD of the state's fall scores (a year's fall-to-spring gain);
proficiency in percent of students at or above the state cut, its changes in
percentage points; stress 0-1; shares in percent. Students: those of the program
grades.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import pandas as pd

from sim.analysis.robustness import interval_kind, robustness
from sim.analysis.summaries import ALL, contrast, summarise
from sim.presentation import figures
from sim.presentation.narrative import (
    arm_labels,
    check_baseline,
    has_program,
    human_names,
    is_clear,
    join_words,
    number,
    paired_contrasts,
    robust_count,
    robustness_sentences,
    sign_change_sentences,
)

BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
NO_INTERVAL = "no interval (one replicate)"
HEADLINE_WORDS = {  # how a headline says clearly more / less of a measure
    "growth": {"more": "grew students clearly more", "less": "grew them clearly less",
               "either": "grew students clearly more or less"},
    "proficient": {"more": "kept clearly more students proficient",
                   "less": "kept clearly fewer", "either":
                   "kept clearly more or fewer students proficient"}}
GRADE_NAMES = {0: "K"}
CSS = """
.plsim-brief{max-width:1100px}.plsim-brief ul.headlines{padding-left:1.2em}
.plsim-brief ul.headlines li{margin-bottom:.45em;font-size:1.05em}
.plsim-brief table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
.plsim-brief th,.plsim-brief td{border:1px solid #ddd;padding:.3em .55em;text-align:left;
vertical-align:top}.plsim-brief th{background:#f3f3f3}
.plsim-brief td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.plsim-brief td.better{background:#e6f4ea;color:#185c2c}
.plsim-brief td.worse{background:#fce8e6;color:#8c1d18}
.plsim-brief td.unclear,.plsim-brief td.base{color:#555}
.plsim-brief p.caption{margin:.8em 0 0;font-weight:600}
.plsim-brief td.name{min-width:16em}.plsim-brief th{text-align:center}
.plsim-brief p.district{font-size:1.05em}.plsim-brief .note{font-size:.85em;color:#555}
.plsim-brief img{max-width:100%;height:auto}
"""


@dataclass(frozen=True)
class RankedRow:
    """One strategy in the brief's table (growth in SD, proficiency as a share 0-1)."""

    rank: int
    label: str
    name: str
    is_baseline: bool
    growth: tuple[float, float, float]  # mean, 95% interval across replicates
    growth_change: tuple[float, float, float]  # paired, minus the baseline
    growth_verdict: str
    proficient: tuple[float, float, float]
    proficient_change: tuple[float, float, float]
    proficient_verdict: str


@dataclass(frozen=True)
class Brief:
    """The brief as data: ``headlines`` are (question, sentence) pairs."""

    title: str
    district: str
    year: int
    baseline: str
    baseline_name: str
    names: dict[str, str]
    headlines: list[tuple[str, str]]
    rows: list[RankedRow]
    notes: list[str] = field(default_factory=list)
    # arm label -> "47 of 50": plausible models (plsim run --ensemble) keeping the sign of
    # its growth change against the baseline; empty without an ensemble
    robust: dict[str, str] = field(default_factory=dict)


# --- the district ----------------------------------------------------------------------
def _grade(g: int) -> str:
    return GRADE_NAMES.get(int(g), str(int(g)))


def _grade_span(grades: list[int]) -> str:
    grades = sorted(int(g) for g in grades)
    if not grades:
        return "no grades"
    if len(grades) == 1:
        return f"grade {_grade(grades[0])}"
    if grades == list(range(grades[0], grades[-1] + 1)):
        return f"grades {_grade(grades[0])}-{_grade(grades[-1])}"
    return "grades " + ", ".join(_grade(g) for g in grades)


def district_sentence(scenario: Mapping, baseline_name: str,
                      baseline_proficient: float | None = None) -> str:
    """The district that was run, from the scenario as run (``scenario``: its data, as in
    a run's manifest), e.g. '2 K-8 schools (grades K-8, 4 classes of 25 students per
    grade: 1,800 students); the program grades 6-8 hold 600 of them.'"""
    d = scenario.get("district", {})
    schools = int(d.get("schools", 0))
    grades = list(d.get("grades", range(0, 9)))
    per_grade = int(d.get("classes_per_grade", 0)) * int(d.get("class_size", 0))
    program = list(d.get("program_grades", []))
    students = schools * len(grades) * per_grade
    in_program = schools * len(program) * per_grade
    kind = (f"K-{_grade(max(grades))} " if len(grades) > 1 and min(grades) == 0 else "")
    noun = "school" if schools == 1 else "schools"
    text = (f"The district run: {schools:,} {kind}{noun} ({_grade_span(grades)}, "
            f"{d.get('classes_per_grade')} classes of {d.get('class_size')} students per "
            f"grade: {students:,} students); the program's {_grade_span(program)} "
            f"{'hold' if len(program) > 1 else 'holds'} "
            f"{in_program:,} of them")
    if baseline_proficient is not None and np.isfinite(baseline_proficient):
        text += (f", {number(100 * baseline_proficient, 0)}% of whom were proficient under "
                 f"{baseline_name}")
    arms = scenario.get("arms", [])
    reps, years = scenario.get("replicates"), scenario.get("years")
    text += (f". {len(arms)} strategies, each run on the same synthetic students "
             f"{reps} times (replicates) over {years} year{'s' if years != 1 else ''}.")
    return text


# --- verdicts and ranks ---------------------------------------------------------------
def verdict(mean: float, lo: float, hi: float) -> str:
    """'better' or 'worse' when the paired interval excludes zero, else 'no clear
    difference' (or 'no interval' with one replicate)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return NO_INTERVAL
    if not is_clear(lo, hi):
        return UNCLEAR
    return BETTER if mean > 0 else WORSE


def _triple(row, metric: str) -> tuple[float, float, float]:
    return tuple(float(row[f"{metric}{s}"]) for s in ("", "_lo", "_hi"))


def ranked_rows(summary: pd.DataFrame, contrasts: pd.DataFrame, baseline: str,
                names: Mapping[str, str], year: int) -> list[RankedRow]:
    """Every arm, ranked by mean growth in ``year`` (all program students), with its
    proficiency and both paired changes against ``baseline``."""
    s = summary[(summary.year == year) & (summary.start_band == ALL)].set_index("arm")
    c = contrasts[contrasts.start_band == ALL].set_index("arm")
    order = s["growth_sd"].sort_values(ascending=False, kind="stable").index
    nan3 = (np.nan, np.nan, np.nan)
    rows = []
    for rank, arm in enumerate(order, start=1):
        arm = str(arm)
        base = arm == baseline
        d = c.loc[arm] if arm in c.index else None
        g = (0.0, 0.0, 0.0) if base else (_triple(d, "growth_sd") if d is not None else nan3)
        p = (0.0, 0.0, 0.0) if base else (_triple(d, "proficient") if d is not None else nan3)
        rows.append(RankedRow(
            rank=rank, label=arm, name=names.get(arm, arm), is_baseline=base,
            growth=_triple(s.loc[arm], "growth_sd"), growth_change=g,
            growth_verdict="baseline" if base else verdict(*g),
            proficient=_triple(s.loc[arm], "proficient"), proficient_change=p,
            proficient_verdict="baseline" if base else verdict(*p)))
    return rows


# --- headlines -------------------------------------------------------------------------
def _fmt(metric: str, triple: tuple[float, float, float], signed: bool = True) -> str:
    f, digits, unit = (100.0, 1, " points") if metric == "proficient" else (1.0, 2, " SD")
    m, lo, hi = (f * v for v in triple)
    core = f"{number(m, digits, signed)}{unit}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return core
    return f"{core} [{number(lo, digits, True)}, {number(hi, digits, True)}]"


def _runner_up(student_years: pd.DataFrame, best: str, second: str, metric: str,
               year: int) -> tuple[float, float, float]:
    """The paired difference second - best (same students and streams)."""
    rows = student_years[student_years["arm"].isin([best, second])
                         & (student_years["year"] == year)]
    d = contrast(rows, second, best, year, metrics=(metric,)).set_index("start_band")
    return _triple(d.loc[ALL], metric) if ALL in d.index else (np.nan, np.nan, np.nan)


def _best_headline(metric: str, rows: list[RankedRow], student_years, year: int,
                   baseline_name: str) -> str:
    """Which strategy is highest on ``metric``, said only as far as the paired intervals
    allow: against the baseline, and against the runner-up."""
    key = "growth" if metric == "growth_sd" else "proficient"
    verb = "grew students" if key == "growth" else "kept students proficient"
    ordered = sorted(rows, key=lambda r: -getattr(r, key)[0])
    others = [r for r in rows if not r.is_baseline]
    verdicts = [getattr(r, f"{key}_verdict") for r in others]
    better, worse = verdicts.count(BETTER), verdicts.count(WORSE)
    best = ordered[0]
    if not others:
        return f"Only {baseline_name} was run: there is nothing to compare it with."
    if getattr(best, f"{key}_verdict") == BETTER:
        text = (f"{best.name} {verb} most: {_fmt(metric, getattr(best, f'{key}_change'))} "
                f"against {baseline_name}")
        if len(ordered) > 1:
            second = ordered[1]
            gap = _runner_up(student_years, best.label, second.label, metric, year)
            # said as the lead (best - next, >= 0): a signed number right after the next
            # one's name reads as that strategy's change against the baseline
            lead = _fmt(metric, (-gap[0], -gap[2], -gap[1]), signed=False)
            if is_clear(gap[1], gap[2]):
                text += f", clearly ahead of the next, {second.name}, by {lead}"
            elif np.isfinite(gap[1]):
                text += f", but not clearly ahead of the next, {second.name} (ahead by {lead})"
        return text + "."
    w = HEADLINE_WORDS[key]
    if better:
        return (f"{better} of the {len(others)} strategies {w['more']} than {baseline_name}; "
                f"the highest estimate, {best.name}, is not clearly above it.")
    if worse:
        who = [r.name for r in others if getattr(r, f"{key}_verdict") == WORSE]
        named = f" ({join_words(who)})" if len(who) <= 2 else ""
        return (f"No strategy {w['more']} than {baseline_name}; {worse} of the {len(others)} "
                f"others {w['less']}{named}.")
    return f"No strategy {w['either']} than {baseline_name}: every difference is within chance."


def _range_words(values: Mapping[str, float], f: float, digits: int, unit: str) -> str:
    lo_arm = min(values, key=values.get)
    hi_arm = max(values, key=values.get)
    lo, hi = number(f * values[lo_arm], digits), number(f * values[hi_arm], digits)
    if lo == hi:
        return f"{lo}{unit} under every strategy"
    return f"from {lo}{unit} ({lo_arm}) to {hi}{unit} ({hi_arm})"


def _teachers_headline(teacher_summary: pd.DataFrame | None,
                       names: Mapping[str, str]) -> str | None:
    if teacher_summary is None or not len(teacher_summary):
        return None
    t = teacher_summary.assign(arm=teacher_summary["arm"].astype(str))
    stress = {names.get(a, a): v for a, v in zip(t.arm, t.stress, strict=True)}
    exits = {names.get(a, a): v for a, v in zip(t.arm, t.exit_rate, strict=True)}
    return (f"Teachers' mean stress (0-1) ranged {_range_words(stress, 1, 2, '')}; the share "
            f"leaving each year {_range_words(exits, 100, 1, '%')}.")


def _program_headline(scenario: Mapping, school_summary: pd.DataFrame | None,
                      names: Mapping[str, str]) -> str:
    arms = scenario.get("arms", [])
    none = [names.get(a["label"], a["label"]) for a in arms if not has_program(a)]
    reviewed = [a for a in arms if has_program(a) and a.get("review")]
    unreviewed = [a for a in arms if has_program(a) and not a.get("review")]
    parts = []
    if reviewed and school_summary is not None and len(school_summary):
        last = school_summary[school_summary.year == school_summary.year.max()]
        share = dict(zip(last.arm.astype(str), last.program_active_share, strict=True))
        kept = [f"{number(100 * share[a['label']], 0)}% of schools under "
                f"{names.get(a['label'], a['label'])}" for a in reviewed if a["label"] in share]
        parts.append(f"By year {int(last.year.max())} the program still ran in "
                     + "; ".join(kept))
    if unreviewed and not reviewed:
        parts.append("No strategy in this run includes a program review, so no school could "
                     "drop the program")
    elif unreviewed:
        who = [names.get(a["label"], a["label"]) for a in unreviewed]
        parts.append(f"no review can drop the program under {join_words(who)}")
    if none:
        parts.append(f"{join_words(none)} {'runs' if len(none) == 1 else 'run'} no program")
    if not parts:
        return "No strategy runs the program."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


# --- building --------------------------------------------------------------------------
def build_brief(scenario: Mapping, student_years: pd.DataFrame,
                teacher_summary: pd.DataFrame | None = None,
                school_summary: pd.DataFrame | None = None, baseline: str | None = None,
                *, summary: pd.DataFrame | None = None,
                contrasts: pd.DataFrame | None = None,
                sign_changes: list[str] | None = None,
                robust: Mapping[str, str] | None = None) -> Brief:
    """The brief of a finished run, as data.

    Args:
        scenario: the scenario as run, as data (``manifest['scenario']``, or
            ``Scenario.model_dump(mode='json')``): its district and arms.
        student_years: the run's student-year rows (the program grades' at least).
        teacher_summary, school_summary: :mod:`sim.analysis.summaries`' tables.
        baseline: the arm the others are compared with (default the first).
        summary, contrasts: ``summarise(student_years)`` and ``paired_contrasts`` of the
            last year, when the caller already has them.
        sign_changes: ``narrative.sign_change_sentences`` of the same run and baseline,
            when the caller already has them (the brief notes how many there are).
        robust: arm label -> "47 of 50", the plausible models of an ensemble run that keep
            the sign of its growth change (a column of the ranked table).

    Raises:
        ScenarioError: unknown baseline arm.
    """
    labels = arm_labels(student_years)
    baseline = check_baseline(labels, baseline)
    names = human_names(scenario.get("arms", [])) or {a: a for a in labels}
    names = {a: names.get(a, a) for a in labels}
    year = int(student_years["year"].max())
    summary = summarise(student_years) if summary is None else summary
    contrasts = paired_contrasts(student_years, baseline, year) if contrasts is None else \
        contrasts
    rows = ranked_rows(summary, contrasts, baseline, names, year)
    base_row = next(r for r in rows if r.is_baseline)
    base_name = names[baseline]
    headlines = [
        ("Which strategy grows students most?",
         _best_headline("growth_sd", rows, student_years, year, base_name)),
        ("Which keeps most students proficient?",
         _best_headline("proficient", rows, student_years, year, base_name))]
    teachers = _teachers_headline(teacher_summary, names)
    if teachers:
        headlines.append(("What does each do to teachers?", teachers))
    headlines.append(("Does the program survive?",
                      _program_headline(scenario, school_summary, names)))
    notes = []
    reps = int(student_years["replicate"].nunique())
    if reps < 2:
        notes.append("One replicate: no intervals, so no difference can be told from chance.")
    if sign_changes is None:
        sign_changes = sign_change_sentences(student_years, baseline, names)
    if sign_changes:
        n = len(sign_changes)
        notes.append(f"{n} of the differences against {base_name} changed sign between years "
                     f"({'it is' if n == 1 else 'they are'} listed year by year in the "
                     "report): a result of the last year alone may not last.")
    return Brief(title=str(scenario.get("name", "run")),
                 district=district_sentence(scenario, base_name, base_row.proficient[0]),
                 year=year, baseline=baseline, baseline_name=base_name, names=names,
                 headlines=headlines, rows=rows, notes=notes, robust=dict(robust or {}))


# --- HTML ------------------------------------------------------------------------------
def _e(x) -> str:
    return html.escape(str(x))


def _cell(metric: str, triple, signed: bool) -> str:
    f, digits = (100.0, 1) if metric == "proficient" else (1.0, 2)
    m, lo, hi = (f * v for v in triple)
    if not np.isfinite(m):
        return "n/a"
    core = number(m, digits, signed)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return core
    return f"{core} [{number(lo, digits, signed)}, {number(hi, digits, signed)}]"


VERDICT_CLASS = {BETTER: "better", WORSE: "worse", UNCLEAR: "unclear", "baseline": "base",
                 NO_INTERVAL: "unclear"}


def table_html(brief: Brief) -> str:
    """The ranked table (escaped HTML)."""
    robust = bool(brief.robust)
    out = [f'<p class="caption">The strategies ranked by growth; the baseline is '
           f"{_e(brief.baseline_name)}.</p>"
           '<table class="ranked"><tr><th rowspan="2">rank</th>'
           '<th rowspan="2">strategy</th>'
           f'<th colspan="{4 if robust else 3}">growth (SD a year)</th>'
           '<th colspan="3">proficient (%)</th></tr><tr>'
           "<th>mean</th><th>change vs baseline</th><th>verdict</th>"
           + ("<th>robust: plausible models with the same direction</th>" if robust else "")
           + "<th>mean</th><th>change vs baseline (points)</th><th>verdict</th></tr>"]
    for r in brief.rows:
        change = ("baseline", "baseline") if r.is_baseline else (
            _cell("growth_sd", r.growth_change, True),
            _cell("proficient", r.proficient_change, True))
        cells = [f'<td class="num">{r.rank}</td>', f'<td class="name">{_e(r.name)}</td>',
                 f'<td class="num">{_e(_cell("growth_sd", r.growth, False))}</td>',
                 f'<td class="num">{_e(change[0])}</td>',
                 f'<td class="{VERDICT_CLASS[r.growth_verdict]}">{_e(r.growth_verdict)}</td>',
                 *([f'<td class="num">{_e(_robust_cell(brief, r))}</td>'] if robust else []),
                 f'<td class="num">{_e(_cell("proficient", r.proficient, False))}</td>',
                 f'<td class="num">{_e(change[1])}</td>',
                 f'<td class="{VERDICT_CLASS[r.proficient_verdict]}">'
                 f"{_e(r.proficient_verdict)}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _robust_cell(brief: Brief, r: RankedRow) -> str:
    return "baseline" if r.is_baseline else brief.robust.get(r.label, "n/a")


def brief_figure(brief: Brief) -> bytes:
    """The brief's figure: each strategy's paired change against the baseline, growth and
    proficiency side by side (PNG bytes)."""
    rows = [r for r in brief.rows if not r.is_baseline]
    return figures.change_bars(
        [r.name for r in rows], [r.growth_change for r in rows],
        [r.proficient_change for r in rows], brief.baseline_name, brief.year)


def brief_html(brief: Brief, figure: bool | str = True, glossary_link: bool = True) -> str:
    """The brief as an HTML fragment (its own <style>; every name escaped): the
    district, the headline sentences, the ranked table and (``figure``) one figure:
    ``brief_figure`` drawn here (True), none (False), or its PNG given as base64 text
    (a report's placeholder for it, drawn with the report's other figures)."""
    items = "".join(f"<li><strong>{_e(q)}</strong> {_e(s)}</li>" for q, s in brief.headlines)
    parts = [f"<style>{CSS}</style>", '<div class="plsim-brief">',
             f'<p class="district">{_e(brief.district)}</p>',
             f'<ul class="headlines">{items}</ul>', table_html(brief),
             f'<p class="note">Year {brief.year}, students of the program grades, ranked by '
             "growth. Brackets: 95% intervals across replicates; the changes are paired "
             f"(each strategy minus {_e(brief.baseline_name)} on the same students). "
             "Verdict: better or worse when the paired interval excludes zero, otherwise no "
             "clear difference."
             + (' Terms are explained in the <a href="#glossary">glossary</a>.'
                if glossary_link else "") + "</p>"]
    parts += [f'<p class="note">{_e(n)}</p>' for n in brief.notes]
    if figure and len(brief.rows) > 1:
        b64 = figure if isinstance(figure, str) else base64.b64encode(
            brief_figure(brief)).decode("ascii")
        alt = f"Each strategy's change against {brief.baseline_name}"
        parts.append(f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'
                     f"<figcaption>{_e(alt)}, year {brief.year}: growth (left) and "
                     "proficiency (right); bars are paired 95% intervals; green: clearly "
                     "better, red: clearly worse, grey: no clear difference.</figcaption>"
                     "</figure>")
    return "".join(parts) + "</div>"


def render(scenario, student_years: pd.DataFrame, teacher_summary: pd.DataFrame | None = None,
           school_summary: pd.DataFrame | None = None, baseline: str | None = None, *,
           summary: pd.DataFrame | None = None, glossary_link: bool = False,
           ensemble: pd.DataFrame | None = None, ensemble_source: str = "") -> str:
    """The brief of a finished run as an HTML fragment in one call (for the web page):
    ``scenario`` as data or as a validated Scenario (dumped to data here).

    ``ensemble``: each plausible model's means of an ensemble run
    (``analysis.robustness.member_means``): the ranked table then says in how many of them
    each strategy keeps its direction, and the report's section on how robust each
    comparison is follows (``robust_section``; ``ensemble_source``: the ensemble file's
    name it cites)."""
    data = scenario.model_dump(mode="json") if hasattr(scenario, "model_dump") else scenario
    robust = None
    if ensemble is not None:
        baseline = check_baseline(arm_labels(student_years), baseline)
        year = int(student_years["year"].max())
        contrasts = paired_contrasts(student_years, baseline, year)
        robust = robustness(ensemble, contrasts, baseline, year) if not contrasts.empty \
            else None
    brief = build_brief(data, student_years, teacher_summary, school_summary, baseline,
                        summary=summary, robust=robust_counts(robust))
    section = robust_section(robust, ensemble_source, brief.baseline_name, brief.names)
    extra = f'<div class="plsim-brief">{"".join(section)}</div>' if section else ""
    return brief_html(brief, glossary_link=glossary_link) + extra


# --- robustness across the plausible models of an ensemble run ---------------------------
def robust_counts(robust: pd.DataFrame | None) -> dict[str, str]:
    """Arm label -> '9 of 11' (plausible models keeping the sign of its growth change;
    ``analysis.robustness.robustness``'s rows), for the ranked table; {} without."""
    if robust is None or robust.empty:
        return {}
    return {str(r["arm"]): robust_count(r, "growth_sd") for r in robust.to_dict("records")}


def robust_section(robust: pd.DataFrame | None, source: str, baseline_name: str,
                   names: Mapping[str, str]) -> list[str]:
    """How robust each comparison is across the ensemble's plausible models, as HTML
    (a heading, what the counts mean, a sentence per comparison; every name escaped);
    none without an ensemble. ``source``: the ensemble file (only its name is shown)."""
    if robust is None or robust.empty:
        return []
    k = int(robust["members"].max())
    sentences = robustness_sentences(robust, baseline_name, names, interval_kind(k))
    return ["<h2>How robust is each comparison?</h2>",
            f'<p class="note">Every strategy was also run under each of {k} plausible models '
            "— parameter sets consistent with every calibration fact"
            + (f" (the ensemble {_e(PurePath(source).name)})" if source else "")
            + " — on the same students and random events. A comparison is robust when it "
            "keeps its direction in every plausible model: the count says in how many it "
            "does; the range is the change across the models (" + _e(interval_kind(k))
            + "), beside the 95% interval across replicates of the tables above.</p>",
            '<ul class="summary">' + "".join(f"<li>{_e(s)}</li>" for s in sentences)
            + "</ul>"]
