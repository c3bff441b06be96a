"""The page's "bring your own district": upload a CSV of aggregates, get a fitted scenario.

A small component the page renders with one line (``DistrictUpload(scenario_data)``).
The uploaded file is checked and fitted by ``sim.validation.district_import`` (the same
as ``plsim district import``), in the background; the page's scenario becomes the
fitted one and the fit table (each number of the file beside the synthetic district's)
is shown. Labels from the file are data: the table is escaped HTML.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import solara
import solara.lab

from sim.config.scenario import ScenarioError, merge_under, read_parameters
from sim.validation import district_import

TABLE_COLUMNS = {"school": "school", "grade": "grade", "enrolled_target": "enrolled (file)",
                 "enrolled_simulated": "enrolled (plsim)",
                 "proficient_target": "proficient (file)",
                 "proficient_simulated": "proficient (plsim)",
                 "fall_mean_target": "fall mean (file)",
                 "fall_mean_simulated": "fall mean (plsim)",
                 "fall_sd_target": "fall SD (file)", "fall_sd_simulated": "fall SD (plsim)"}


def read_upload(name: str, size: int, file_obj) -> district_import.DistrictData:
    """The uploaded file's aggregates (ScenarioError, naming it, on bad input); a file over
    the size limit is refused before it is read."""
    source = Path(name or "upload.csv").name
    if size > district_import.MAX_BYTES:
        raise ScenarioError(f"{source}: {size} bytes; a district's aggregates fit in "
                            f"{district_import.MAX_BYTES} bytes (one row per school and grade)")
    return district_import.parse_district(source, file_obj.read(district_import.MAX_BYTES + 1))


def imported_form(imported: district_import.Imported) -> dict:
    """The page's form data for an imported scenario: over the fitted parameter set, as a
    preset is read (``form.load_preset``)."""
    return merge_under(read_parameters(), imported.scenario)


def fit_table_html(table) -> str:
    """The fit table as escaped HTML (school labels are the uploader's text)."""
    cols = [c for c in TABLE_COLUMNS if c in table.columns]
    head = "".join(f"<th>{html.escape(TABLE_COLUMNS[c])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in cols) + "</tr>"
        for _, row in table.iterrows())
    return (f'<table class="plsim-table plsim-fit-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:g}"
    return str(value)


@solara.lab.task
def fit_task(name: str, data: district_import.DistrictData,
             scenario_data: solara.Reactive) -> district_import.Imported:
    """Fit in the background (all cores), then make the page's scenario the fitted one."""
    fit = district_import.fit_district(data, name=Path(name).stem or "my_district",
                                       workers=0)
    scenario_data.set(imported_form(fit))
    return fit


@solara.component
def DistrictUpload(scenario_data: solara.Reactive):
    """Upload a district's aggregates; on success the page's scenario is the fitted one."""
    problem = solara.use_reactive("")
    started = solara.use_reactive(0.0)

    def on_file(info) -> None:
        problem.set("")
        try:
            data = read_upload(info["name"], info["size"], info["file_obj"])
        except ScenarioError as err:
            problem.set(str(err))
            return
        started.set(time.time())
        fit_task(info["name"], data, scenario_data)

    done = fit_task.finished and fit_task.value is not None
    with solara.Card("Your own district (optional)", margin=0):
        solara.Text("Upload a CSV of aggregates, one row per school and tested grade: "
                    "school, grade, enrolled, proficient_share (0-1), optionally fall_mean "
                    "and fall_sd. No student-level data: at least 10 students a row. The "
                    "district is fitted so its year-1 traditional arm reproduces the file "
                    "(about a minute).", classes=["plsim-note"])
        solara.FileDrop(label="Drop your district's CSV here", on_file=on_file, lazy=True)
        if problem.value:
            solara.Text(problem.value, classes=["plsim-error"])
        if fit_task.pending:
            solara.Text(f"fitting… {time.time() - started.value:.0f} s",
                        classes=["plsim-note"])
        elif fit_task.error:
            solara.Text(f"The fit failed: {fit_task.exception}", classes=["plsim-error"])
        elif done:
            fit = fit_task.value
            solara.Text(f"Fitted in {fit.seconds:.0f} s; the scenario above is now this "
                        "district. Each number of the file beside plsim's (year 1, "
                        "traditional arm):", classes=["plsim-note"])
            solara.HTML(unsafe_innerHTML=fit_table_html(fit.table))
            for note in district_import.fit_notes(fit.table):
                solara.Text(note, classes=["plsim-note"])
