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
import solara.hooks
import solara.lab
import traitlets
from ipyvuetify.extra import FileInput

from sim.config.scenario import ScenarioError, merge_under, read_parameters
from sim.validation import district_import

# A file chooser that is also a drop zone: ipyvuetify's FileInput (its chunked upload
# protocol: ``jupyter_read`` / ``upload``) with a plain <input type=file> a person can
# click, a keyboard can reach and a browser test can fill; Solara's FileDrop only takes
# a drag and drop.
PICKER_VUE = """
<template>
  <div class="plsim-district-drop" @dragover.prevent @drop.prevent="dropped">
    <label>{{ label }}
      <input type="file" accept=".csv,text/csv" class="plsim-district-file"
             @change="picked" />
    </label>
  </div>
</template>
<script>
module.exports = {
  methods: {
    setFiles(files) {
      this.native_file_info = files;
      this.file_info = files.map(({name, size}) => ({name, size, isFile: true}));
    },
    picked(e) { this.setFiles(Array.from(e.target.files || [])); },
    dropped(e) { this.setFiles(Array.from(e.dataTransfer.files || [])); },
    jupyter_clear() { this.native_file_info = []; this.file_info = []; },
    jupyter_read(chunk) {
      const {id, file_index, offset, length} = chunk;
      (async () => {
        let done = 0;
        while (done < length) {
          const size = Math.min(length - done, 1024 * 1024);
          const blob = this.native_file_info[file_index].slice(offset + done,
                                                               offset + done + size);
          this.upload({id, file_index, offset: offset + done, length: size},
                      [await blob.arrayBuffer()]);
          done += size;
        }
      })();
    },
  },
};
</script>
<style id="plsim-district-drop">
.plsim-district-drop { border: 1px dashed gray; margin: 8px 0; padding: 8px; }
</style>
"""


class CsvPicker(FileInput):
    """One CSV file, chosen or dropped, read through FileInput's chunked upload."""

    template = traitlets.Unicode(PICKER_VUE).tag(sync=True)
    label = traitlets.Unicode().tag(sync=True)

# the page's columns (the enrolment is in a sentence: plsim's is one number)
TABLE_COLUMNS = {"school": "school", "grade": "grade", "enrolled_target": "enrolled (file)",
                 "proficient_target": "proficient (file)",
                 "proficient_simulated": "proficient (plsim)",
                 "proficient_other_draws": "proficient (plsim, other draws)",
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
    return (f'<div style="overflow-x: auto"><table class="plsim-table plsim-fit-table">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:g}"
    return str(value)


@solara.component
def CsvUpload(label: str, on_file):
    """Calls ``on_file({"name", "size", "file_obj"})`` (in a thread: reading waits for the
    browser's chunks) once a file is chosen or dropped."""
    info, set_info = solara.use_state(None)
    picker = CsvPicker.element(label=label, on_file_info=set_info, multiple=False)
    files, set_files = solara.use_state(None)

    def wire():
        if info:
            widget = solara.get_widget(picker)
            widget.version += 1
            widget.reset_stats()
            set_files(widget.get_files())

    solara.use_effect(wire, [info])

    def handle(cancel):
        if files:
            on_file(files[0])

    result = solara.hooks.use_thread(handle, [files])
    if result.error:
        raise result.error
    return picker


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
        CsvUpload("Choose or drop your district's CSV: ", on_file)
        if problem.value:
            solara.Text(problem.value, classes=["plsim-error"])
        if fit_task.pending:
            solara.Text(f"fitting… {time.time() - started.value:.0f} s",
                        classes=["plsim-note"])
        elif fit_task.error:
            solara.Text(f"The fit failed: {fit_task.exception}", classes=["plsim-error"])
        elif done:
            fit = fit_task.value
            d = fit.scenario["district"]
            solara.Text(f"Fitted in {fit.seconds:.0f} s; the district below is now this one "
                        f"({d['schools']} schools, grades {d['grades'][0]}-{d['grades'][-1]}, "
                        f"{d['classes_per_grade'] * d['class_size']} students a school and "
                        "grade in plsim). Each number of the file beside plsim's (year 1, "
                        "traditional arm):", classes=["plsim-note"])
            solara.HTML(unsafe_innerHTML=fit_table_html(fit.table))
            for note in district_import.fit_notes(fit.table):
                solara.Text(note, classes=["plsim-note"])
