"""Scenario files: TOML data, validated, never evaluated as code.

A scenario names its district and population, calendar, number of years,
replicates, seed and a list of arms. Every arm runs on the same synthetic
students with the same random streams (common random numbers).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from sim.config.parameters import (
    AffectParams,
    ArmSettings,
    AssessmentParams,
    CalendarParams,
    CurriculumParams,
    DistrictParams,
    EvaluationParams,
    LearningParams,
    PopulationParams,
    SensemakingParams,
    Strict,
    TeacherParams,
    TeamParams,
    TraditionalParams,
)


class ScenarioError(Exception):
    """Bad input: one message naming the file, the field and what is allowed."""


class Scenario(Strict):
    name: str = Field(min_length=1, description="scenario name")
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63, description="root seed")
    replicates: int = Field(1, ge=1, le=10000, description="independent synthetic districts")
    years: int = Field(1, ge=1, le=30, description="school years simulated")
    district: DistrictParams = Field(default_factory=DistrictParams)
    population: PopulationParams = Field(default_factory=PopulationParams)
    teachers: TeacherParams = Field(default_factory=TeacherParams)
    teams: TeamParams = Field(default_factory=TeamParams)
    curriculum: CurriculumParams = Field(default_factory=CurriculumParams)
    calendar: CalendarParams = Field(default_factory=CalendarParams)
    learning: LearningParams = Field(default_factory=LearningParams)
    affect: AffectParams = Field(default_factory=AffectParams)
    assessment: AssessmentParams = Field(default_factory=AssessmentParams)
    traditional: TraditionalParams = Field(default_factory=TraditionalParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)
    sensemaking: SensemakingParams = Field(default_factory=SensemakingParams)
    arms: list[ArmSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        labels = [a.label for a in self.arms]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"arm labels must be unique; repeated: {', '.join(dupes)}")
        cur = self.curriculum
        for g in self.district.grades:
            if not cur.lowest_grade <= g <= cur.highest_grade:
                raise ValueError(f"district grade {g} has no skills in the curriculum "
                                 f"({cur.lowest_grade}..{cur.highest_grade})")
        for a in self.arms:
            a.check_against(self.calendar, self.district)
        return self


def format_validation_error(path: str, err: ValidationError) -> str:
    """One line naming the file, the first failing field, what is wrong and what was given."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first.get("type") == "extra_forbidden":
        msg = "unknown key (not a field of this section)"
    given = first.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
    more = len(err.errors()) - 1
    tail = f" [and {more} more problem{'s' if more > 1 else ''}]" if more else ""
    return f"{path}: {loc}: {msg}{shown}{tail}"


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file as data, or raise ScenarioError naming the file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read file ({exc.__class__.__name__}: {exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML ({exc})") from None


def parse_override(text: str, source: str = "<scenario>") -> tuple[list[str], Any]:
    """Split ``a.b.c=value``; the value is read as a TOML value, else as a string."""
    if "=" not in text:
        raise ScenarioError(f"{source}: --set {text!r}: expected dotted.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ScenarioError(f"{source}: --set {text!r}: empty part in the dotted path")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def apply_override(data: dict[str, Any], parts: list[str], value: Any, source: str) -> None:
    """Set ``value`` at a dotted path; list items by index or, for arms, by label."""
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            node_key = _list_index(node, part, parts[: i + 1], source)
        elif isinstance(node, dict):
            node_key = part
            if not last and part not in node:
                node[part] = {}
        else:
            raise ScenarioError(f"{source}: {'.'.join(parts)}: "
                                f"'{'.'.join(parts[:i])}' is a value, not a section")
        if last:
            node[node_key] = value
        else:
            node = node[node_key]


def _list_index(node: list, part: str, path: list[str], source: str) -> int:
    if part.isascii() and part.isdigit() and int(part) < len(node):
        return int(part)
    for j, item in enumerate(node):
        if isinstance(item, dict) and item.get("label") == part:
            return j
    raise ScenarioError(f"{source}: {'.'.join(path)}: no list item {part!r} "
                        f"(use an index 0..{len(node) - 1} or an arm label)")


# The fitted parameter set (``plsim calibrate --fit``): every scenario file starts from
# it, and the file's own values win. Absent file: the code defaults alone.
FITTED_PARAMETERS = Path(__file__).with_name("fitted.toml")
# every parameter table of a scenario (district, population, ..., learning, ...)
PARAMETER_SECTIONS = tuple(name for name, f in Scenario.model_fields.items()
                           if isinstance(f.annotation, type) and issubclass(f.annotation, Strict))


def read_parameters(path: str | Path | None = FITTED_PARAMETERS) -> dict[str, Any]:
    """A parameters file: tables of scenario sections only (``[learning]`` ...); ``{}`` for
    ``None`` or a missing default file. ScenarioError names the file and the bad key."""
    if path is None or (Path(path) == FITTED_PARAMETERS and not FITTED_PARAMETERS.exists()):
        return {}
    data = read_toml(path)
    for key, value in data.items():
        if key not in PARAMETER_SECTIONS or not isinstance(value, dict):
            raise ScenarioError(f"{path}: {key}: a parameters file holds only the tables "
                                f"{', '.join(PARAMETER_SECTIONS)}")
        extra = sorted(set(value) - set(Scenario.model_fields[key].annotation.model_fields))
        if extra:
            raise ScenarioError(f"{path}: {key}.{extra[0]}: unknown parameter (the model has "
                                "changed since the fit? re-run `plsim calibrate --fit`)")
    return data


def merge_under(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over ``base``, table by table: a key ``data`` sets wins (a new dict)."""
    out = dict(base)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_under(out[key], value)
        else:
            out[key] = value
    return out


def read_scenario(path: str | Path, parameters: str | Path | None = FITTED_PARAMETERS
                  ) -> dict[str, Any]:
    """A scenario file as data, over the parameters file (default: the fitted set)."""
    return merge_under(read_parameters(parameters), read_toml(path))


def load_scenario(path: str | Path, overrides: list[str] | None = None,
                  seed: int | None = None, replicates: int | None = None,
                  parameters: str | Path | None = FITTED_PARAMETERS) -> Scenario:
    """Read (over the fitted parameters), override and validate a scenario file;
    ScenarioError on bad input."""
    data = read_scenario(path, parameters)
    for text in overrides or []:
        parts, value = parse_override(text, str(path))
        apply_override(data, parts, value, f"{path} (--set {text})")
    if seed is not None:
        data["seed"] = seed
    if replicates is not None:
        data["replicates"] = replicates
    return validate_scenario(data, str(path))


def validate_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(source, err)) from None
