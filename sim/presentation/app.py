"""``plsim app``: a web page to compare floor strategies on a district (Solara).

Choose a district profile (or a shipped scenario as a preset) and the strategies to
compare, press Run: the run goes on in the background (``solara.lab.task``, the arm-
replicates in worker processes through the run contract), with a progress bar and a
cancel button. The page shows the growth-versus-proficiency frontier, the by-band table,
a plain-language summary and a teacher and school panel, and offers the results (zip),
the HTML report and the scenario (TOML, for ``plsim run``) for download. A form with a
problem shows the scenario's own message next to the field and runs nothing.

Serve it with ``plsim app [--port N]`` (127.0.0.1 only).
"""

from __future__ import annotations

import time

import solara
import solara.lab

from sim.config.scenario import ScenarioError
from sim.presentation import brief, comparison, district_upload, form

DEFAULT_PRESET = "floor_strategies"

CSS = """
.plsim-error { color: #b00020; font-size: 0.85em; }
.plsim-note { color: #555; font-size: 0.85em; }
table.plsim-table { border-collapse: collapse; font-size: 0.85em; margin: 4px 0 12px 0; }
table.plsim-table th, table.plsim-table td { border-bottom: 1px solid #ddd; padding: 3px 8px;
    text-align: right; white-space: nowrap; }
table.plsim-table th:nth-child(-n+2), table.plsim-table td:nth-child(-n+2) { text-align: left; }
"""


class RunCancelled(Exception):
    """The user pressed Cancel: the run stops after the arm-replicates in flight."""


def _initial_form() -> dict:
    try:
        return form.load_preset(DEFAULT_PRESET)
    except ScenarioError:
        return {"name": "my_district", "seed": 1, "replicates": 2, "years": 1,
                "district": {}, "arms": []}


scenario_data = solara.reactive(_initial_form())
preset = solara.reactive(DEFAULT_PRESET)
baseline = solara.reactive("")
started_at = solara.reactive(0.0)


@solara.lab.task
def run_task(data: dict) -> comparison.PageResults:
    """Validate, run (all cores) and prepare the outputs; progress in percent of the
    arm-replicates done."""
    scenario = form.build_scenario(data)

    def on_task(done: int, total: int) -> None:
        if not run_task.is_current():
            raise RunCancelled()
        run_task.progress = 100.0 * done / total

    run_task.progress = 0.0
    return comparison.run_comparison(scenario, workers=0, on_task=on_task)


# --- small controls bound to a dotted path of the scenario data -------------------------
def _set(path: str, value) -> None:
    scenario_data.set(form.set_path(scenario_data.value, path, value))


@solara.component
def FieldError(errors: dict, path: str):
    msgs = form.errors_under(errors, path) if path.startswith("arms.") and \
        path.count(".") == 1 else ([errors[path]] if path in errors else [])
    for m in msgs:
        solara.Text(m, classes=["plsim-error"])


@solara.component
def IntField(label: str, path: str, default: int, errors: dict):
    value = form.get_path(scenario_data.value, path, default)
    solara.InputInt(label, value=value if isinstance(value, int) else default,
                    on_value=lambda v: _set(path, v), dense=True)
    FieldError(errors, path)


@solara.component
def FloatField(label: str, path: str, default: float, errors: dict):
    value = form.get_path(scenario_data.value, path, default)
    solara.InputFloat(label, value=float(value) if isinstance(value, int | float) else default,
                      on_value=lambda v: _set(path, v), dense=True)
    FieldError(errors, path)


@solara.component
def ChoiceField(label: str, path: str, values: tuple, default: str, errors: dict):
    value = form.get_path(scenario_data.value, path, default)
    solara.Select(label, values=list(values), value=value if value in values else default,
                  on_value=lambda v: _set(path, v), dense=True)
    FieldError(errors, path)


@solara.component
def SliderField(label: str, path: str, default: float, low: float, high: float, step: float,
                errors: dict):
    value = form.get_path(scenario_data.value, path, default)
    value = float(value) if isinstance(value, int | float) else default
    solara.Text(f"{label}: {value:g}", style={"font-size": "0.9em"})
    def moved(v: float) -> None:
        # the slider snaps a value off its step grid (a fitted 0.112 shows as 0.1) and
        # reports the snap: only a move of at least half a step is the user's
        if abs(v - value) >= step / 2:
            _set(path, round(v, 4))

    solara.SliderFloat("", value=value, min=low, max=high, step=step, thumb_label=False,
                       on_value=moved)
    FieldError(errors, path)


@solara.component
def OptionalFloat(label: str, path: str, default: float, errors: dict):
    value = form.get_path(scenario_data.value, path)
    on = value is not None
    with solara.Row(gap="6px"):
        solara.Checkbox(label=label, value=on,
                        on_value=lambda v: _set(path, default if v else None))
        if on:
            solara.InputFloat(f"{label}: years", value=float(value), dense=True,
                              on_value=lambda v: _set(path, v))
    FieldError(errors, path)


@solara.component
def Block(label: str, path: str, errors: dict):
    on = form.get_path(scenario_data.value, path) is not None
    solara.Checkbox(label=label, value=on, on_value=lambda v: scenario_data.set(
        form.toggle_section(scenario_data.value, path, v)))
    if on:
        FieldError(errors, path)


@solara.component
def ShareField():
    """Set the mean starting level from a share proficient at baseline (rough guide)."""
    problem, set_problem = solara.use_state("")

    def apply(percent):
        try:
            _set("district.mean_offset_sd", form.offset_for_share((percent or 0) / 100))
            set_problem("")
        except ValueError as err:
            set_problem(str(err))

    solara.InputFloat("or set it from a share proficient at baseline (%)", value=None,
                      optional=True, on_value=apply, dense=True)
    if problem:
        solara.Text(problem, classes=["plsim-error"])


# --- the district -----------------------------------------------------------------------
def _choose_preset(name: str) -> None:
    preset.set(name)
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
                         on_value=lambda v: _set("name", v), dense=True)
        FieldError(errors, "name")
        SliderField("mean starting level (SD of the statewide reference)",
                    "district.mean_offset_sd", -0.9, -2.5, 1.5, 0.05, errors)
        offset = form.get_path(data, "district.mean_offset_sd", -0.9)
        offset = float(offset) if isinstance(offset, int | float) else -0.9
        solara.Text(f"about {100 * form.approximate_share_proficient(offset):.0f}% proficient "
                    "at baseline (a rough guide; the run measures it)", classes=["plsim-note"])
        ShareField()
        SliderField("spread of starting levels (grade-years of SD added per grade)",
                    "population.sd_years_per_grade", 0.35, 0.0, 1.0, 0.05, errors)
        with solara.Columns([1, 1]):
            with solara.Column(gap="0px"):
                IntField("schools", "district.schools", 5, errors)
                IntField("classes per grade", "district.classes_per_grade", 3, errors)
            with solara.Column(gap="0px"):
                IntField("class size (students)", "district.class_size", 25, errors)
                IntField("personalized room size (students)", "district.room_size", 100,
                         errors)
        grades = form.get_path(data, "district.grades", list(range(9)))
        grades = grades if isinstance(grades, list) else list(range(9))
        program = form.get_path(data, "district.program_grades", [6, 7, 8])
        solara.SelectMultiple("program grades", values=[g for g in program if g in grades],
                              all_values=grades, dense=True,
                              on_value=lambda v: _set("district.program_grades", sorted(v)))
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
                IntField("years simulated", "years", 1, errors)
            with solara.Column(gap="0px"):
                IntField("replicates", "replicates", 1, errors)
            with solara.Column(gap="0px"):
                IntField("seed", "seed", 0, errors)


# --- the strategies ---------------------------------------------------------------------
def _describe(arm: dict) -> str:
    bits = [str(arm.get("pacing", "traditional"))]
    if arm.get("floor") is not None:
        bits.append(f"floor {arm['floor']:g}")
    if arm.get("ceiling") is not None:
        bits.append(f"ceiling {arm['ceiling']:g}")
    if arm.get("test_prep_weeks"):
        bits.append(f"test prep {arm['test_prep_weeks']:g} wk")
    if arm.get("gradual_floor") is not None:
        bits.append("gradual floor")
    if arm.get("tutoring") is not None:
        t = arm["tutoring"]
        target = t.get("target", "near_cut")
        bits.append(f"tutoring {t.get('hours_per_week', 0):g} h/wk ({target})")
    if arm.get("evaluation") == "shared":
        bits.append("shared evaluation")
    if arm.get("leaders") is not None:
        bits.append("leaders respond")
    if arm.get("review") is not None:
        bits.append("program review")
    return ", ".join(bits)


@solara.component
def ArmCard(i: int, arm: dict, errors: dict):
    p = f"arms.{i}"
    label = str(arm.get("label", ""))
    with solara.Card(margin=0, style={"margin-bottom": "6px"}):
        with solara.Row(justify="space-between"):
            solara.Text(f"{i + 1}. {label} — {_describe(arm)}", style={"font-weight": "500"})
            solara.Button(f"Remove {label}", small=True, text=True, color="error",
                          on_click=lambda: scenario_data.set(
                              form.remove_arm(scenario_data.value, i)))
        FieldError(errors, p)
        with solara.Details("edit this strategy"):
            solara.InputText("label", value=label, on_value=lambda v: _set(f"{p}.label", v),
                             dense=True)
            ChoiceField("pacing", f"{p}.pacing", form.PACINGS, "traditional", errors)
            OptionalFloat("floor (years below grade)", f"{p}.floor", 3.0, errors)
            OptionalFloat("ceiling (years above grade)", f"{p}.ceiling", 1.0, errors)
            FloatField("test-prep weeks before the state test", f"{p}.test_prep_weeks", 0.0,
                       errors)
            Block("gradual floor (rises to grade level by the test)", f"{p}.gradual_floor",
                  errors)
            if arm.get("gradual_floor") is not None:
                FloatField("starting floor (years below)", f"{p}.gradual_floor.start_floor",
                           3.0, errors)
                IntField("steps (0 = continuous)", f"{p}.gradual_floor.steps", 0, errors)
            Block("grade-level tutoring", f"{p}.tutoring", errors)
            if arm.get("tutoring") is not None:
                ChoiceField("tutoring target", f"{p}.tutoring.target", form.TUTORING_TARGETS,
                            "near_cut", errors)
                FloatField("tutoring hours per week", f"{p}.tutoring.hours_per_week", 3.0,
                           errors)
                FloatField("share of program students tutored", f"{p}.tutoring.share", 0.25,
                           errors)
            ChoiceField("teacher evaluation", f"{p}.evaluation", form.EVALUATIONS,
                        "teacher_of_record", errors)
            Block("school leaders respond to a shortfall", f"{p}.leaders", errors)
            Block("district reviews the program", f"{p}.review", errors)


@solara.component
def StrategiesCard(errors: dict):
    arms = scenario_data.value.get("arms", [])
    arms = arms if isinstance(arms, list) else []
    library = form.strategy_library()
    with solara.Card("Strategies to compare", margin=0):
        solara.Text("The first strategy is the default baseline of the comparisons. Every "
                    "strategy runs on the same synthetic students.", classes=["plsim-note"])
        FieldError(errors, "arms")
        for i, arm in enumerate(arms):
            ArmCard(i, arm if isinstance(arm, dict) else {}, errors)
        solara.Text("Add a strategy:", classes=["plsim-note"])
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            for name, arm in library.items():
                solara.Button(f"+ {name}", small=True, outlined=True,
                              on_click=lambda arm=arm: scenario_data.set(
                                  form.add_arm(scenario_data.value, arm)))
            solara.Button("Clear all", small=True, text=True,
                          on_click=lambda: _set("arms", []))


# --- running ----------------------------------------------------------------------------
def _start(data: dict) -> None:
    started_at.set(time.time())
    run_task(data)


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
        elif scenario is not None:
            n = len(scenario.arms) * scenario.replicates
            solara.Text(f"{len(scenario.arms)} strategies × {scenario.replicates} replicates "
                        f"= {n} runs of {scenario.years} year(s).", classes=["plsim-note"])
        with solara.Row():
            solara.Button("Run", color="primary", disabled=bool(errors) or run_task.pending,
                          on_click=lambda: _start(data))
            solara.Button("Cancel", disabled=not run_task.pending,
                          on_click=lambda: run_task.cancel())
            if scenario is not None:
                solara.FileDownload(form.scenario_toml(scenario).encode("utf-8"),
                                    filename=f"{scenario.name}.toml",
                                    label="Download scenario (TOML)", mime_type="text/plain")
        if run_task.pending:
            solara.ProgressLinear(run_task.progress if run_task.progress else True)
            solara.Text(f"running… {run_task.progress or 0:.0f}% of the runs done, "
                        f"{time.time() - started_at.value:.0f} s", classes=["plsim-status"])
        elif run_task.cancelled:
            solara.Warning("Run cancelled; nothing was kept.", dense=True)
        elif run_task.error:
            solara.Error(f"The run failed: {run_task.exception}", dense=True)


# --- results ----------------------------------------------------------------------------
@solara.component
def Results(page: comparison.PageResults):
    base = baseline.value if baseline.value in page.arms else page.arms[0]
    year = page.last_year
    sc = page.scenario
    solara.HTML(tag="h3", unsafe_innerHTML=f"Results: {sc.name}")
    solara.Text(f"{len(page.arms)} strategies × {sc.replicates} replicates, year {year} of "
                f"{sc.years}; the run took {page.seconds:.0f} s. Growth is fall-to-spring, in SD "
                "of the state's fall scores; proficiency is the share at or above the state "
                "cut; students in the program grades; brackets are 95% intervals across "
                "replicates.", classes=["plsim-note"])
    solara.Select("baseline for the comparisons", values=page.arms, value=base,
                  on_value=baseline.set, dense=True, style={"max-width": "320px"})
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(page.results_zip, filename=f"{sc.name}-results.zip",
                            label="Download results (zip)", mime_type="application/zip")
        if page.has_report:
            solara.FileDownload(lambda: page.report_html(base),
                                filename=f"{sc.name}-report-vs-{base}.html",
                                label="Download report (HTML)", mime_type="text/html")
    for note in page.notes:
        solara.Text(note, classes=["plsim-note"])
    # the one-page brief, the same as the report's (sim.presentation.brief; escaped there)
    solara.HTML(unsafe_innerHTML=brief.render(sc, page.student_years, page.teachers,
                                              page.schools, base, summary=page.summary))
    solara.HTML(tag="h4", unsafe_innerHTML="What the comparison says")
    with solara.Column(gap="4px", classes=["plsim-summary"]):
        for s in comparison.sentences(page, base, year):
            solara.Text(s)
    solara.HTML(tag="h4", unsafe_innerHTML="Growth versus proficiency (the frontier)")
    if "growth_vs_proficiency" in page.figures:
        solara.Image(page.figures["growth_vs_proficiency"], width="640px",
                     classes=["plsim-frontier"])
    solara.HTML(tag="h4", unsafe_innerHTML="By starting band")
    solara.HTML(unsafe_innerHTML=comparison.html_table(
        comparison.band_table(page, base, year), "plsim-band-table"))
    if "growth_vs_proficiency_by_band" in page.figures:
        solara.Image(page.figures["growth_vs_proficiency_by_band"], width="100%")
    solara.HTML(tag="h4", unsafe_innerHTML="Teachers and schools")
    solara.HTML(unsafe_innerHTML=comparison.html_table(
        comparison.teacher_school_table(page, year), "plsim-teacher-table"))
    for name, width in (("school_policies_by_year", "100%"), ("ratings_vs_true_effect", "80%")):
        if name in page.figures:
            solara.Image(page.figures[name], width=width)


@solara.component
def Page():
    solara.Style(CSS)
    solara.Title("plsim: compare strategies")
    errors = form.field_errors(scenario_data.value)
    solara.HTML(tag="h2", unsafe_innerHTML="Personalized learning under grade-level "
                                           "accountability: compare strategies")
    solara.Text("Pick your district and the strategies you are weighing, then press Run. "
                "Each strategy is compared on growth (how much students learn in a year) and "
                "on proficiency (the share at or above the state test's cut), for students "
                "who started below, at or above grade level, and on what it does to teachers "
                "and to the program's chances in a review.", classes=["plsim-note"])
    with solara.Columns([5, 7]):
        with solara.Column():
            district_upload.DistrictUpload(scenario_data)
            DistrictCard(errors)
            StrategiesCard(errors)
        with solara.Column():
            RunCard(errors)
            page = run_task.value if run_task.finished else None
            if page is not None:
                Results(page)
