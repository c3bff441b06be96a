"""A finished run or sweep as one self-contained HTML file.

``write_report(DIR, OUT)`` reads the saved results (never a live model) and
writes one HTML file whose figures are embedded as base64 PNG data URIs: no
external stylesheet, script, image or link, so it can be mailed or opened
offline. The file is written under a temporary name and renamed.

A run's report opens with a one-page brief (:mod:`sim.presentation.brief`: the
district run, a headline per board question, the strategies ranked with verdicts
against the baseline, one figure); then a plain-language summary of each strategy
against the baseline (:mod:`sim.presentation.narrative`), what was run (scenario,
strategies, seeds, version, commit, command), growth versus proficiency with paired
intervals against the baseline (all students and by starting band), trajectories
over years, time use, teachers (ratings versus true effects, stress, exits), schools
(test-prep windows, program survival by year) and a glossary of every technical
term. Strategies are named from their composition (``narrative.human_names``).

A sweep's report: what was run (design, parameters, outcomes), how robust each
comparison is across an ensemble's plausible models (``plsim sweep --ensemble``:
:mod:`sim.presentation.sweep_robustness`), each outcome against each parameter, and
Sobol or Morris indices for sobol and morris designs (:mod:`sim.experiments.sensitivity`).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.analysis import figures as run_figures
from sim.analysis.robustness import ENSEMBLE_FILE, robustness
from sim.analysis.summaries import (
    ALL,
    METRICS,
    school_summary,
    summarise,
    teacher_summary,
)
from sim.config.scenario import ScenarioError
from sim.experiments import sensitivity
from sim.experiments.executor import Executor, resolve_workers
from sim.experiments.storage import atomic_write
from sim.presentation import figures, sweep_robustness
from sim.presentation.brief import (
    brief_figure,
    brief_html,
    build_brief,
    robust_counts,
    robust_section,
)
from sim.presentation.narrative import (
    accountability_sentences,
    arm_labels,
    check_baseline,
    comparison_sentences,
    describe_arm,
    describe_change,
    format_ci,
    has_program,
    human_names,
    number,
    paired_contrasts,
    sign_change_sentences,
)
from sim.presentation.report_text import GLOSSARY, STYLE

RUN_TABLES = ("student_years", "teacher_years", "school_years")
# what the report reads of ``student_years`` (the summary's and the paired contrasts' keys
# and metrics): a few of its columns, so a run's report does not grow with all of them
STUDENT_COLUMNS = ("arm", "replicate", "year", "start_band", "program_grade", "in_program",
                   *METRICS)
REPORT = "report.html"  # the report's name in a run's or a sweep's directory
TEXT_COLUMNS = {"arm", "strategy", "label in the scenario", "starting band", "settings",
                "what it changes", "parameter", "varied over", "outcome",
                "growth: kept its sign", "proficient: kept its sign"}
# --- reading ------------------------------------------------------------------------
def _read_manifest(d: Path) -> dict:
    if not d.is_dir():
        raise ScenarioError(f"{d}: no such directory")
    path = d / "manifest.json"
    if not path.is_file():
        raise ScenarioError(f"{d}: not a finished run or sweep directory (no manifest.json); "
                            "give the --out directory of `plsim run` or `plsim sweep`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ScenarioError(f"{path}: unreadable ({type(err).__name__})") from None
    if not isinstance(manifest, dict):
        raise ScenarioError(f"{path}: not a plsim manifest")
    return manifest


def kind(run_dir: str | Path) -> str:
    """``'run'`` or ``'sweep'``, from the directory's manifest; ScenarioError otherwise."""
    d = Path(run_dir)
    manifest = _read_manifest(d)
    if "sweep" in manifest and "problem" in manifest:
        return "sweep"
    if "scenario" in manifest and "files" in manifest:
        return "run"
    raise ScenarioError(f"{d / 'manifest.json'}: neither a run's nor a sweep's manifest")


def read_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """A run's student, teacher and school tables; ScenarioError when one is missing.

    Of ``student_years`` only the program grades' rows and the columns the report uses
    (``STUDENT_COLUMNS``) are read (everything the report shows is about them): a third
    or less of a K-8 district's rows and a fifth of the columns in memory, so the
    report's memory stays a small part of the run's however many replicates it has.
    """
    d = Path(run_dir)
    tables = {}
    for name in RUN_TABLES:
        path = d / f"{name}.parquet"
        if not path.is_file():
            raise ScenarioError(f"{d}: not a complete run ({path.name} is missing)")
        columns, program_only = None, None
        try:
            if name == "student_years":
                have = set(pq.read_schema(path).names)
                columns = [c for c in STUDENT_COLUMNS if c in have]
                program_only = [("program_grade", "==", True)]
            tables[name] = pd.read_parquet(path, columns=columns, filters=program_only)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise ScenarioError(f"{path}: unreadable ({type(err).__name__})") from None
    return tables


def read_run(run_dir: str | Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A finished run's manifest and tables; ScenarioError when one is missing."""
    return _read_manifest(Path(run_dir)), read_tables(run_dir)


# --- HTML pieces ----------------------------------------------------------------------
def _e(x) -> str:
    return html.escape(str(x))


def _img(data: bytes | str, caption: str) -> str:
    """A figure with its caption; ``data``: PNG bytes or a ``_Figures.later`` placeholder."""
    b64 = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _table(frame: pd.DataFrame) -> str:
    """An HTML table; columns other than the TEXT_COLUMNS are numbers (right-aligned)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f"<td>{_e(v)}</td>" if c in TEXT_COLUMNS else
                        f'<td class="num">{_e(v)}</td>'
                        for c, v in zip(frame.columns, row, strict=True))
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="wide"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")


# --- a run ---------------------------------------------------------------------------
def _changed_by_command(manifest: dict) -> bool:
    """Whether the run's command changed the scenario file's settings (``--set``), so its
    prose description may no longer describe what was run."""
    command = manifest.get("command")
    words = command if isinstance(command, list) else str(command or "").split()
    return any(str(w) == "--set" or str(w).startswith("--set=") for w in words)


def _description(manifest: dict) -> str:
    sc = manifest["scenario"]
    if _changed_by_command(manifest):
        return ("not shown: --set changed the scenario file's settings, so its prose may "
                "not describe this run (the district above is the one run)")
    return " ".join(str(sc.get("description", "")).split())


def _what_was_run(manifest: dict, baseline: str, names: dict[str, str]) -> str:
    sc = manifest["scenario"]
    seeds = manifest.get("seeds", {})
    command = manifest.get("command")
    rows = [("scenario", sc.get("name", "?")), ("description", _description(manifest)),
        ("years", sc.get("years")), ("replicates", sc.get("replicates")),
        ("seed", seeds.get("seed", sc.get("seed"))),
        ("schools", sc.get("district", {}).get("schools")),
        ("program grades", ", ".join(map(str, sc.get("district", {}).get("program_grades",
                                                                         [])))),
        ("baseline of the comparisons", f"{names.get(baseline, baseline)} ({baseline})"),
        ("plsim version", manifest.get("plsim_version", "not recorded")),
        ("git commit", manifest.get("git_commit") or "not recorded"),
        ("command", " ".join(command) if isinstance(command, list) else command or
         "not recorded"),
        ("run time", f"{manifest['seconds']} s" if "seconds" in manifest else "not recorded"),
        ("rows", ", ".join(f"{k}: {v}" for k, v in manifest.get("rows", {}).items()))]
    base = next((a for a in sc.get("arms", []) if a["label"] == baseline), {})
    arms = pd.DataFrame([{"strategy": names.get(a["label"], a["label"]),
                          "label in the scenario": a["label"], "settings": describe_arm(a),
                          "what it changes": "the baseline" if a["label"] == baseline else
                          describe_change(a, base)}
                         for a in sc.get("arms", [])])
    return ("<h2>What was run</h2>" + _kv_table(rows) + "<h3>Strategies</h3>" + _table(arms)
            + '<p class="note">Every arm of a replicate runs on the same synthetic students '
              "with the same random streams (common random numbers): differences between "
              "arms are the policy's. Intervals are 95% t-intervals across replicates.</p>")


def _frontier_table(summary: pd.DataFrame, contrasts: pd.DataFrame, year: int,
                    baseline: str, names: dict[str, str]) -> pd.DataFrame:
    s = summary[summary.year == year]
    diff = contrasts.set_index(["arm", "start_band"])
    rows = []
    for r in s.itertuples():
        key = (r.arm, r.start_band)
        d = diff.loc[key] if key in diff.index else None
        rows.append({
            "starting band": str(r.start_band), "strategy": names.get(str(r.arm), str(r.arm)),
            "students": f"{r.n_students:.0f}",
            "growth (SD)": format_ci(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi),
            "proficient (%)": format_ci(r.proficient, r.proficient_lo, r.proficient_hi, 100, 1,
                                  bounds=(0, 1)),
            "growth vs baseline (SD)": "baseline" if d is None else format_ci(
                d.growth_sd, d.growth_sd_lo, d.growth_sd_hi, signed=True),
            "proficient vs baseline (points)": "baseline" if d is None else format_ci(
                d.proficient, d.proficient_lo, d.proficient_hi, 100, 1, signed=True),
            "grade-level time (%)": number(100 * r.grade_level_share, 0),
            "mastered time (%)": number(100 * r.mastered_share, 0),
            "switches": number(r.switches, 1)})
    out = pd.DataFrame(rows)
    order = {b: i for i, b in enumerate(s.start_band.cat.categories)}
    return out.sort_values("starting band", key=lambda c: c.map(order), kind="stable")


class _Figures:
    """A report's figures, drawn together once its sections are written, on at most
    ``workers`` local processes (the same bytes whatever the number): a run's report has
    eleven (the brief's and ten more), each a few tenths of a CPU-second, which one
    process would draw one by one."""

    def __init__(self):
        self.jobs: list[tuple[str, object, tuple, dict]] = []

    def later(self, draw, *args, **kwargs) -> str:
        """A placeholder for :mod:`sim.analysis.figures`' ``draw`` (which writes to a path),
        drawn with the strategies' names (the run's own ``figures/`` carry its labels)."""
        return self._add("file", draw, args, kwargs)

    def png(self, name: str, *args, **kwargs) -> str:
        """A placeholder for :mod:`sim.presentation.figures`' ``name`` (PNG bytes)."""
        return self._add("png", name, args, kwargs)

    def call(self, draw, *args, **kwargs) -> str:
        """A placeholder for the PNG bytes ``draw`` (module-level) returns."""
        return self._add("call", draw, args, kwargs)

    def _add(self, how: str, draw, args: tuple, kwargs: dict) -> str:
        self.jobs.append((how, draw, args, kwargs))
        return f"\x00{len(self.jobs) - 1}\x00"  # no figure's base64 holds a NUL

    def drawn_into(self, sections: list[str], workers: int | None = 1) -> list[str]:
        """``sections`` with every placeholder replaced by its figure's base64 PNG."""
        if not self.jobs:
            return sections
        n = min(resolve_workers(workers), len(self.jobs))
        with Executor(n, what="figures") as ex:
            got = dict(ex.map_unordered(report_figure, list(enumerate(self.jobs))))
        b64 = {i: base64.b64encode(png).decode("ascii") for i, png in got.items()}
        return [re.sub("\x00(\\d+)\x00", lambda m: b64[int(m.group(1))], s)
                for s in sections]


def report_figure(item: tuple[int, tuple[str, object, tuple, dict]]) -> tuple[int, bytes]:
    """One of ``_Figures``' jobs drawn: ``(its number, PNG bytes)`` (module-level: a pool
    runs it)."""
    i, (how, draw, args, kwargs) = item
    if how == "png":
        return i, getattr(figures, draw)(*args, **kwargs)
    if how == "call":
        return i, draw(*args, **kwargs)
    return i, figures.drawn(draw, *args, **kwargs)


def run_sections(manifest: dict, tables: dict[str, pd.DataFrame], baseline: str | None = None,
                 run_dir: str | Path | None = None,
                 workers: int | None = 1) -> tuple[str, list[str]]:
    """The title and HTML sections of a run's report: the brief first (the district run,
    headlines, the ranked table and one figure), then the details and a glossary.

    Args:
        manifest: the run's manifest as data.
        tables: ``student_years``, ``teacher_years`` and ``school_years``.
        baseline: the arm the others are compared with (default: the first arm).
        run_dir: the run's folder (named in messages).
        workers: local processes that draw the figures (the same report whatever the
            number).
    """
    students = tables["student_years"]
    labels = arm_labels(students)
    baseline = check_baseline(labels, baseline, str(run_dir or ""))
    sc = manifest["scenario"]
    arms = sc.get("arms", [])
    names = {a: human_names(arms).get(a, a) for a in labels}
    year = int(students.year.max())
    summary = summarise(students)
    contrasts = paired_contrasts(students, baseline, year)
    teachers, schools = tables["teacher_years"], tables["school_years"]
    t_sum = teacher_summary(teachers) if len(teachers) else None
    s_sum = school_summary(schools) if len(schools) else None
    flips = sign_change_sentences(students, baseline, names)
    members = read_ensemble_means(run_dir)
    robust = (robustness(members, contrasts, baseline, year)
              if members is not None and not contrasts.empty else None)
    brief = build_brief(sc, students, t_sum, s_sum, baseline, summary=summary,
                        contrasts=contrasts, sign_changes=flips,
                        robust=robust_counts(robust))
    sentences = comparison_sentences(students, baseline, year, descriptions=names,
                                     contrasts=contrasts, names=names)
    table = _frontier_table(summary, contrasts, year, baseline, names)
    title = f"What the simulation says: {sc.get('name', 'run')}"
    figs = _Figures()
    sec = [f"<h1>{_e(title)}</h1>",
           brief_html(brief, len(brief.rows) > 1 and figs.call(brief_figure, brief)),
           *robust_section(robust, (manifest.get("ensemble") or {}).get("file", ""),
                          names[baseline], names),
           '<p class="note">The details follow: plain words for every strategy, what was '
           "run, growth versus proficiency, by starting band, over the years, time use, "
           "teachers and schools; then the glossary.</p>",
           *_plain_words(sentences, flips,
                         _accountability_words(t_sum, s_sum, arms, names)),
           _what_was_run(manifest, baseline, names),
           "<h2>Growth versus proficiency</h2>"]
    if not contrasts.empty:
        sec.append(_img(figs.png("paired_frontier", contrasts, baseline, labels, names),
                        f"Change in growth and in proficiency of each strategy against "
                        f"{names[baseline]}, on the same students (year {year}); bars: "
                        "paired 95% intervals across replicates; numbers as in the legend."))
    sec += [_img(figs.later(run_figures.growth_vs_proficiency, summary, year=year, names=names),
                 f"Growth against proficiency of each strategy (year {year}); bars: 95% "
                 "intervals of the replicate means; numbers as in the legend."),
            _table(table[table["starting band"] == ALL]),
            "<h2>For whom: by starting achievement</h2>"]
    if not contrasts.empty:
        sec.append(_img(figs.png("paired_frontier_by_band", contrasts, baseline, labels, names),
                        f"Change against {names[baseline]} by starting band (years relative "
                        "to grade at entry); paired 95% intervals."))
    sec += [_img(figs.later(run_figures.growth_vs_proficiency_by_band, summary, year=year,
                            names=names), "Growth against proficiency by starting band."),
            "<details><summary>The numbers by starting band</summary>"
            + _table(table[table["starting band"] != ALL]) + "</details>",
            "<h2>Over the years</h2>",
            _img(figs.png("trajectories", summary, names), "Growth and proficiency by year."),
            *_time_use(figs, summary, year, names),
            *_teachers(figs, teachers, t_sum, names),
            *_schools(figs, s_sum, arms, names),
            _glossary()]
    return title, figs.drawn_into(sec, workers)


def read_ensemble_means(run_dir: str | Path | None) -> pd.DataFrame | None:
    """The run's ``ensemble.csv`` (``plsim run --ensemble``: each member's means), or None."""
    path = Path(run_dir) / ENSEMBLE_FILE if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ScenarioError(f"{path}: unreadable ({type(err).__name__})") from None


def _glossary() -> str:
    items = "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in GLOSSARY)
    return f'<h2 id="glossary">Glossary</h2><dl class="glossary">{items}</dl>'


def _accountability_words(t_sum, s_sum, arms, names) -> list[str]:
    if t_sum is None or s_sum is None:
        return []
    return accountability_sentences(t_sum, s_sum, arms, names)


def _bullets(sentences: list[str]) -> str:
    return '<ul class="summary">' + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul>"


def _plain_words(sentences: list[str], flips: list[str], accountability: list[str]
                 ) -> list[str]:
    out = ["<h2>In plain words</h2>", _bullets(sentences),
           '<p class="note">Growth: fall-to-spring gain in SD of the state\'s fall scores. '
           "Proficiency: share at or above the state cut, in percentage points. Students of "
           "the program grades only. Brackets: 95% intervals of the paired change across "
           "replicates; a change whose interval spans zero is reported as not clear. "
           "Starting bands with under a tenth of the students are not singled out.</p>"]
    if flips:
        out += ["<h3>Differences that changed sign between years</h3>", _bullets(flips)]
    if accountability:
        out += ["<h3>Teachers and schools</h3>", _bullets(accountability),
                '<p class="note">Means across replicates; intervals in the tables of the '
                "Teachers section below.</p>"]
    return out


def _time_use(figs: _Figures, summary: pd.DataFrame, year: int, names) -> list[str]:
    return ["<h2>Time use</h2>",
            _img(figs.later(run_figures.time_use_by_band, summary, year=year, names=names),
                 "Share of days on grade-level content and on already-mastered content, by "
                 "starting band."),
            _img(figs.png("switches_by_band", summary, year, names),
                 "Switches between personalized and grade-level content per student-year.")]


def _teachers(figs: _Figures, teachers: pd.DataFrame, t_sum, names) -> list[str]:
    if not len(teachers):
        return []
    return ["<h2>Teachers</h2>",
            _img(figs.later(run_figures.ratings_vs_true_effect, teachers, names=names),
                 "True effect of the teachers in each rating band (student SD)."),
            _img(figs.png("teacher_outcomes_by_year", teachers, names),
                 "Teachers' mean stress and the share who leave, by year."),
            _table(_teacher_table(t_sum, names))]


def _schools(figs: _Figures, school_sum, arms, names) -> list[str]:
    if school_sum is None:
        return []
    program = [a["label"] for a in arms if has_program(a)] if arms else None
    return ["<h2>Schools and the program's survival</h2>",
            _img(figs.later(run_figures.school_policies_by_year, school_sum, names=names,
                            program_arms=program),
                 "Share of schools with a test-prep window, with the program still active "
                 "(strategies that run a program), and proficiency, by year."),
            _table(_survival_table(school_sum, arms, names))]


def _teacher_table(ts: pd.DataFrame, names) -> pd.DataFrame:
    def cell(r, m, f=1.0, digits=2, bounds=(0.0, 1.0)):
        return format_ci(getattr(r, m), getattr(r, f"{m}_lo"), getattr(r, f"{m}_hi"), f, digits,
                   bounds=bounds)

    return pd.DataFrame([{
        "strategy": names.get(str(r.arm), str(r.arm)),
        "value-added rating vs true effect (r)": cell(r, "corr_estimate_true",
                                                      bounds=(-1, 1)),
        "rated in the wrong band (%)": cell(r, "misclassified", 100, 1),
        "teachers leaving per year (%)": cell(r, "exit_rate", 100, 1),
        "stress (0-1)": cell(r, "stress")} for r in ts.itertuples()])


def _survival_table(ss: pd.DataFrame, arms, names) -> pd.DataFrame:
    """The share of schools running the program by year; 'no program' for an arm that
    runs none, and '(no review)' where no review could drop it."""
    wide = ss.pivot_table(index="arm", columns="year", values="program_active_share",
                          observed=True, sort=False)
    settings = {a["label"]: a for a in arms or []}
    out = pd.DataFrame({"strategy": [names.get(str(a), str(a)) for a in wide.index]})
    for y in wide.columns:
        cells = []
        for a, v in zip(wide.index, wide[y], strict=True):
            arm = settings.get(str(a))
            if arm is not None and not has_program(arm):
                cells.append("no program")
            elif arm is not None and not arm.get("review"):
                cells.append(f"{number(100 * v, 0)} (no review)")
            else:
                cells.append(number(100 * v, 0))
        out[f"program running, year {y} (%)"] = cells
    return out


# --- a sweep -------------------------------------------------------------------------
def _parameter_words(p) -> str:
    if p.is_range:
        return f"{p.low:g} to {p.high:g}" + (" (whole numbers)" if p.integer else "")
    return "values " + ", ".join(map(str, p.values))


def sweep_sections(run_dir: str | Path, baseline: str | None = None,
                   workers: int | None = 1) -> tuple[str, list[str]]:
    """The title and HTML sections of a finished sweep's report; ``baseline`` (an arm
    label) is checked and named, the figures show every arm, drawn on at most ``workers``
    local processes."""
    data = sensitivity.load_finished(run_dir)
    check_baseline(data.arms, baseline, str(data.dir))
    sw, m = data.sweep, data.manifest
    base = m.get("base_scenario", {})
    year = sensitivity.choose_year(data, None)
    rows = [("sweep", sw.name), ("description", " ".join(sw.description.split())),
            ("base scenario", f"{sw.base} ('{base.get('name', '?')}')"),
            ("overrides on the base", "; ".join(sw.overrides) or "none"),
            ("design", sw.design), ("design samples", data.samples),
            ("replicates per sample", sw.replicates), ("runs", m.get("runs")),
            ("seed", sw.seed),
            ("common random numbers", "yes" if sw.common_random_numbers else "no"),
            ("arms", ", ".join(data.arms)), ("year shown", year),
            ("plsim version", m.get("plsim_version", "not recorded")),
            ("git commit", m.get("git_commit") or "not recorded")]
    params = pd.DataFrame([{"parameter": p.path, "varied over": _parameter_words(p)}
                           for p in sw.parameters])
    title = f"plsim sweep report: {sw.name}"
    sec = [f"<h1>{_e(title)}</h1>", "<h2>What was run</h2>", _kv_table(rows),
           "<h3>Parameters</h3>", _table(params),
           *_sweep_robust_section(data.dir, m, year, data.arms[0],
                                  [p.path for p in sw.parameters]),
           "<h2>Outcomes by parameter</h2>",
           f'<p class="note">Year {year}, all students of the program grades. Points: design '
           "samples (each the mean of its replicates); lines: means by parameter bin.</p>"]
    means, bins, table = sensitivity.sweep_summary(data, data.arms, year)
    labels = [sensitivity.OUTCOME_LABELS.get(o, o) for o in sw.outcomes]
    pngs = figures.drawn_all([(sensitivity.summary_figure, (means, bins, table, sw, o, data.arms,
                                                            f"{sw.name}: {label}, year {year}"))
                              for o, label in zip(sw.outcomes, labels, strict=True)], workers)
    for png, label in zip(pngs, labels, strict=True):
        sec.append(_img(png, f"{label} against each parameter, one colour per arm."))
    if sw.design in sensitivity.INDEX_DESIGNS:
        sec += _indices_sections(data, year)
    return title, sec


def _sweep_robust_section(*args) -> list[str]:
    """How robust each design sample's comparisons are across the ensemble's plausible
    models (``sweep_robustness.section``'s arguments; none without an ensemble)."""
    found = sweep_robustness.section(*args)
    if found is None:
        return []
    return ["<h2>How robust is each comparison?</h2>", f"<p>{_e(found.lead)}</p>",
            *(f'<p class="note">{_e(n)}</p>' for n in found.notes),
            *([] if found.table is None else [_table(found.table)])]


def _indices_sections(data, year: int) -> list[str]:
    arm, band = data.arms[-1], ALL
    outcomes = list(data.sweep.outcomes)
    means = sensitivity.sample_means(data, outcomes, arm, year, band)
    keep, notes = sensitivity.usable_outcomes(means, data.sweep.design)
    design = data.sweep.design
    sec = [f"<h2>Sensitivity indices ({_e(design)})</h2>",
           f'<p class="note">Arm {_e(arm)}, year {year}, {ALL}. '
           + ("S1: share of the outcome's variance due to the parameter alone; ST: including "
              "its interactions. " if design == "sobol" else
              "mu*: mean absolute elementary effect in the outcome's units per the "
              "parameter's full range; sigma: their SD. ")
           + "Error bars: 95% bootstrap half-widths.</p>"]
    if design == "sobol" and data.sweep.samples < 64:
        sec.append(f'<p class="note">N = {data.sweep.samples} base samples: indices this '
                   "rough can fall outside [0, 1]; take them as a first look, not a finding."
                   "</p>")
    sec += [f'<p class="note">Not analysed: {_e(n)}.</p>' for n in notes]
    if not keep:
        return sec
    result = sensitivity.indices(data, means, keep)
    where = f"arm '{arm}', year {year}, {band}"
    sec.append(_img(figures.drawn(sensitivity.indices_figure, result, design,
                                  f"{data.sweep.name}: {design} indices, {where}"),
                    f"{design.capitalize()} indices, {where}."))
    cols = [c for c in result.columns if c not in ("outcome", "parameter")]
    shown = result.assign(**{c: result[c].map(lambda v: f"{v:.3g}") for c in cols})
    sec.append(_table(shown))
    mine = f"{sensitivity.slug(arm)}_y{year}_{sensitivity.slug(band)}.png"
    for path in sorted((data.dir / "sensitivity").glob("*.png")):  # other selections
        if path.name != mine:
            sec.append(_img(path.read_bytes(), f"Written by `plsim sensitivity` "
                                               f"({path.stem}: arm, year, band)."))
    return sec


# --- writing -------------------------------------------------------------------------
def default_name(baseline: str | None = None) -> str:
    """The report's own name in a run's folder: ``report.html`` (vouched for by the run's
    manifest), or ``report-vs-ARM.html`` for another baseline. An arm label is checked
    against the labels' pattern before it becomes part of a file name."""
    if baseline is None:
        return REPORT
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,60}", baseline) or set(baseline) == {"."}:
        raise ScenarioError(f"--baseline {baseline[:60]!r}: not an arm label (letters, digits, "
                            "'_', '.', '-')")
    return f"report-vs-{baseline}.html"


def refuse_own_files(run_dir: str | Path, out: Path, allowed: str) -> None:
    """ScenarioError when ``out`` lies in ``run_dir`` (where every file the run's manifest
    lists is) and is not ``allowed``, the report's own name: a report never overwrites
    the run's tables, manifest or figures. Paths are resolved, so a symbolic link or
    ``..`` into the run is caught too."""
    d, o = Path(run_dir).resolve(), out.resolve()
    if o == d / allowed or not (o == d or d in o.parents):
        return
    raise ScenarioError(f"--out {out}: inside the run's folder {run_dir}, where it would "
                        f"overwrite the run's own files; write the report elsewhere, or to "
                        f"{Path(run_dir) / allowed}")


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise ScenarioError(f"--out {out}: is a directory; give a file name such as "
                            f"{out / 'report.html'}")
    if not out.parent.is_dir():
        raise ScenarioError(f"--out {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise ScenarioError(f"--out {out}: cannot write in {out.parent}")


def render(run_dir: str | Path, baseline: str | None = None, workers: int | None = 1) -> str:
    """The report of a finished run or sweep directory as HTML text (a sweep's figures
    drawn on at most ``workers`` local processes).

    Raises:
        ScenarioError: not a finished run or sweep, or an unknown baseline arm.
    """
    if kind(run_dir) == "sweep":
        title, sections = sweep_sections(run_dir, baseline, workers)
    else:
        manifest, tables = read_run(run_dir)
        title, sections = run_sections(manifest, tables, baseline, run_dir, workers)
    return _page(title, sections)


def write_report(run_dir: str | Path, out_path: str | Path,
                 baseline: str | None = None, workers: int | None = 1) -> Path:
    """Write the self-contained HTML report of ``run_dir`` to ``out_path``.

    Args:
        run_dir: the ``--out`` directory of a finished ``plsim run`` or ``plsim sweep``.
        out_path: the HTML file to write (its folder must exist); written under a
            temporary name and renamed, so a reader never sees half a report.
        baseline: the arm the others are compared with (default: the first arm).
        workers: local processes that draw a sweep's figures (the same report whatever
            the number).

    Returns:
        ``out_path`` as a Path.

    Raises:
        ScenarioError: bad input (nothing is written).
    """
    out = Path(out_path)
    kind(run_dir)  # a bad directory is named before a bad output path
    _check_out(out)
    refuse_own_files(run_dir, out, default_name(baseline))
    text = render(run_dir, baseline, workers)
    atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
    return out


def stage_run_report(stage: Path, manifest: dict, baseline: str | None = None,
                     workers: int | None = 1) -> list[str]:
    """A report writer for :func:`sim.experiments.output.write_results`: the run's report,
    from the staged tables and ``manifest``, into the staging folder (figures drawn on at
    most ``workers`` local processes); returns its name."""
    title, sections = run_sections(manifest, read_tables(stage), baseline, stage, workers)
    (Path(stage) / REPORT).write_text(_page(title, sections), encoding="utf-8")
    return [REPORT]
