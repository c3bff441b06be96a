"""The runs validation needs, all on one parameter set.

A *study* is a scenario run for validation: a shipped scenario file's district,
years, seed and arms (only the arms a pattern needs), with the **common
parameter set** in every mechanism section — the parameters file (by default
``sim/config/fitted.toml``) over the code defaults, then any ``--set``
overrides — whatever the file itself sets there. So every fact and finding is
measured with the same mechanisms. The district is the file's; where it does
not set ``mean_offset_sd``, the parameters file's (fitted) value applies, as
when the scenario is run.

``--quick`` shrinks every district (2 schools of 2 classes of 20, a statewide
reference of 400 students per grade) and runs few replicates: for tests, not
for conclusions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from sim.config.scenario import (
    FITTED_PARAMETERS,
    PARAMETER_SECTIONS,
    ScenarioError,
    apply_override,
    merge_under,
    parse_override,
    read_parameters,
    read_toml,
    validate_scenario,
)
from sim.experiments.runner import Results, run

CASE = "tepp_case_study.toml"
TIMELINE = "logics_collide.toml"
TIMELINE_ARM = "tepp"
TIMELINE_YEARS = 4  # the study's three program years and the year after
TIMELINE_GRADES = [5, 6, 7, 8]  # the program's grades 6-8 and the tested grade below them
TRADITIONAL = [{"label": "traditional", "pacing": "traditional"}]
MECHANISMS = tuple(s for s in PARAMETER_SECTIONS if s != "district")
FITTED_DISTRICT_KEYS = ("mean_offset_sd",)  # district keys --set may change in validation


def scenarios_dir() -> Path:
    """The shipped ``scenarios/`` folder of this checkout (or of the working directory)."""
    here = Path(__file__).resolve().parents[2] / "scenarios"
    return here if here.is_dir() else Path("scenarios")


@dataclass(frozen=True)
class Settings:
    """How big the validation runs are.

    Args:
        quick: small districts and few replicates (relaxed judging, flagged).
        replicates: replicates of every study.
        variance_schools: schools of the variance district.
        workers: processes (0 = all cores).
        shrink: district fields every study gets (quick: small districts).
        reference_students: statewide reference students per grade (quick: fewer).
        max_years: years kept per scenario (quick: 2, or one past a program review).
    """

    quick: bool = False
    replicates: int = 10
    variance_schools: int = 40
    workers: int = 2
    shrink: dict = field(default_factory=dict)
    reference_students: int | None = None
    max_years: int | None = None

    @classmethod
    def make(cls, quick: bool, replicates: int | None = None, workers: int = 2) -> Settings:
        if quick:
            return cls(True, replicates or 2, 12, workers,
                       {"schools": 2, "classes_per_grade": 2, "class_size": 20}, 400, 2)
        return cls(False, replicates or 10, 40, workers)

    @classmethod
    def for_fit(cls, quick: bool, replicates: int | None = None, workers: int = 2) -> Settings:
        """A fit's trials: 4 replicates and a 20-school variance district (quick: tiny)."""
        if quick:
            return cls.make(True, replicates or 1, workers)
        return cls(False, replicates or 4, 20, workers)


@dataclass
class ParameterSet:
    """The common parameters: a parameters file's tables plus ``--set`` overrides."""

    tables: dict
    overrides: list[str] = field(default_factory=list)
    source: str = str(FITTED_PARAMETERS)

    @classmethod
    def load(cls, path: str | Path | None = FITTED_PARAMETERS,
             overrides: list[str] | None = None) -> ParameterSet:
        """From a parameters file (``None``: the code defaults) and ``--set`` texts, each a
        ``section.key=value`` of a mechanism section or of ``district.mean_offset_sd``."""
        tables = read_parameters(path)
        for text in overrides or []:
            parts, _ = parse_override(text, "--set")
            ok = parts[0] in MECHANISMS or (parts[0] == "district" and len(parts) == 2
                                            and parts[1] in FITTED_DISTRICT_KEYS)
            if not ok or len(parts) < 2:
                raise ScenarioError(
                    f"--set {text}: validation sets parameters only: a key of "
                    f"{', '.join(MECHANISMS)}, or district.mean_offset_sd")
        source = "code defaults" if path is None else str(path)
        return cls(tables, list(overrides or []), source)


def shipped(name: str, folder: Path | None = None) -> Path:
    """A shipped scenario file by name."""
    return (folder or scenarios_dir()) / name


def study(path: Path, params: ParameterSet, settings: Settings, arms: tuple[str, ...] | None,
          update: dict | None = None, district: dict | None = None):
    """A validated scenario for a study: a scenario file's district, years, seed and the
    named arms, with the common parameters. ``update`` replaces top-level fields,
    ``district`` district fields (after the quick shrink)."""
    path = Path(path)
    data = read_toml(path)
    own = [k for k in MECHANISMS if k in data]
    for k in own:
        data.pop(k)
    data = merge_under(params.tables, data)
    for text in params.overrides:
        apply_override(data, *parse_override(text, "--set"), f"--set {text}")
    if arms is not None:
        by_label = {a.get("label"): a for a in data.get("arms", [])}
        missing = [a for a in arms if a not in by_label]
        if missing:
            raise ScenarioError(f"{path}: arms: validation needs the arm(s) "
                                f"{', '.join(missing)}, which the scenario no longer has")
        data["arms"] = [by_label[a] for a in arms]
    data["replicates"] = settings.replicates
    if settings.max_years:
        data["years"] = min(data.get("years", 1), _years_needed(data, settings.max_years))
    data.setdefault("district", {})
    data["district"].update(settings.shrink)
    if settings.reference_students:
        data.setdefault("assessment", {})["reference_students_per_grade"] = \
            settings.reference_students
    data.update(update or {})
    data["district"].update(district or {})
    sc = validate_scenario(data, f"{path} (validation study)")
    if own:
        print(f"plsim validate: {path.name} sets its own {', '.join(own)}; validation uses the "
              "common parameter set instead", file=sys.stderr)
    return sc


def _years_needed(data: dict, minimum: int) -> int:
    """Years a quick run keeps: ``minimum``, or one past the first program review."""
    reviews = [a["review"].get("after_years", 3) + 1 for a in data.get("arms", [])
               if isinstance(a.get("review"), dict)]
    return max([minimum, *reviews])


def statewide(params: ParameterSet, settings: Settings, case: Path):
    """The case district at the statewide mean, traditional pacing, two years."""
    return study(case, params, settings, None, {"years": 2, "arms": TRADITIONAL},
                 {"mean_offset_sd": 0.0})


def variance_district(params: ParameterSet, settings: Settings, case: Path):
    """Grades 4-5 of the statewide district in many schools: one reported year."""
    return study(case, params, settings, None, {"years": 1, "arms": TRADITIONAL},
                 {"mean_offset_sd": 0.0, "grades": [4, 5], "program_grades": [],
                  "schools": settings.variance_schools})


def case_district(params: ParameterSet, settings: Settings, case: Path):
    """The case district under traditional pacing, its first year."""
    return study(case, params, settings, None, {"years": 1, "arms": TRADITIONAL})


def timeline(params: ParameterSet, settings: Settings, path: Path):
    """The program as implemented (``logics_collide``, arm ``tepp``) over the study's three
    years and the year after, in its five schools (kept in a quick run: the facts count
    schools of five); for time, the schools serve grades 5-8 only (the program runs in
    6-8; leaders and the review read the program grades)."""
    return study(path, params, settings, (TIMELINE_ARM,), {"years": TIMELINE_YEARS},
                 {"schools": 5, "grades": TIMELINE_GRADES})


def run_study(scenario, settings: Settings) -> Results:
    return run(scenario, workers=settings.workers)


def tables(results: Results) -> dict:
    return {"student_years": results.student_years, "teacher_years": results.teacher_years,
            "school_years": results.school_years}
