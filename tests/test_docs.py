"""docs/model.md documents every scenario parameter with its current default.

The parameter tables of ``docs/model.md`` (tables whose header is
``| key | unit | default | meaning |``) must list every field of every
parameter block reachable from ``sim.config.scenario.Scenario`` (the blocks of
``sim/config/parameters.py`` and the arm settings), keyed as in a TOML scenario file
(``learning.base_rate``, ``arms[].floor``, ``arms[].tutoring.hours_per_week``),
each with its default in the same row. A default changed in the code, a
parameter added or removed without the documentation following, fails here.

Defaults are written in the table as TOML values (``0.55``, ``0.550``,
``[6, 7, 8]``, ``"near_cut"``), or ``none`` (the key is absent, Python None),
or ``required`` (no default).
"""

from __future__ import annotations

import inspect
import math
import re
import tomllib
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim.config import parameters
from sim.config.scenario import Scenario

DOC = Path(__file__).resolve().parents[1] / "docs" / "model.md"
HEADER = ("key", "unit", "default", "meaning")
CALIBRATION_HEADER = ("parameter", "value", "main lever for")
REQUIRED = object()  # marker: the field has no default


# --- the code side ---------------------------------------------------------------------
def _models_in(annotation) -> list[tuple[type[BaseModel], bool]]:
    """Pydantic models inside an annotation, each with whether it sits in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        return [(m, True) for arg in args for m, _ in _models_in(arg)]
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in _models_in(arg)]
    return []


def _default(field) -> object:
    if field.default is PydanticUndefined and field.default_factory is None:
        return REQUIRED
    return field.get_default(call_default_factory=True)


def code_parameters() -> tuple[dict[str, object], set[type[BaseModel]]]:
    """TOML key -> default for every field reachable from Scenario; and the blocks seen.

    A field holding a parameter block is itself listed only when it is optional
    (``arms[].tutoring``: absent means no tutoring); a required section or list
    (``district``, ``arms``) is a heading, not a parameter.
    """
    keys: dict[str, object] = {}
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        seen.add(model)
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            nested = _models_in(field.annotation)
            if not nested:
                keys[key] = _default(field)
                continue
            default = _default(field)
            if default is None:  # an optional sub-table
                keys[key] = None
            for sub, in_list in nested:
                walk(sub, f"{key}[]." if in_list else f"{key}.")

    walk(Scenario, "")
    return keys, seen


def parameter_blocks() -> set[type[BaseModel]]:
    """Every pydantic model defined in sim.config.parameters except the Strict base."""
    return {cls for _, cls in inspect.getmembers(parameters, inspect.isclass)
            if issubclass(cls, BaseModel) and cls.__module__ == parameters.__name__
            and cls is not parameters.Strict}


# --- the documentation side --------------------------------------------------------------
def _cells(line: str) -> list[str]:
    """Cells of a markdown table row (``\\|`` is a literal bar inside a cell)."""
    inner = line.strip().strip("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def doc_rows(text: str, header: tuple[str, ...] = HEADER) -> list[dict[str, str]]:
    """Rows of every markdown table whose header row is ``header`` (case-insensitive)."""
    rows: list[dict[str, str]] = []
    in_table = False
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if tuple(c.lower() for c in cells) == header:
            in_table = True
            continue
        if not in_table or all(set(c) <= set("-: ") for c in cells):
            continue
        assert len(cells) == len(header), f"table row with {len(cells)} cells: {line}"
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def parse_default(cell: str) -> object:
    """A documented default: a TOML value, ``none`` or ``required`` (backticks optional)."""
    text = cell.strip().strip("`").strip()
    if text.lower() == "required":
        return REQUIRED
    if text.lower() == "none":
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise AssertionError(f"default {cell!r} is not a TOML value, 'none' or 'required'") \
            from exc


def same_value(documented: object, actual: object) -> bool:
    """Equal as scenario values: numbers by value (0.55 == 0.550, 150 == 150.0)."""
    if documented is REQUIRED or actual is REQUIRED or documented is None or actual is None:
        return documented is actual
    if isinstance(actual, bool) or isinstance(documented, bool):
        return documented is actual
    if isinstance(actual, int | float) and isinstance(documented, int | float):
        return math.isclose(float(documented), float(actual), rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(actual, list | tuple) and isinstance(documented, list):
        return len(actual) == len(documented) and all(
            same_value(d, a) for d, a in zip(documented, actual, strict=True))
    return documented == actual


def documented() -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for row in doc_rows(DOC.read_text(encoding="utf-8")):
        out.setdefault(row["key"].strip("`").strip(), []).append(row)
    return out


# --- tests -----------------------------------------------------------------------------
def test_helpers_read_defaults_as_written():
    assert same_value(parse_default("`0.55`"), 0.55)
    assert same_value(parse_default("0.550"), 0.55)
    assert same_value(parse_default("`[6, 7, 8]`"), [6, 7, 8])
    assert same_value(parse_default("`150`"), 150.0)
    assert same_value(parse_default('`"near_cut"`'), "near_cut")
    assert parse_default("none") is None and parse_default("required") is REQUIRED
    assert not same_value(parse_default("0.5"), 0.55)
    assert not same_value(parse_default("[6, 7]"), [6, 7, 8])
    assert not same_value(parse_default("none"), 0)


def test_every_parameter_block_is_reachable_from_a_scenario():
    _, seen = code_parameters()
    missing = sorted(cls.__name__ for cls in parameter_blocks() - seen)
    assert not missing, f"blocks of sim/config/parameters.py no scenario key reaches: {missing}"


def test_doc_has_parameter_tables():
    assert DOC.exists(), "docs/model.md is missing"
    assert len(documented()) >= 50


@pytest.mark.parametrize("key", sorted(code_parameters()[0]))
def test_parameter_documented_with_current_default(key):
    expected = code_parameters()[0][key]
    rows = documented().get(key)
    assert rows, f"`{key}` is not in a parameter table of docs/model.md"
    for row in rows:
        got = parse_default(row["default"])
        assert same_value(got, expected), (
            f"docs/model.md gives `{key}` the default {row['default']!r}; the code has "
            f"{'no default (required)' if expected is REQUIRED else repr(expected)}")
        assert row["unit"], f"`{key}`: empty unit cell (write '-' for a unitless value)"
        assert row["meaning"], f"`{key}`: empty meaning cell"


def test_no_documented_parameter_is_unknown_to_the_code():
    keys, _ = code_parameters()
    unknown = sorted(set(documented()) - set(keys))
    assert not unknown, f"docs/model.md documents keys the code does not have: {unknown}"


def test_hand_set_calibration_values_match_code():
    """The 'free parameters set by hand' table of the Calibration section is current too."""
    keys, _ = code_parameters()
    rows = doc_rows(DOC.read_text(encoding="utf-8"), CALIBRATION_HEADER)
    assert rows, "docs/model.md has no table of hand-set calibration parameters"
    for row in rows:
        names = [n.strip().strip("`") for n in row["parameter"].split(",")]
        values = [v.strip() for v in row["value"].split(",")]
        assert len(names) == len(values), f"one value per parameter: {row}"
        for name, value in zip(names, values, strict=True):
            assert name in keys, f"calibration table names unknown parameter `{name}`"
            assert same_value(parse_default(value), keys[name]), (
                f"calibration table gives `{name}` = {value}; the code default is {keys[name]!r}")
