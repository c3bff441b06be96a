"""One comparison run for the app: the run contract, then the tables, figures and files the
page shows and offers for download.

The run is ``sim.experiments.runner.run`` on the validated scenario (so a page run equals
``plsim run`` of the same scenario and seed), and its files are ``write_results``'s, the
same as the command line writes. Asked to, the run also goes under every plausible model of
the shipped calibration ensemble (``SHIPPED_ENSEMBLE``, as ``plsim run --ensemble``; never a
file the user names), and the brief says how robust each comparison is.
"""

from __future__ import annotations

import html
import io
import math
import tempfile
import time
import zipfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from sim.analysis import figures as run_figures
from sim.analysis.summaries import contrast, school_summary, teacher_summary
from sim.config.ensemble import Ensemble, read_ensemble
from sim.config.scenario import ScenarioError, printable
from sim.district.monitor import RunMonitor, RunStopped, watching
from sim.district.reference import state_reference
from sim.engine.population import district_size
from sim.experiments.ensemble_runs import members_of, run_members
from sim.experiments.output import write_results
from sim.experiments.runner import resolve_workers, run
from sim.presentation.figures import drawn
from sim.presentation.form import slug
from sim.presentation.narrative import comparison_sentences, has_program, human_names
from sim.presentation.report import stage_run_report, write_report


@dataclass
class PageResults:
    """What the page shows for one finished run."""

    scenario: object
    summary: pd.DataFrame
    student_years: pd.DataFrame
    teachers: pd.DataFrame
    schools: pd.DataFrame
    figures: dict[str, bytes]
    results_zip: bytes
    run_dir: Path
    seconds: float
    notes: list[str] = field(default_factory=list)
    _keep: object = None  # the temporary folder of run_dir, removed with this object
    # each plausible model's means (analysis.robustness.member_means) of a run under the
    # shipped ensemble; None without
    ensemble: pd.DataFrame | None = None

    def report_html(self, baseline: str | None = None) -> bytes:
        """The self-contained HTML report of the run (``plsim report``), comparisons with
        ``baseline`` (default: the first strategy)."""
        out = self.run_dir.parent / f"report-{slug(baseline or self.arms[0])}.html"
        return write_report(self.run_dir, out, baseline).read_bytes()

    @property
    def arms(self) -> list[str]:
        return [a.label for a in self.scenario.arms]

    @property
    def last_year(self) -> int:
        return int(self.summary.year.max())

    @property
    def stem(self) -> str:
        """The scenario's name as a file-name stem (downloads, the zip's folder)."""
        return slug(self.scenario.name)


def run_comparison(scenario, workers: int = 0,
                   on_task: Callable[[int, int], None] | None = None,
                   monitor: RunMonitor | None = None,
                   ensemble: Ensemble | None = None) -> PageResults:
    """Run every arm and replicate (``workers`` processes, 0 = all cores) and prepare the
    page's outputs; ``on_task(done, total)`` is called after each arm-replicate (it may raise
    to stop the run). With a ``monitor`` the run is watched (its simulated days counted for
    the progress bar) and stops within a simulated day of ``monitor.stop()``
    (``RunStopped``). With an ``ensemble`` (``shipped_ensemble``'s) every arm-replicate is
    also run under each member (``members_of``: common random numbers), as
    ``plsim run --ensemble`` does: ``ensemble.csv`` and the summary's robustness columns
    join the files, and the brief and the report say how robust each comparison is.

    Everything is written under a new temporary folder of the app's own (``plsim-app-*``),
    in its subfolder ``run``: the scenario's name is never part of a path.
    """
    start = time.time()
    members = members_of(scenario, ensemble, "the page's scenario") if ensemble else None
    for sc in [scenario, *(members or [])]:  # cached for the runs (forked workers inherit
        state_reference(sc)  # it): its simulated days are not the run's
    means = None
    with watching(monitor) if monitor is not None else nullcontext():
        results = run(scenario, workers=workers, on_task=on_task)
        if members and not (monitor is not None and monitor.stopped):
            means = run_members(members, workers=workers)
    if monitor is not None and monitor.stopped:
        raise RunStopped("the run was stopped before it finished")
    seconds = time.time() - start
    notes = []
    keep = tempfile.TemporaryDirectory(prefix="plsim-app-")
    out = Path(keep.name) / "run"
    extra = {"seconds": round(seconds, 2), "command": ["plsim", "app"]}
    if members:
        extra["ensemble"] = {"file": SHIPPED_ENSEMBLE_NAME, "members": len(members)}
    # the same files as `plsim run` writes, report.html included
    _, summary = write_results(results, out, extra, reports=[stage_run_report],
                               ensemble=means)
    schools = school_summary(results.school_years)
    figures = page_figures(scenario, summary, results.teacher_years, schools)
    return PageResults(scenario, summary, results.student_years,
                       teacher_summary(results.teacher_years), schools, figures,
                       _zip_dir(out, slug(scenario.name)), out, seconds, notes, keep,
                       ensemble=means)


# --- the shipped calibration ensemble -----------------------------------------------------
# The plausible parameter sets `plsim calibrate --ensemble` wrote for this release: the one
# ensemble the page offers (a file is never named on the page)
SHIPPED_ENSEMBLE_NAME = "docs/calibration/ensemble.toml"
SHIPPED_ENSEMBLE = Path(__file__).resolve().parents[2] / SHIPPED_ENSEMBLE_NAME
MAX_REASON = 200  # characters of a reason the option is off (one line on the page)


def shipped_ensemble(path: Path | None = None) -> tuple[Ensemble | None, str]:
    """The shipped ensemble (``path``: tests only), read and checked, and ``""``; or None
    and the reason it cannot be offered, one line (a missing or invalid file)."""
    path = SHIPPED_ENSEMBLE if path is None else path
    if not path.is_file():
        return None, (f"the shipped calibration ensemble ({SHIPPED_ENSEMBLE_NAME}) is not "
                      "installed here")
    try:
        ens = read_ensemble(path)
    except ScenarioError as err:
        why = " ".join(printable(str(err)).split())
        why = why if len(why) <= MAX_REASON else why[:MAX_REASON - 3] + "..."
        return None, f"the shipped calibration ensemble is not valid: {why}"
    return ens, ""


def page_figures(scenario, summary: pd.DataFrame, teacher_years: pd.DataFrame,
                 schools: pd.DataFrame) -> dict[str, bytes]:
    """The figures the page shows (PNG bytes by name), drawn with the strategies' human
    names as the report draws them: the run's own ``figures/`` (in the zip) carry its
    labels ('grade_level_first'), and its program panel would show arms without a program."""
    arms = [a.model_dump(mode="json") for a in scenario.arms]
    names = human_names(arms)
    program = [a["label"] for a in arms if has_program(a)]
    out = {"growth_vs_proficiency": drawn(run_figures.growth_vs_proficiency, summary,
                                          names=names),
           "growth_vs_proficiency_by_band": drawn(run_figures.growth_vs_proficiency_by_band,
                                                  summary, names=names)}
    if len(teacher_years):
        out["ratings_vs_true_effect"] = drawn(run_figures.ratings_vs_true_effect,
                                              teacher_years, names=names)
    if len(schools):
        out["school_policies_by_year"] = drawn(run_figures.school_policies_by_year, schools,
                                               names=names, program_arms=program)
    return out


def _zip_dir(directory: Path, folder: str) -> bytes:
    """The files under ``directory`` as a zip, each under ``folder/`` (a slug): every entry
    relative, none climbing out (no leading ``/``, no ``..``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p in sorted(directory.rglob("*")):
            if p.is_file() and not p.is_symlink():
                entry = PurePosixPath(slug(folder), *p.relative_to(directory).parts)
                if entry.is_absolute() or ".." in entry.parts:  # pragma: no cover - slugs
                    raise ValueError(f"unsafe zip entry {entry}")
                z.write(p, str(entry))
    return buf.getvalue()


# --- how long a run takes -----------------------------------------------------------------
# One worker simulates about 1.4 million student-days per second of its CPU time: measured
# on the development machine (2 cores shared with other jobs, 2026-12-07) on each of the
# seven arms of floor_strategies' district (5,400 students, 540 days with the burn-in): 1.32
# to 1.54 M per CPU-second, the task's construction of its district included. Under load a
# worker gets less than a whole core, so the page refines the rate from its own last run.
STUDENT_DAYS_PER_WORKER_SECOND = 1.4e6
# After the simulation: tables, summaries, figures and the HTML report written (write_results)
# and read back; 5-10 s measured on the development machine for quick and floor_strategies.
WRITE_SECONDS = 8.0


@dataclass(frozen=True)
class RunSize:
    """How much a scenario simulates: students (slots per district), school days a year,
    reported school years per arm-replicate, arm-replicates, the workers running them at a
    time, and the spin-up years (``calendar.burn_in_years`` once per replicate, shared by
    its arms; none when they come from the cache)."""

    students: int
    year_days: int
    years: int
    tasks: int
    workers: int
    spin_up_years: int = 0

    @property
    def days(self) -> int:
        """Reported school days of one arm-replicate (what the run monitor counts)."""
        return self.year_days * self.years

    @property
    def student_days(self) -> int:
        return self.students * (self.days * self.tasks + self.year_days * self.spin_up_years)

    @property
    def waves(self) -> int:
        """Rounds of arm-replicates, ``workers`` at a time."""
        return -(-self.tasks // self.workers)

    @property
    def worker_student_days(self) -> float:
        """Student-days the busiest worker simulates: its waves of arm-replicates and its
        share of the spin-ups."""
        spin_up = self.students * self.year_days * self.spin_up_years / self.workers
        return self.waves * self.students * self.days + spin_up


def run_size(scenario, workers: int = 0, members: int = 0) -> RunSize:
    """The size of ``scenario`` run on ``workers`` processes (0 = all cores), and again
    under each of ``members`` plausible models (each its own arm-replicates and spin-ups)."""
    runs = 1 + members
    tasks = len(scenario.arms) * scenario.replicates * runs
    cal = scenario.calendar
    return RunSize(district_size(scenario.district), cal.days, scenario.years, tasks,
                   max(1, min(resolve_workers(workers), tasks)),
                   cal.burn_in_years * scenario.replicates * runs)


def estimate_seconds(size: RunSize, rate: float = STUDENT_DAYS_PER_WORKER_SECOND) -> float:
    """Seconds from Run to results: the waves of arm-replicates at ``rate`` student-days per
    second per worker, then the files written."""
    return size.worker_student_days / rate + WRITE_SECONDS


def observed_rate(size: RunSize, seconds: float) -> float:
    """The rate per worker (student-days a second) a finished run of ``size`` achieved in
    ``seconds`` of simulation: what :func:`estimate_seconds` needs to predict the next run on
    the same machine under the same load."""
    return size.worker_student_days / max(seconds, 1e-3)


# --- formatting -------------------------------------------------------------------------
def interval(mean: float, lo: float, hi: float, scale: float = 1.0, digits: int = 2,
             signed: bool = False) -> str:
    """``mean [lo, hi]`` (times ``scale``), or ``mean`` alone without an interval."""
    if mean is None or math.isnan(mean):
        return "n/a"
    sign = "+" if signed else ""
    core = f"{mean * scale:{sign}.{digits}f}"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return core
    return f"{core} [{lo * scale:{sign}.{digits}f}, {hi * scale:{sign}.{digits}f}]"


def band_table(page: PageResults, baseline: str, year: int | None = None) -> pd.DataFrame:
    """The by-band table: per starting band and strategy, growth (SD of the state's fall
    scores) and proficiency (% at or above the cut) with 95% intervals across replicates, and
    paired differences from ``baseline`` on the same students."""
    year = page.last_year if year is None else year
    s = page.summary[page.summary.year == year]
    diffs = {arm: contrast(page.student_years, arm, baseline, year).set_index("start_band")
             for arm in page.arms}
    rows = []
    for r in s.itertuples():
        d = diffs[str(r.arm)]
        band = str(r.start_band)
        dg = d.loc[band] if band in d.index else None
        rows.append({
            "started": band, "strategy": str(r.arm), "students": f"{r.n_students:.0f}",
            "growth (SD)": interval(r.growth_sd, r.growth_sd_lo, r.growth_sd_hi),
            "proficient (%)": interval(r.proficient, r.proficient_lo, r.proficient_hi, 100, 1),
            f"growth vs {baseline}": "—" if dg is None or str(r.arm) == baseline else
            interval(dg.growth_sd, dg.growth_sd_lo, dg.growth_sd_hi, signed=True),
            f"proficient vs {baseline} (pts)": "—" if dg is None or str(r.arm) == baseline else
            interval(dg.proficient, dg.proficient_lo, dg.proficient_hi, 100, 1, signed=True),
            "grade-level time (%)": f"{100 * r.grade_level_share:.0f}",
        })
    return pd.DataFrame(rows)


def sentences(page: PageResults, baseline: str, year: int | None = None) -> list[str]:
    """The plain-language summary of each comparison with ``baseline``, the report's
    (``narrative.comparison_sentences``), strategies called by their human names."""
    year = page.last_year if year is None else year
    names = human_names([a.model_dump(mode="json") for a in page.scenario.arms])
    return list(comparison_sentences(page.student_years, baseline, year=year,
                                     descriptions=names, names=names))


def teacher_school_table(page: PageResults, year: int | None = None) -> pd.DataFrame:
    """Per strategy: how ratings track true teacher effects, exits and stress (all years),
    and the schools' policies and the program's survival in ``year``."""
    year = page.last_year if year is None else year
    t = page.teachers.set_index("arm")
    s = page.schools[page.schools.year == year].set_index("arm")
    # grade-level pacing of the whole class is no program: nothing to keep running or drop
    program = {a.label: a.pacing != "traditional" for a in page.scenario.arms}
    rows = []
    for arm in page.arms:
        tr = t.loc[arm] if arm in t.index else None
        sr = s.loc[arm] if arm in s.index else None
        rows.append({
            "strategy": arm,
            "rating vs true effect (corr)": "n/a" if tr is None else interval(
                tr.corr_estimate_true, tr.corr_estimate_true_lo, tr.corr_estimate_true_hi),
            "misclassified (%)": "n/a" if tr is None else f"{100 * tr.misclassified:.0f}",
            "exits per year (%)": "n/a" if tr is None else f"{100 * tr.exit_rate:.1f}",
            "teacher stress": "n/a" if tr is None else f"{tr.stress:.2f}",
            f"test-prep window, year {year} (% of schools)":
                "n/a" if sr is None else f"{100 * sr.window_share:.0f}",
            f"program running, year {year} (% of schools)":
                "n/a (no program)" if not program[arm] else
                "n/a" if sr is None else f"{100 * sr.program_active_share:.0f}",
        })
    return pd.DataFrame(rows)


def html_table(frame: pd.DataFrame, table_id: str, helps: dict[str, str] | None = None,
               strategy_name: Callable[[str], str] | None = None) -> str:
    """A plain HTML table for the page, every header and cell escaped (names and labels are
    data). ``helps``: hover help (a ``title``) by column; ``strategy_name``: how the
    ``strategy`` column's labels are shown (the label stays in the row's ``data-label``).
    A cell ``mean [lo, hi]`` puts its interval on a line of its own, so columns stay narrow.
    """
    helps = helps or {}
    head = "".join(f'<th title="{html.escape(helps[c])}">{html.escape(str(c))}</th>'
                   if c in helps else f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells, label = [], ""
        for col, value in zip(frame.columns, record, strict=True):
            text = str(value)
            if col == "strategy":
                label = text
                text = strategy_name(text) if strategy_name else text
            cells.append(f"<td>{_cell(text)}</td>")
        rows.append(f'<tr data-label="{html.escape(label)}">{"".join(cells)}</tr>')
    return (f'<div style="overflow-x: auto"><table id="{html.escape(table_id)}" '
            f'class="plsim-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _cell(text: str) -> str:
    mean, sep, rest = text.partition(" [")
    if not sep:
        return html.escape(text)
    return f'{html.escape(mean)} <span class="plsim-ci">[{html.escape(rest)}</span>'
