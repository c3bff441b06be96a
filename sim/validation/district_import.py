"""Bring your own district: a scenario fitted to the aggregates a district publishes.

The input is a CSV with one row per school and tested grade (aggregates only):

* ``school``: the school's label (text, kept as data);
* ``grade``: a grade that sits the state test (3-8 by default);
* ``enrolled``: students enrolled in that school and grade (at least 10: aggregates only);
* ``proficient_share``: share of them proficient on the state test (0-1);
* optional ``fall_mean`` and ``fall_sd``: mean and SD of a fall MAP-like score, read on
  plsim's vertical scale (``assessment.scale_intercept`` + ``scale_points_per_year`` per
  grade-year: 150 + 10 per grade-year, close to MAP's RIT); compared, not fitted.

Lines starting with ``#`` are comments. Columns that look like student identifiers
(``student_id``, ``name``, ``dob``, ``ssn``, ...) are refused.

The fit. Each (school, grade) gets a known-school offset (``district.cohort_offsets_sd``,
SD of starting achievement, for the cohort in that grade in reported year 1;
``docs/model.md`` §7.2) so that the traditional arm's year-1 share proficient matches
the file. Start from the normal-quantile relation (share = Phi(offset / spread)), then
correct each offset with short simulations of the district itself (traditional arm,
one reported year, the written scenario's first replicates and seed, so
``plsim run`` on the written scenario reproduces the fit's year-1 traditional numbers).
The district's mean offset is the enrolment-weighted mean; the per-cell remainder goes to
``cohort_offsets_sd``. Every school and grade has the same size in plsim
(``classes_per_grade`` x ``class_size``, from the mean enrolment): the table reports the
enrolment each cell is simulated with beside the file's.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import tomli_w

from sim.config.parameters import AssessmentParams
from sim.config.scenario import (
    ScenarioError,
    merge_under,
    read_parameters,
    validate_scenario,
)
from sim.experiments.runner import run

REQUIRED = ("school", "grade", "enrolled", "proficient_share")
OPTIONAL = ("fall_mean", "fall_sd")
MIN_ENROLLED = 10          # students: a smaller row is not an aggregate
MAX_BYTES = 1_000_000      # a district's aggregates are a few kB
MAX_SCHOOLS = 40           # keeps the fit's simulations to a minute or two
# column-name words that identify a person: such a file is not aggregate data
IDENTIFIER_WORDS = frozenset({
    "name", "firstname", "lastname", "surname", "dob", "birth", "birthdate", "birthday",
    "ssn", "social", "email", "address", "phone", "id", "lasid", "sasid", "uid"})
PERSON_WORDS = frozenset({"student", "pupil", "child", "learner"})
MAX_CELL = 250             # students simulated a school and grade: shares need no more
TYPICAL_CLASS = 25         # students per class when sizing the synthetic schools
SPREAD0 = 1.2              # SD of offset per probit unit of a school's share: the first guess
TOLERANCE = 0.02           # share proficient: a cell further off gets another correction
FIT_ARMS = [{"label": "traditional", "pacing": "traditional"}]
# the strategies the written scenario compares (the page adds or removes them)
WRITTEN_ARMS = [
    {"label": "traditional", "pacing": "traditional"},
    {"label": "floor3", "pacing": "personalized", "floor": 3},
    {"label": "test_prep", "pacing": "personalized", "floor": 3, "test_prep_weeks": 6},
    {"label": "gradual_floor", "pacing": "personalized", "gradual_floor": {"start_floor": 3}},
]


@dataclass
class DistrictData:
    """A district's aggregates, one cell per (school, grade); arrays are (schools, grades)."""

    source: str
    schools: list[str]
    grades: list[int]
    enrolled: np.ndarray          # students
    proficient: np.ndarray        # share 0-1
    fall_mean: np.ndarray | None  # scale points (NaN where not given)
    fall_sd: np.ndarray | None    # scale points (NaN where not given)


@dataclass
class Imported:
    """The written scenario's data, its fit table and the seconds the fit took."""

    scenario: dict
    table: pd.DataFrame
    seconds: float


# --- reading --------------------------------------------------------------------------
def _words(column: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", column.lower())) - {""}


def looks_like_identifier(column: str) -> bool:
    """A column naming or identifying a person (``student_id``, ``name``, ``DOB``, ``ssn``,
    ``student``), not a school (``school_name``) or a count (``student_count``)."""
    words = _words(column)
    if "school" in words:
        return False
    return bool(words & IDENTIFIER_WORDS) or (bool(words) and words <= PERSON_WORDS)


def _check_header(source: str, header: list[str]) -> list[str]:
    cols = [c.strip().lower() for c in header]
    for c in cols:
        if looks_like_identifier(c):
            raise ScenarioError(
                f"{source}: column {c!r} looks like a student identifier; plsim takes "
                "aggregate numbers only (per school and grade: " + ", ".join(REQUIRED)
                + "), never data about single students")
    allowed = REQUIRED + OPTIONAL
    for c in cols:
        if c not in allowed:
            raise ScenarioError(f"{source}: unknown column {c!r}; allowed columns: "
                                f"{', '.join(allowed)} (the last two optional)")
    if len(set(cols)) != len(cols):
        raise ScenarioError(f"{source}: a column appears twice in the header")
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ScenarioError(f"{source}: missing column {missing[0]!r}; needed: "
                            f"{', '.join(REQUIRED)}")
    return cols


def _number(source: str, line: int, col: str, text: str, allowed: str, whole: bool = False,
            low: float = -math.inf, high: float = math.inf) -> float:
    """One cell as a number in [low, high], or ScenarioError naming file, row and column."""
    where = f"{source}: row {line}, column {col}"
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(f"{where}: not a number (got {text!r}); allowed: {allowed}"
                            ) from None
    if not math.isfinite(value) or (whole and value != int(value)) or not low <= value <= high:
        raise ScenarioError(f"{where}: got {text!r}; allowed: {allowed}")
    return value


def _rows(source: str, text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row that is not blank or a ``#`` comment; the header
    first. ScenarioError when the text is not CSV."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells) and not cells[0].lstrip().startswith("#"):
                out.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ScenarioError(f"{source}: row {reader.line_num}: not CSV ({exc})") from None
    return out


def read_district_csv(path: str | Path, tested_grades=None) -> DistrictData:
    """Read and check a district's aggregates; ScenarioError (one line) on bad input."""
    source = str(path)
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ScenarioError(f"{source}: {p.stat().st_size} bytes; a district's aggregates "
                                f"fit in {MAX_BYTES} bytes (one row per school and grade)")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{source}: file not found") from None
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read file ({exc.__class__.__name__})") from None
    return parse_district(source, raw, tested_grades)


def parse_district(source: str, raw: bytes, tested_grades=None) -> DistrictData:
    """Check a district's aggregates given as the CSV file's bytes (``source`` names it in
    messages); ScenarioError (one line) on bad input."""
    if len(raw) > MAX_BYTES:
        raise ScenarioError(f"{source}: {len(raw)} bytes; a district's aggregates fit in "
                            f"{MAX_BYTES} bytes (one row per school and grade)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScenarioError(f"{source}: not UTF-8 text (save the sheet as CSV UTF-8)") from None
    tested = sorted(tested_grades or AssessmentParams().tested_grades)
    rows = _rows(source, text)
    if not rows:
        raise ScenarioError(f"{source}: empty; expected a header ({', '.join(REQUIRED)}) "
                            "and one row per school and grade")
    cols = _check_header(source, rows[0][1])
    cells = {}
    for line, values in rows[1:]:
        if len(values) != len(cols):
            raise ScenarioError(f"{source}: row {line}: {len(values)} values for "
                                f"{len(cols)} columns ({', '.join(cols)})")
        cell = _read_row(source, line, dict(zip(cols, (v.strip() for v in values),
                                                strict=True)), tested)
        key = (cell["school"], cell["grade"])
        if key in cells:
            raise ScenarioError(f"{source}: row {line}: school {key[0]!r} grade {key[1]} "
                                "appears twice; allowed: one row per school and grade")
        cells[key] = cell
    return _assemble(source, cells, "fall_mean" in cols or "fall_sd" in cols)


def _read_row(source: str, line: int, row: dict, tested: list[int]) -> dict:
    school = row["school"]
    if not school or not school.isprintable() or len(school) > 200:
        raise ScenarioError(f"{source}: row {line}, column school: {school[:40]!r}; allowed: "
                            "the school's label (1-200 printable characters, one line)")
    grades = f"a tested grade, {tested[0]}-{tested[-1]}"
    grade = int(_number(source, line, "grade", row["grade"], grades, True, tested[0],
                        tested[-1]))
    enrolled = _number(source, line, "enrolled", row["enrolled"],
                       f"a whole number of students, {MIN_ENROLLED} to 5000", True, 0, 5000)
    if enrolled < MIN_ENROLLED:
        raise ScenarioError(
            f"{source}: row {line}, column enrolled: {row['enrolled']} students; plsim takes "
            f"aggregates only: at least {MIN_ENROLLED} students a row (merge small grades "
            "or schools)")
    share = _number(source, line, "proficient_share", row["proficient_share"],
                    "a share between 0 and 1 (e.g. 0.42 for 42%)", False, 0, 1)
    out = {"school": school, "grade": grade, "enrolled": int(enrolled), "proficient": share,
           "fall_mean": math.nan, "fall_sd": math.nan}
    for col, low, high in (("fall_mean", 0, 1000), ("fall_sd", 1e-9, 200)):
        if row.get(col):
            out[col] = _number(source, line, col, row[col],
                               f"a positive score on plsim's scale (up to {high}), or blank",
                               False, low, high)
    return out


def _assemble(source: str, cells: dict, has_fall: bool) -> DistrictData:
    if not cells:
        raise ScenarioError(f"{source}: no data rows; expected one row per school and grade")
    schools = list(dict.fromkeys(s for s, _ in cells))
    grades = sorted({g for _, g in cells})
    if len(schools) > MAX_SCHOOLS:
        raise ScenarioError(f"{source}: {len(schools)} schools; allowed: at most {MAX_SCHOOLS}")
    if grades != list(range(grades[0], grades[-1] + 1)):
        raise ScenarioError(f"{source}: grades {grades} are not consecutive; allowed: every "
                            "grade between the lowest and the highest")
    for s in schools:
        for g in grades:
            if (s, g) not in cells:
                raise ScenarioError(f"{source}: school {s!r} has no row for grade {g}; "
                                    "allowed: every school with a row for every grade")

    def grid(key):
        return np.array([[cells[s, g][key] for g in grades] for s in schools], float)

    return DistrictData(source, schools, grades, grid("enrolled"), grid("proficient"),
                        grid("fall_mean") if has_fall else None,
                        grid("fall_sd") if has_fall else None)


# --- fitting --------------------------------------------------------------------------
def district_size(data: DistrictData) -> tuple[int, int]:
    """(classes per grade, class size) whose product is the mean enrolment of a cell (at
    most ``MAX_CELL`` students: a larger cell changes no share and slows the fit)."""
    mean = min(float(data.enrolled.mean()), MAX_CELL)
    classes = max(1, round(mean / TYPICAL_CLASS))
    return classes, int(min(200, max(MIN_ENROLLED, round(mean / classes))))


def _probit(share: np.ndarray, n: float) -> np.ndarray:
    """Normal quantile of a share, kept inside (1/2n, 1 - 1/2n) for a cell of ``n``."""
    eps = 0.5 / max(n, 1.0)
    inv = NormalDist().inv_cdf
    return np.vectorize(inv)(np.clip(share, eps, 1 - eps))


def _district_block(data: DistrictData, offsets: np.ndarray) -> dict:
    """The scenario's [district] table for cell offsets (SD): mean + per-cell remainder."""
    classes, size = district_size(data)
    mean = float(np.clip(np.average(offsets, weights=data.enrolled), -4, 4))
    rest = np.clip(np.round(offsets - mean, 3), -6, 6)
    program = [g for g in (6, 7, 8) if g in data.grades] or list(data.grades)
    return {"schools": len(data.schools), "grades": list(data.grades),
            "classes_per_grade": classes, "class_size": size, "program_grades": program,
            "mean_offset_sd": round(mean, 3),
            "cohort_offsets_sd": [[float(x) for x in row] for row in rest]}


def _simulate(data: DistrictData, block: dict, seed: int, replicates: int, workers: int):
    """Year-1 traditional-arm cells: (share proficient, fall mean, fall SD), each (S, G)."""
    sc = validate_scenario(merge_under(read_parameters(), {
        "name": "district-import-fit", "seed": seed, "replicates": replicates, "years": 1,
        "district": block, "arms": FIT_ARMS}), f"{data.source} (the fit's scenario)")
    rows = run(sc, workers=workers).student_years
    rows = rows[(rows.year == 1) & rows.proficient.notna()]
    cell = rows.groupby(["school", "grade"])
    shape = (len(data.schools), len(data.grades))

    def grid(series):
        out = np.full(shape, np.nan)
        for (s, g), v in series.items():
            out[s, data.grades.index(g)] = v
        return out

    return (grid(cell.proficient.mean().astype(float)), grid(cell.fall_score.mean()),
            grid(cell.fall_score.std()))


def fit_district(data: DistrictData, name: str, seed: int = 1, replicates: int = 4,
                 passes: int = 2, workers: int = 1, log=None, check: bool = True,
                 max_passes: int = 4) -> Imported:
    """Fit the cell offsets; the scenario's data (not validated over the fitted parameters
    yet) and the fit table. ``passes``: correction simulations after the first guess;
    more, up to ``max_passes``, while a cell is over ``TOLERANCE`` from the file.
    The fit uses the scenario's own seed and replicates (common random numbers), so it
    matches them closely; ``check`` runs the fitted district once more on other draws
    (the next seed) and adds their shares to the table (``proficient_other_draws``):
    how much a school and grade moves when its classrooms and teachers are drawn anew."""
    start = time.time()
    classes, size = district_size(data)
    n = classes * size * replicates
    target = _probit(data.proficient, n)
    offsets = SPREAD0 * target
    sims = []
    for k in range(max(passes, max_passes) + 1):
        block = _district_block(data, offsets)
        offsets = block["mean_offset_sd"] + np.asarray(block["cohort_offsets_sd"])
        share, fall_mean, fall_sd = _simulate(data, block, seed, replicates, workers)
        sims.append((offsets, _probit(share, n)))
        gap = np.abs(share - data.proficient)
        if log:
            log(f"pass {k}: |simulated - target| share proficient: mean {gap.mean():.3f}, "
                f"max {gap.max():.3f} ({time.time() - start:.0f} s)")
        if k >= max_passes or (k >= passes and gap.max() <= TOLERANCE):
            break
        offsets = offsets + _spread(sims) * (target - sims[-1][1])
    scenario = {
        "name": name,
        "description": (f"Imported by plsim district import from {Path(data.source).name}: "
                        f"{len(data.schools)} schools, grades {data.grades[0]}-"
                        f"{data.grades[-1]}; each school and grade fitted to its share "
                        "proficient (year 1, traditional arm)."),
        "seed": seed, "replicates": replicates, "years": 2, "district": block,
        "arms": WRITTEN_ARMS}
    table = fit_table(data, classes * size, share, fall_mean, fall_sd)
    if check:
        other = _simulate(data, block, (seed + 1) % 2**63, replicates, workers)[0]
        w = data.enrolled.ravel()
        table.insert(table.columns.get_loc("proficient_simulated") + 1,
                     "proficient_other_draws",
                     [*np.round(other.ravel(), 3), round(float(np.average(other.ravel(),
                                                                          weights=w)), 3)])
        if log:
            log(f"check on other draws: mean |simulated - target| share proficient "
                f"{np.mean(np.abs(other - data.proficient)):.3f} ({time.time() - start:.0f} s)")
    return Imported(scenario, table, time.time() - start)


def _spread(sims) -> float:
    """SD of offset per probit unit of simulated share: the slope between the last two
    passes where it can be measured (cells that moved), else the first guess."""
    if len(sims) < 2:
        return SPREAD0
    (x0, p0), (x1, p1) = sims[-2], sims[-1]
    dp, dx = p1 - p0, x1 - x0
    moved = np.abs(dp) > 0.05
    if moved.sum() < 3:
        return SPREAD0
    slope = float(np.sum(dx[moved] * dp[moved]) / np.sum(dp[moved] ** 2))
    return float(np.clip(slope, 0.5, 3.0))


def fit_table(data: DistrictData, simulated_enrolled: int, share, fall_mean, fall_sd
              ) -> pd.DataFrame:
    """Each number of the file beside the synthetic district's (year 1, traditional arm)."""
    rows = []
    for i, s in enumerate(data.schools):
        for j, g in enumerate(data.grades):
            row = {"school": s, "grade": g,
                   "enrolled_target": int(data.enrolled[i, j]),
                   "enrolled_simulated": simulated_enrolled,
                   "proficient_target": round(float(data.proficient[i, j]), 3),
                   "proficient_simulated": round(float(share[i, j]), 3)}
            if data.fall_mean is not None:
                row.update({"fall_mean_target": data.fall_mean[i, j],
                            "fall_mean_simulated": round(float(fall_mean[i, j]), 1),
                            "fall_sd_target": data.fall_sd[i, j],
                            "fall_sd_simulated": round(float(fall_sd[i, j]), 1)})
            rows.append(row)
    table = pd.DataFrame(rows)
    # the district's share: both sides weighted by the file's enrolment (plsim's cells
    # are all one size, so its own district share weights every cell alike)
    w = data.enrolled.ravel()
    total = {"school": "(district)", "grade": "",
             "enrolled_target": int(w.sum()),
             "enrolled_simulated": simulated_enrolled * len(rows),
             "proficient_target": round(float(np.average(data.proficient.ravel(), weights=w)), 3),
             "proficient_simulated": round(float(np.average(np.ravel(share), weights=w)), 3)}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def scenario_for(imported: Imported, source: str):
    """The written scenario validated as ``plsim check`` would (over the fitted set)."""
    return validate_scenario(merge_under(read_parameters(), imported.scenario), source)


def write_import(imported: Imported, out: str | Path) -> tuple[Path, Path]:
    """Write the scenario (TOML writer) and its fit table (``<out>.fit.csv``) beside it;
    each file appears whole (written aside, then renamed) or not at all."""
    out = Path(out)
    fit = out.with_name(out.stem + ".fit.csv")
    scenario_for(imported, str(out))
    texts = {out: tomli_w.dumps(imported.scenario), fit: imported.table.to_csv(index=False)}
    temps = {}
    try:
        for path, text in texts.items():
            temps[path] = tmp = path.with_name(f".{path.name}.partial")
            tmp.write_text(text, encoding="utf-8")
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise ScenarioError(f"--out {out}: cannot write there ({exc.__class__.__name__})"
                            ) from None
    return out, fit


def fit_notes(table: pd.DataFrame) -> list[str]:
    """Plain sentences on the fit: the share proficient's largest gap and, when the file
    gives fall scores, how they compare (they are not fitted)."""
    cells = table[table.school != "(district)"]
    gap = (cells.proficient_simulated - cells.proficient_target).abs()
    notes = [f"Share proficient (fitted): simulated within {gap.max():.3f} of the file in "
             f"every school and grade (mean gap {gap.mean():.3f}); year 1, traditional arm, "
             "this scenario's seed and replicates."]
    off = int((gap > TOLERANCE).sum())
    if off:
        notes.append(f"{off} school-grade share{'s' if off > 1 else ''} stayed more than "
                     f"{TOLERANCE} from the file after the corrections: shares near 0 or 1, "
                     "or in very small grades, can be out of the model's reach.")
    if "proficient_other_draws" in cells:
        other = (cells.proficient_other_draws - cells.proficient_target).abs()
        whole = table[table.school == "(district)"].iloc[0]
        notes.append(
            f"On other random draws (the next seed) a school and grade is {other.mean():.3f} "
            f"from the file on average (at most {other.max():.3f}), the district "
            f"{abs(whole.proficient_other_draws - whole.proficient_target):.3f}: classrooms "
            "and teachers are drawn anew in every replicate, so a single school and grade "
            "varies about that much from run to run.")
    if "fall_mean_target" in cells:
        both = cells.dropna(subset=["fall_mean_target", "fall_mean_simulated"])
        if len(both) >= 3:
            diff = float((both.fall_mean_target - both.fall_mean_simulated).mean())
            r = float(np.corrcoef(both.fall_mean_target, both.fall_mean_simulated)[0, 1])
            notes.append(
                f"Fall means (compared, not fitted): the file's are {abs(diff):.1f} points "
                f"{'above' if diff > 0 else 'below'} plsim's on average (a MAP-like scale is "
                f"not plsim's: 150 + 10 points a grade-year); across schools and grades "
                f"they correlate r = {r:.2f}.")
    return notes


def format_fit(table: pd.DataFrame) -> str:
    """The fit table and its notes as text."""
    return "\n".join([table.to_string(index=False, na_rep=""), *fit_notes(table)])
