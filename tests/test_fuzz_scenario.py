"""Property-based fuzzing of the scenario loader (Hypothesis; issue 25, item 8).

Every invalid scenario generated here (the quick scenario with one field given a value of
the wrong type, out of its range, NaN or infinite, or an unknown key; the same values given
with ``--set``; arbitrary text as a file) must give ``ScenarioError`` naming the field, and
through the command line status 2, one message and nothing written under ``--out``.
Examples are few and small so the file runs in seconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import typing
from pathlib import Path

import annotated_types as at
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.config.parameters import ArmSettings
from sim.config.scenario import PARAMETER_SECTIONS, Scenario, ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.toml"
QUICK_TEXT = QUICK.read_text(encoding="utf-8")
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _numeric_fields() -> list[tuple[str, type, list]]:
    """(dotted path, int or float, bounds) of every number a scenario holds: the top
    level's, every parameter section's, and the first arm's."""
    found = []
    models = [("", Scenario)] + [(f"{s}.", Scenario.model_fields[s].annotation)
                                 for s in PARAMETER_SECTIONS] + [("arms.0.", ArmSettings)]
    for prefix, model in models:
        for name, f in model.model_fields.items():
            if typing.get_origin(f.annotation) is list:  # lists of numbers: not a number
                continue
            kinds = {f.annotation, *getattr(f.annotation, "__args__", ())}
            kind = float if float in kinds else int if int in kinds else None
            if kind is not None and bool not in kinds:
                found.append((prefix + name, kind, list(f.metadata)))
    return found


NUMBERS = _numeric_fields()


def _beyond(kind: type, bounds: list) -> list:
    """Values outside a field's bounds (none when it has none)."""
    out = []
    for b in bounds:
        if isinstance(b, at.Ge):
            out.append(b.ge - (1 if kind is int else 0.5))
        elif isinstance(b, at.Gt):
            out.append(b.gt)
        elif isinstance(b, at.Le):
            out.append(b.le + (1 if kind is int else 0.5))
        elif isinstance(b, at.Lt):
            out.append(b.lt)
    return out


@st.composite
def invalid_value(draw):
    """(dotted path, a value that field must refuse)."""
    path, kind, bounds = draw(st.sampled_from(NUMBERS))
    wrong = [draw(st.text(max_size=12)), [1, 2], {"a": 1}, True]
    if kind is float:
        wrong += [math.nan, math.inf, -math.inf]
    else:
        wrong += [draw(st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda x: x != int(x)))]
    return path, draw(st.sampled_from(wrong + _beyond(kind, bounds)))


def _set(data: dict, path: str, value) -> None:
    *head, last = path.split(".")
    node = data
    for part in head:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value


def _run_refused(path: Path, extra: list[str]) -> None:
    """``plsim run`` of ``path``: status 2, one message, nothing under --out."""
    out = path.parent / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(path), "--out", str(out), "--quiet", *extra])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plsim: error: "), lines
    assert not out.exists(), "a refused run wrote under --out"


def _quick_data() -> dict:
    import tomllib

    return tomllib.loads(QUICK_TEXT)


@FUZZ
@given(invalid_value())
def test_a_bad_value_in_the_file_is_refused_naming_its_field(case):
    path, value = case
    data = _quick_data()
    _set(data, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "bad.toml"
        f.write_text(tomli_w.dumps(data), encoding="utf-8")
        with pytest.raises(ScenarioError) as err:
            load_scenario(f)
        assert str(err.value).startswith(f"{f}: {path}"), str(err.value)
        _run_refused(f, [])


@FUZZ
@given(invalid_value())
def test_a_bad_value_given_with_set_is_refused_naming_its_field(case):
    path, value = case
    text = tomli_w.dumps({"v": value}).removeprefix("v = ").strip()
    if isinstance(value, dict):  # a table as an inline table
        text = "{" + ", ".join(f"{k} = {v}" for k, v in value.items()) + "}"
    with pytest.raises(ScenarioError) as err:
        load_scenario(QUICK, [f"{path}={text}"])
    assert f": {path}" in str(err.value), str(err.value)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "quick.toml"
        f.write_text(QUICK_TEXT, encoding="utf-8")
        _run_refused(f, ["--set", f"{path}={text}"])


SECTIONS = ["", *(f"{s}." for s in PARAMETER_SECTIONS), "arms.0."]


@FUZZ
@given(st.sampled_from(SECTIONS), st.text(min_size=1, max_size=20).filter(
    lambda k: k not in Scenario.model_fields and k not in ArmSettings.model_fields
    and all(k not in Scenario.model_fields[s].annotation.model_fields
            for s in PARAMETER_SECTIONS)))
def test_an_unknown_key_is_refused_naming_it(section, key):
    data = _quick_data()
    node = data
    for part in section.rstrip(".").split(".") if section else []:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[key] = 1
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "bad.toml"
        f.write_text(tomli_w.dumps(data), encoding="utf-8")
        with pytest.raises(ScenarioError) as err:
            load_scenario(f)
        msg = str(err.value)
        assert "unknown key" in msg and f": {section}" in msg, msg
        _run_refused(f, [])


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_arbitrary_bytes_as_a_scenario_are_refused_naming_the_file(content):
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "junk.toml"
        f.write_bytes(content)
        with pytest.raises(ScenarioError) as err:
            load_scenario(f)
        assert str(err.value).startswith(f"{f}: ")
        _run_refused(f, [])
