"""Scenario files: TOML data, validated, never evaluated as code.

A scenario names its district and population, calendar, number of years,
replicates, seed and a list of arms. Every arm runs on the same synthetic
students with the same random streams (common random numbers).
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from collections import Counter
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
    LeadershipParams,
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


# Limits on what a scenario, sweep, spec or parameters file may hold. The shipped files are
# a few kilobytes, nested at most four levels, with a handful of arms; the limits are far
# above any real use and keep a hostile file from exhausting memory, the stack or time.
MAX_FILE_BYTES = 16 * 2**20  # largest file read (bytes); a 1,000-arm scenario is ~100 kB
MAX_DEPTH = 32  # tables and arrays nested deeper than this are refused (levels)
MAX_ARMS = 1000  # arms in one scenario
MAX_SHOWN = 60  # characters of a given value quoted back in a message


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
    leadership: LeadershipParams = Field(default_factory=LeadershipParams)
    arms: list[ArmSettings] = Field(min_length=1, max_length=MAX_ARMS)

    @model_validator(mode="after")
    def _consistent(self):
        dupes = repeated(a.label for a in self.arms)
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
    loc = printable(".".join(str(p) for p in first["loc"])) or "(top level)"
    msg = first["msg"]
    if first.get("type") == "extra_forbidden":
        msg = "unknown key (not a field of this section)"
    given = first.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f" (got {shorten(given)})"
    more = len(err.errors()) - 1
    tail = f" [and {more} more problem{'s' if more > 1 else ''}]" if more else ""
    return f"{path}: {loc}: {msg}{shown}{tail}"


def repeated(items) -> list:
    """The items that occur more than once, sorted; one pass (a Counter), so a hostile
    file's 100,000 labels or paths are checked in milliseconds, not hours."""
    return sorted(x for x, n in Counter(items).items() if n > 1)


def printable(text: str) -> str:
    """``text`` with control characters escaped (a key of a file may hold a line break or a
    terminal escape): a message stays one line and prints as it reads."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shorten(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting input back in a message."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str(): never built by our readers, but be safe
        return "(a number too long to show)"
    return text if len(text) <= limit else f"{text[:limit - 13]}... ({len(text):,} chars)"


def read_regular_file(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ScenarioError.

    Opened without blocking (a FIFO would wait for a writer) and checked before
    reading: a directory, a device (``/dev/zero`` never ends), a FIFO or a
    socket is refused, and so is a file over the limit.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ScenarioError(f"{p}: file not found") from None
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read file ({exc.__class__.__name__}: "
                            f"{exc.strerror or exc})") from None
    mode = os.fstat(fd)
    if not stat.S_ISREG(mode.st_mode) or mode.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(mode.st_mode):
            raise ScenarioError(f"{p}: cannot read file: {_file_kind(mode.st_mode)}, not a "
                                "regular file")
        raise ScenarioError(f"{p}: cannot read file: {mode.st_size:,} bytes, over the "
                            f"limit of {limit:,} bytes for a scenario file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise ScenarioError(f"{p}: cannot read file ({exc.__class__.__name__}: "
                                f"{exc.strerror or exc})") from None
    if len(data) > limit:  # it grew while we read it
        raise ScenarioError(f"{p}: cannot read file: over the limit of {limit:,} bytes")
    return data


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file as data, or raise ScenarioError naming the file."""
    p = Path(path)
    try:
        text = read_regular_file(p).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{p}: cannot read file ({exc.__class__.__name__}: {exc})") from None
    return parse_toml(text, str(p))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as data, nested at most MAX_DEPTH levels; ScenarioError naming ``source``."""
    try:
        return _loads(text, source)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML ({exc})") from None


def _loads(text: str, source: str) -> dict[str, Any]:
    """``tomllib.loads`` with its failures on hostile input as ScenarioError (the
    TOMLDecodeError of plain bad syntax passes through)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except RecursionError:  # tomllib's parser recurses once per level of nesting
        raise ScenarioError(f"{source}: tables or arrays nested too deeply (at most "
                            f"{MAX_DEPTH} levels)") from None
    except ValueError:  # int() of more digits than Python converts (sys.int_info)
        raise ScenarioError(f"{source}: {_long_number(text)}") from None
    check_depth(data, source)
    return data


def _long_number(text: str) -> str:
    """Where the number Python refused to convert is (a line), and the limit in digits."""
    digits = sys.get_int_max_str_digits()
    found = re.search(f"[0-9_]{{{digits + 1},}}", text)
    lines = text.count("\n", 0, found.start()) + 1 if found else 0
    where = f"line {lines}: " if found and "\n" in text.strip() else ""
    return f"{where}a number of more than {digits:,} digits (no field allows one)"


def check_depth(data: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """ScenarioError when tables or arrays nest deeper than ``limit`` (iterative: a
    deep value cannot exhaust the stack here)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > limit:
            where = ".".join(path[:4])
            raise ScenarioError(f"{source}: {where}...: tables or arrays nested more than "
                                f"{limit} levels deep")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((v, (*path, str(k))) for k, v in items if isinstance(v, dict | list))


def parse_override(text: str, source: str = "<scenario>") -> tuple[list[str], Any]:
    """Split ``a.b.c=value``; the value is read as a TOML value, else as a string."""
    if "=" not in text:
        raise ScenarioError(f"{source}: --set {shorten(text)}: expected dotted.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ScenarioError(f"{source}: --set {shorten(text)}: empty part in the dotted path")
    if len(parts) > MAX_DEPTH:
        raise ScenarioError(f"{source}: --set {shorten(key)}: a path of {len(parts)} parts "
                            f"(at most {MAX_DEPTH})")
    try:
        value = _loads(f"v = {raw.strip()}", f"{source}: --set {key.strip()[:MAX_SHOWN]}")["v"]
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
            raise ScenarioError(f"{source}: {shorten('.'.join(parts))}: "
                                f"{shorten('.'.join(parts[:i]))} is a value, not a section")
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
    raise ScenarioError(f"{source}: {shorten('.'.join(path))}: no list item {shorten(part)} "
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
        apply_override(data, parts, value, f"{path} (--set {shorten(text)})")
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
