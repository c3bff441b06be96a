"""``plsim app``: a web page to compare floor strategies on a district (Solara).

Choose a district profile (or a shipped scenario as a preset) and the strategies to
compare, see how long the run will take, press Run: the run goes on in the background
(``solara.lab.task``; the arm-replicates in worker processes through the run contract),
with progress by simulated school day and a Cancel that stops it within a day. The page
shows a plain-language summary, the growth-versus-proficiency frontier, the by-band table
and a teacher and school panel, and offers the results (zip), the HTML report and the
scenario (TOML, for ``plsim run``) for download. A form with a problem shows a message
next to the field (a number that is not one included) and runs nothing. One option also
runs the scenario under every plausible model of the shipped calibration ensemble (as
``plsim run --ensemble``; the page never reads a file the user names), and the brief then
says how robust each comparison is; without the shipped file the option is off, with why.

Names and labels typed on the page are data: shown as text (never markup), never part of
a path (``comparison`` writes under a folder of its own), written to TOML by a TOML writer.

The page is built from small components, so a new one is a small edit: a card of the form
goes into ``FORM_CARDS``, a section of the results into ``RESULT_SECTIONS`` (each is called
with the finished run and the chosen baseline's label).

Serve it with ``plsim app [--port N]`` (127.0.0.1 only; ``sim.presentation.serve``).
"""

from __future__ import annotations

import threading
import time

import solara
import solara.lab

from sim.config.scenario import ScenarioError
from sim.district.monitor import RunMonitor
from sim.presentation import brief, comparison, district_upload, form
from sim.presentation.narrative import PACING_WORDS, TARGET_WORDS, describe_arm
from sim.presentation.page_text import BAND_TABLE_HELP, CSS, HELP, TEACHER_TABLE_HELP

DEFAULT_PRESET = "floor_strategies"
POLL_SECONDS = 0.2  # how often the run's progress is read and Cancel is looked for
# How long Cancel waits for the workers to stop (each stops at its next simulated day, a
# few ms) before the page says "Run cancelled": a next run waits for them in any case
# (one watched run at a time, sim.district.monitor.watching)
STOP_WAIT_SECONDS = 0.5
# A run this long (s) or longer refines the next estimate; in a shorter one the start of the
# workers and the statewide reference weigh too much for its rate to predict a long run
MIN_RATE_SECONDS = 20.0

EVALUATION_WORDS = {"teacher_of_record": "each teacher rated on their own students",
                    "shared": "the team shares one rating"}


def _initial_form() -> dict:
    try:
        return form.load_preset(DEFAULT_PRESET)
    except ScenarioError:
        return {"name": "my_district", "seed": 1, "replicates": 2, "years": 1,
                "district": {}, "arms": []}


scenario_data = solara.reactive(_initial_form())
typed = solara.reactive({})  # dotted path -> (text typed, why it is not a number there)
preset = solara.reactive(DEFAULT_PRESET)
baseline = solara.reactive("")
started_at = solara.reactive(0.0)
cancelling = solara.reactive(False)
progress_note = solara.reactive("")
# also run under every plausible model of the shipped calibration ensemble
use_ensemble = solara.reactive(False)
# the rate (student-days a second per worker) of the last finished run on this computer:
# it refines the next estimate (the same machine under the same load)
_last_rate: dict[str, float] = {}


def form_errors(data: dict, typed_now: dict) -> dict[str, str]:
    """Every problem of the form by dotted path: the scenario's own, and the fields whose
    text is not a number of the kind they need (those win at their path)."""
    errors = form.field_errors(data)
    errors.update({path: why for path, (_, why) in typed_now.items()})
    return errors


@solara.lab.task
def run_task(data: dict, with_ensemble: bool = False) -> comparison.PageResults | None:
    """Validate, run (all cores) and prepare the outputs; ``with_ensemble``: also under
    every plausible model of the shipped ensemble. The run goes on in a thread of its
    own; this one reads its progress (simulated days) every ``POLL_SECONDS`` and, once
    Cancel was pressed, asks the workers to stop and returns within ``STOP_WAIT_SECONDS``."""
    scenario = form.build_scenario(data)
    ensemble = None
    if with_ensemble:
        ensemble, why = comparison.shipped_ensemble()
        if ensemble is None:
            raise ScenarioError(why)
    size = comparison.run_size(scenario, members=ensemble.size if ensemble else 0)
    monitor = RunMonitor()
    box: dict = {}

    def work() -> None:
        try:
            box["page"] = comparison.run_comparison(scenario, workers=0, monitor=monitor,
                                                    ensemble=ensemble)
        except BaseException as exc:  # handed to the task below (or dropped on Cancel)
            box["error"] = exc

    worker = threading.Thread(target=work, name="plsim-run", daemon=True)
    run_task.progress = 0.0
    worker.start()
    total = size.tasks * size.days
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if not run_task.is_current():  # Cancel pressed (or a new run started)
            monitor.stop()
            worker.join(STOP_WAIT_SECONDS)
            return None
        done = min(monitor.days, total)
        run_task.progress = 100.0 * done / total
        progress_note.set(_progress_words(done, size) if done < total else
                          "writing the tables, figures and report")
    if "error" in box:
        raise box["error"]
    page = box["page"]
    if page.seconds >= MIN_RATE_SECONDS:
        _last_rate["rate"] = comparison.observed_rate(size, page.seconds)
    return page


def _progress_words(done_days: int, size: comparison.RunSize) -> str:
    """Progress in simulated school-years (district-years summed over the runs)."""
    return (f"{done_days / size.year_days:.1f} of {size.tasks * size.years} simulated "
            f"school-years ({size.tasks} runs of {size.years} years, after each replicate's "
            "spin-up)")


# --- small controls bound to a dotted path of the scenario data -------------------------
def _set(path: str, value) -> None:
    scenario_data.set(form.set_path(scenario_data.value, path, value))


def _forget_typed(prefix: str = "") -> None:
    """Drop the typed texts under ``prefix`` (all: a new preset; ``arms.``: the strategies
    were renumbered)."""
    typed.set({k: t for k, t in typed.value.items() if prefix and not k.startswith(prefix)})


@solara.component
def Help(key: str):
    """A small circled ? with the help text of ``key`` on hover."""
    with solara.Tooltip(HELP[key]):
        solara.Text("?", classes=["plsim-help"])


@solara.component
def FieldError(errors: dict, path: str):
    msgs = form.errors_under(errors, path) if path.startswith("arms.") and \
        path.count(".") == 1 else ([errors[path]] if path in errors else [])
    for m in msgs:
        solara.Text(m, classes=["plsim-error"])


def _shown(value) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


@solara.component
def NumberField(label: str, path: str, default, errors: dict, integer: bool = True,
                help: str | None = None):
    """A number typed as text: a whole number where ``integer``; anything else keeps its
    text, gets a message beside the field and stops Run (it is never rounded or ignored)."""
    text, _ = typed.value.get(path, (None, ""))
    if text is None:
        text = _shown(form.get_path(scenario_data.value, path, default))

    def changed(new: str) -> None:
        number, why = form.parse_number(new, integer)
        rest = {k: t for k, t in typed.value.items() if k != path}
        if why:
            typed.set({**rest, path: (new, why)})
        else:
            typed.set(rest)
            _set(path, number)

    with solara.Row(gap="2px", style={"align-items": "center"}):
        # every text field takes each keystroke (continuous_update): while a run goes on,
        # each progress tick reconciles every widget with the page's state, and text not
        # yet taken (before Tab or Enter) was put back to its last value
        solara.InputText(label, value=text, on_value=changed, continuous_update=True,
                         dense=True, error=path in errors)
        if help:
            Help(help)
    FieldError(errors, path)


@solara.component
def ChoiceField(label: str, path: str, values: tuple, default: str, errors: dict,
                words: dict | None = None, help: str | None = None):
    """A choice among ``values``, each shown in ``words`` (the value's own name else)."""
    words = words or {}
    shown = {words.get(x, x.replace("_", " ")): x for x in values}
    value = form.get_path(scenario_data.value, path, default)
    value = value if value in values else default
    current = next(k for k, x in shown.items() if x == value)
    with solara.Row(gap="2px", style={"align-items": "center"}):
        solara.Select(label, values=list(shown), value=current,
                      on_value=lambda k: _set(path, shown[k]), dense=True)
        if help:
            Help(help)
    FieldError(errors, path)


@solara.component
def SliderField(label: str, path: str, default: float, low: float, high: float, step: float,
                errors: dict, help: str | None = None):
    value = form.get_path(scenario_data.value, path, default)
    value = float(value) if isinstance(value, int | float) else default
    with solara.Row(gap="2px", style={"align-items": "center"}):
        solara.Text(f"{label}: {value:g}", style={"font-size": "0.9em"})
        if help:
            Help(help)

    def moved(v: float) -> None:
        # the slider snaps a value off its step grid (a fitted 0.112 shows as 0.1) and
        # reports the snap: only a move of at least half a step is the user's
        if abs(v - value) >= step / 2:
            _set(path, round(v, 4))

    solara.SliderFloat("", value=value, min=low, max=high, step=step, thumb_label=False,
                       on_value=moved)
    FieldError(errors, path)


@solara.component
def OptionalFloat(label: str, path: str, default: float, errors: dict,
                  help: str | None = None):
    value = form.get_path(scenario_data.value, path)
    on = value is not None

    def switch(v: bool) -> None:
        _forget_typed_path(path)
        _set(path, default if v else None)

    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.Checkbox(label=label, value=on, on_value=switch)
        if help:
            Help(help)
    if on:
        NumberField(f"{label}: years", path, default, errors, integer=False)
    else:
        FieldError(errors, path)


def _forget_typed_path(path: str) -> None:
    typed.set({k: t for k, t in typed.value.items() if k != path})


@solara.component
def Block(label: str, path: str, errors: dict, help: str | None = None):
    on = form.get_path(scenario_data.value, path) is not None

    def switch(v: bool) -> None:
        if not v:  # the block's fields go, and what was typed in them
            _forget_typed(path + ".")
        scenario_data.set(form.toggle_section(scenario_data.value, path, v))

    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.Checkbox(label=label, value=on, on_value=switch)
        if help:
            Help(help)
    if on:
        FieldError(errors, path)


@solara.component
def ShareField():
    """Set the mean starting level from a share proficient at baseline (rough guide)."""
    problem, set_problem = solara.use_state("")

    def apply(text):
        share, why = form.parse_number(text or "", integer=False)
        if why:
            set_problem(why)
            return
        try:
            _set("district.mean_offset_sd", form.offset_for_share(share / 100))
            set_problem("")
        except ValueError as err:
            set_problem(str(err))

    solara.InputText("or set it from a share proficient at baseline (%)", value="",
                     on_value=apply, continuous_update=True, dense=True,
                     error=bool(problem))
    if problem:
        solara.Text(problem, classes=["plsim-error"])


# --- the district -----------------------------------------------------------------------
def _choose_preset(name: str) -> None:
    preset.set(name)
    typed.set({})
    scenario_data.set(form.load_preset(name))
    baseline.set("")


@solara.component
def DistrictCard(errors: dict):
    data = scenario_data.value
    with solara.Card("District", margin=0):
        solara.Select("preset (a shipped scenario)", values=list(form.presets()),
                      value=preset.value if preset.value in form.presets() else None,
                      on_value=_choose_preset, dense=True)
        solara.InputText("scenario name", value=str(data.get("name", "")),
                         on_value=lambda v: _set("name", v), continuous_update=True,
                         dense=True)
        FieldError(errors, "name")
        SliderField("mean starting level (SD of the statewide reference)",
                    "district.mean_offset_sd", form.fitted_offset(), -2.5, 1.5, 0.05, errors,
                    "mean level")
        offset = form.get_path(data, "district.mean_offset_sd", None)
        offset = float(offset) if isinstance(offset, int | float) else form.fitted_offset()
        solara.Text(f"about {100 * form.approximate_share_proficient(offset):.0f}% proficient "
                    "at baseline (a rough guide; the run measures it)", classes=["plsim-note"])
        ShareField()
        SliderField("spread of starting levels (grade-years of SD added per grade)",
                    "population.sd_years_per_grade", 0.35, 0.0, 1.0, 0.05, errors, "spread")
        with solara.Columns([1, 1]):
            with solara.Column(gap="0px"):
                NumberField("schools", "district.schools", 5, errors)
                NumberField("classes per grade", "district.classes_per_grade", 3, errors)
            with solara.Column(gap="0px"):
                NumberField("class size (students)", "district.class_size", 25, errors)
                NumberField("personalized room size (students)", "district.room_size", 100,
                            errors, help="room size")
        grades = form.get_path(data, "district.grades", list(range(9)))
        grades = grades if isinstance(grades, list) else list(range(9))
        program = form.get_path(data, "district.program_grades", [6, 7, 8])
        with solara.Row(gap="2px", style={"align-items": "center"}):
            solara.SelectMultiple("program grades", values=[g for g in program if g in grades],
                                  all_values=grades, dense=True,
                                  on_value=lambda v: _set("district.program_grades", sorted(v)))
            Help("program grades")
        FieldError(errors, "district.program_grades")
        FieldError(errors, "district")
        size = form.get_path(data, "district.room_size", 100)
        cls = form.get_path(data, "district.class_size", 25)
        if isinstance(size, int) and isinstance(cls, int) and cls > 0:
            solara.Text(f"Program classes are merged into rooms of up to {size} students: "
                        f"a team of about {max(1, size // cls)} teachers per room.",
                        classes=["plsim-note"])
        with solara.Columns([1, 1, 1]):
            with solara.Column(gap="0px"):
                NumberField("years simulated", "years", 1, errors, help="years")
            with solara.Column(gap="0px"):
                NumberField("replicates", "replicates", 1, errors, help="replicates")
            with solara.Column(gap="0px"):
                NumberField("seed", "seed", 0, errors, help="seed")


# --- the strategies ---------------------------------------------------------------------
def _describe(arm: dict) -> str:
    """A strategy's settings in words (the report's wording)."""
    try:
        return describe_arm(arm)
    except (KeyError, TypeError, ValueError):  # an arm the form has half-edited
        return str(arm.get("pacing", "traditional")).replace("_", " ")


@solara.component
def ArmCard(i: int, arm: dict, errors: dict):
    p = f"arms.{i}"
    label = str(arm.get("label", ""))
    name = form.display_name(label)

    def remove() -> None:
        _forget_typed("arms.")
        scenario_data.set(form.remove_arm(scenario_data.value, i))

    with solara.Card(margin=0, style={"margin-bottom": "6px"}):
        with solara.Row(justify="space-between", style={"align-items": "center"}):
            solara.Text(f"{i + 1}. {name}: {_describe(arm)}", style={"font-weight": "500"})
            solara.Button(f"Remove {name}", small=True, text=True, color="error",
                          on_click=remove)
        FieldError(errors, p)
        with solara.Details("edit this strategy"):
            solara.InputText("label (a short name: letters, digits, _ . -)", value=label,
                             on_value=lambda v: _set(f"{p}.label", v),
                             continuous_update=True, dense=True)
            ChoiceField("pacing", f"{p}.pacing", form.PACINGS, "traditional", errors,
                        PACING_WORDS, help="pacing")
            OptionalFloat("floor (years below grade)", f"{p}.floor", 3.0, errors, "floor")
            OptionalFloat("ceiling (years above grade)", f"{p}.ceiling", 1.0, errors,
                          "ceiling")
            NumberField("test-prep weeks before the state test", f"{p}.test_prep_weeks", 0.0,
                        errors, integer=False, help="test prep")
            Block("gradual floor (rises to grade level by the test)", f"{p}.gradual_floor",
                  errors, "gradual floor")
            if arm.get("gradual_floor") is not None:
                NumberField("starting floor (years below)", f"{p}.gradual_floor.start_floor",
                            3.0, errors, integer=False)
                NumberField("steps (0 = continuous)", f"{p}.gradual_floor.steps", 0, errors)
            Block("grade-level tutoring", f"{p}.tutoring", errors, "tutoring")
            if arm.get("tutoring") is not None:
                ChoiceField("tutoring for", f"{p}.tutoring.target", form.TUTORING_TARGETS,
                            "near_cut", errors, TARGET_WORDS)
                NumberField("tutoring hours per week", f"{p}.tutoring.hours_per_week", 3.0,
                            errors, integer=False)
                NumberField("share of program students tutored", f"{p}.tutoring.share", 0.25,
                            errors, integer=False)
            ChoiceField("teacher evaluation", f"{p}.evaluation", form.EVALUATIONS,
                        "teacher_of_record", errors, EVALUATION_WORDS, help="evaluation")
            Block("school leaders respond to a shortfall", f"{p}.leaders", errors)
            Block("district reviews the program", f"{p}.review", errors)


@solara.component
def StrategiesCard(errors: dict):
    arms = scenario_data.value.get("arms", [])
    arms = arms if isinstance(arms, list) else []
    library = form.strategy_library()

    def add(arm: dict) -> None:
        scenario_data.set(form.add_arm(scenario_data.value, arm))

    def clear() -> None:
        _forget_typed("arms.")
        _set("arms", [])

    with solara.Card("Strategies to compare", margin=0):
        solara.Text("The first strategy is the default baseline of the comparisons. Every "
                    "strategy runs on the same synthetic students.", classes=["plsim-note"])
        FieldError(errors, "arms")
        for i, arm in enumerate(arms):
            ArmCard(i, arm if isinstance(arm, dict) else {}, errors)
        solara.Text("Add a strategy (hover one for what it does):", classes=["plsim-note"])
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            for name, arm in library.items():
                with solara.Tooltip(_describe(arm)):
                    solara.Button(f"+ {form.display_name(name)}", small=True, outlined=True,
                                  on_click=lambda arm=arm: add(arm))
            solara.Button("Clear all", small=True, text=True, on_click=clear)


# --- running ----------------------------------------------------------------------------
def _start(data: dict, with_ensemble: bool = False) -> None:
    started_at.set(time.time())
    cancelling.set(False)
    progress_note.set("preparing the statewide reference and the workers")
    run_task(data, with_ensemble)


def _cancel() -> None:
    cancelling.set(True)
    run_task.cancel()


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} hours"


@solara.component
def Estimate(scenario, members: int = 0):
    """The run's size and how long it should take, before it starts (``members``: also
    under that many plausible models)."""
    size = comparison.run_size(scenario, members=members)
    rate = _last_rate.get("rate")
    seconds = comparison.estimate_seconds(size, rate or comparison.STUDENT_DAYS_PER_WORKER_SECOND)
    source = ("the last run on this computer" if rate else
              "the speed measured when the page was built")
    runs = size.tasks // (1 + members)
    again = f", each again under {_count(members, 'plausible model')}" if members else ""
    solara.Text(f"{_count(len(scenario.arms), 'strategy', 'strategies')} × "
                f"{_count(scenario.replicates, 'replicate')} = {_count(runs, 'run')} "
                f"of {_count(scenario.years, 'year')} on {size.students:,} students{again}.",
                classes=["plsim-note"])
    solara.Text(f"Estimated time: about {_minutes(seconds)} ({size.workers} at a time; "
                f"from {source}).", classes=["plsim-note", "plsim-estimate"])
    if seconds > 600:
        solara.Warning("That is a long run: fewer replicates or years give a quicker first "
                       "look.", dense=True)


@solara.component
def RunCard(errors: dict):
    data = scenario_data.value
    scenario = None
    if not errors:
        try:
            scenario = form.build_scenario(data)
        except ScenarioError as err:  # pragma: no cover - field_errors found none
            errors = {form.GENERAL: str(err)}
    with solara.Card("Run", margin=0):
        if errors:
            solara.Error(f"{len(errors)} problem(s) in the form; nothing will run until "
                         "they are fixed (the red notes by the fields):", dense=True)
            for key, msg in errors.items():
                solara.Text(f"{key or 'scenario'}: {msg}", classes=["plsim-error"])
        ensemble, why = comparison.shipped_ensemble()
        members = ensemble.size if ensemble is not None and use_ensemble.value else 0
        EnsembleOption(ensemble, why)
        if not errors and scenario is not None:
            Estimate(scenario, members)
        RunControls(data, bool(errors), bool(members), scenario)
        RunStatus()


@solara.component
def RunControls(data: dict, blocked: bool, with_ensemble: bool, scenario):
    """Run, Cancel and the scenario's download. Their own component because they read the
    run's state, which changes with every progress tick (see ``ResultsArea``)."""
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.Button("Run", color="primary", disabled=blocked or run_task.pending,
                      on_click=lambda: _start(data, with_ensemble))
        solara.Button("Cancel", disabled=not run_task.pending or cancelling.value,
                      on_click=_cancel)
        if scenario is not None:
            solara.FileDownload(form.scenario_toml(scenario).encode("utf-8"),
                                filename=f"{form.slug(scenario.name)}.toml",
                                label="Download scenario (TOML)", mime_type="text/plain")


@solara.component
def EnsembleOption(ensemble, why: str):
    """Also run under every plausible model of the shipped calibration ensemble (its size in
    the label), or the option shown off with the one-line reason it cannot be offered."""
    with solara.Row(gap="2px", style={"align-items": "center"}):
        if ensemble is None:
            solara.Checkbox(label="Also run under the plausible models of the shipped "
                            "calibration ensemble", value=False, disabled=True)
        else:
            k = ensemble.size
            solara.Checkbox(label=f"Also run under the {_count(k, 'plausible model')} of the "
                            f"shipped calibration ensemble (about {k + 1}× the time): says "
                            "how robust each comparison is", value=use_ensemble,
                            disabled=run_task.pending)
        Help("plausible models")
    if ensemble is None:
        solara.Text(f"Not available: {why}.", classes=["plsim-note", "plsim-ensemble-off"])


@solara.component
def RunStatus():
    if run_task.pending:
        elapsed = time.time() - started_at.value
        if cancelling.value:
            solara.ProgressLinear(True)
            solara.Text(f"cancelling… (stopping the workers), {elapsed:.0f} s",
                        classes=["plsim-status"])
            return
        pct = run_task.progress or 0.0
        solara.ProgressLinear(pct if pct else True)
        left = f", about {_minutes(elapsed * (100 - pct) / pct)} left" if pct >= 2 else ""
        solara.Text(f"running… {pct:.0f}%: {progress_note.value}; {elapsed:.0f} s{left}",
                    classes=["plsim-status"])
    elif run_task.cancelled:
        solara.Warning("Run cancelled; nothing was kept.", dense=True)
    elif run_task.error:
        solara.Error(f"The run failed: {run_task.exception}", dense=True)
    elif run_task.finished and run_task.value is not None:
        solara.Success("Results below.", dense=True)


# --- results ----------------------------------------------------------------------------
def _heading(text: str, level: int = 4):
    """A heading whose text is data (a name typed on the page): a text node, never markup."""
    return solara.v.Html(tag=f"h{level}", children=[str(text)])


@solara.component
def ResultsHeader(page: comparison.PageResults, base: str):
    sc = page.scenario
    _heading(f"Results: {sc.name}", 3)
    solara.Text(f"{_count(len(page.arms), 'strategy', 'strategies')} × "
                f"{_count(sc.replicates, 'replicate')}, year "
                f"{page.last_year} of {sc.years}{_under_models(page)}; the simulation took "
                f"{page.seconds:.0f} s. "
                "Students in the program grades. Hover a circled ? or an underlined column "
                "name for what it means.", classes=["plsim-note"])
    names = {form.display_name(a): a for a in page.arms}
    with solara.Row(gap="8px", style={"flex-wrap": "wrap", "align-items": "center"}):
        solara.Select("baseline for the comparisons", values=list(names),
                      value=form.display_name(base), on_value=lambda k: baseline.set(names[k]),
                      dense=True, style={"max-width": "320px"})
        Help("baseline")
        solara.FileDownload(page.results_zip, filename=f"{page.stem}-results.zip",
                            label="Download results (zip)", mime_type="application/zip")
        solara.FileDownload(lambda: page.report_html(base),
                            filename=f"{page.stem}-report-vs-{form.slug(base)}.html",
                            label="Download report (HTML)", mime_type="text/html")
    for note in page.notes:
        solara.Text(note, classes=["plsim-note"])


def _under_models(page: comparison.PageResults) -> str:
    if page.ensemble is None:
        return ""
    return f", each again under {_count(int(page.ensemble.member.nunique()), 'plausible model')}"


@solara.component
def BriefSection(page: comparison.PageResults, base: str):
    """The one-page brief, the same as the report's (``sim.presentation.brief``, which
    escapes every name and label it writes)."""
    shipped = comparison.SHIPPED_ENSEMBLE_NAME if page.ensemble is not None else ""
    solara.HTML(unsafe_innerHTML=brief.render(page.scenario, page.student_years,
                                              page.teachers, page.schools, base,
                                              summary=page.summary, ensemble=page.ensemble,
                                              ensemble_source=shipped))


@solara.component
def SummarySection(page: comparison.PageResults, base: str):
    _heading("What the comparison says")
    with solara.Column(gap="4px", classes=["plsim-summary"]):
        for s in comparison.sentences(page, base, page.last_year):
            solara.Text(s)


@solara.component
def FrontierSection(page: comparison.PageResults, base: str):
    with solara.Row(gap="2px", style={"align-items": "center"}):
        _heading("Growth versus proficiency (the frontier)")
        Help("frontier")
    if "growth_vs_proficiency" in page.figures:
        solara.Image(page.figures["growth_vs_proficiency"], width="min(100%, 900px)",
                     classes=["plsim-frontier", "plsim-figure"])


@solara.component
def BandSection(page: comparison.PageResults, base: str):
    with solara.Row(gap="2px", style={"align-items": "center"}):
        _heading("By starting band")
        Help("started")
    table = comparison.band_table(page, base, page.last_year)
    helps = {**BAND_TABLE_HELP, **{c: HELP["vs baseline"] + " " + HELP["interval"]
                                   for c in table.columns if " vs " in c}}
    solara.HTML(unsafe_innerHTML=comparison.html_table(table, "plsim-band-table", helps,
                                                       form.display_name))
    if "growth_vs_proficiency_by_band" in page.figures:
        solara.Image(page.figures["growth_vs_proficiency_by_band"], width="100%",
                     classes=["plsim-figure"])


@solara.component
def TeacherSection(page: comparison.PageResults, base: str):
    _heading("Teachers and schools")
    table = comparison.teacher_school_table(page, page.last_year)
    helps = {**TEACHER_TABLE_HELP,
             **{c: HELP["window"] for c in table.columns if "test-prep window" in c},
             **{c: HELP["program running"] for c in table.columns if "program running" in c}}
    solara.HTML(unsafe_innerHTML=comparison.html_table(table, "plsim-teacher-table", helps,
                                                       form.display_name))
    for name, width in (("school_policies_by_year", "100%"),
                        ("ratings_vs_true_effect", "min(100%, 1000px)")):
        if name in page.figures:
            solara.Image(page.figures[name], width=width, classes=["plsim-figure"])


# The results, top to bottom: each is called with the run and the baseline's label.
RESULT_SECTIONS = [ResultsHeader, BriefSection, SummarySection, FrontierSection, BandSection,
                   TeacherSection]


@solara.component
def ResultsArea():
    """The finished run's results, if any. Its own component because it reads the run's
    state, which changes with every progress tick: the form above must not re-render then,
    or a number being typed into it would be put back to its last value."""
    page = run_task.value if run_task.finished else None
    if page is not None:
        Results(page)


@solara.component
def Results(page: comparison.PageResults):
    base = baseline.value if baseline.value in page.arms else page.arms[0]
    with solara.Column(gap="6px", classes=["plsim-results"]):
        for section in RESULT_SECTIONS:
            section(page, base)


# The form's cards, left to right (each is called with the form's problems by path).
FORM_CARDS = [DistrictCard, StrategiesCard, RunCard]


@solara.component
def Page():
    solara.Style(CSS)
    solara.Title("plsim: compare strategies")
    errors = form_errors(scenario_data.value, typed.value)
    with solara.Column(classes=["plsim-page"], style={"max-width": "1500px"}):
        _heading("Personalized learning under grade-level accountability: compare "
                 "strategies", 2)
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            solara.Text("Pick your district and the strategies you are weighing, then press "
                        "Run. Each strategy is compared on", classes=["plsim-note"])
            with solara.Tooltip(HELP["growth"]):
                solara.Text("growth", classes=["plsim-note", "plsim-term"])
            solara.Text("(how much students learn in a year) and on", classes=["plsim-note"])
            with solara.Tooltip(HELP["proficient"]):
                solara.Text("proficiency", classes=["plsim-note", "plsim-term"])
            solara.Text("(the share at or above the state test's cut), for students who "
                        "started below, at or above grade level, and on what it does to "
                        "teachers and to the program's chances in a review.",
                        classes=["plsim-note"])
        # bring your own district: a fitted scenario replaces the form's
        district_upload.DistrictUpload(scenario_data)
        with solara.Columns([4, 4, 4]):
            for card in FORM_CARDS:
                with solara.Column():
                    card(errors)
        ResultsArea()
