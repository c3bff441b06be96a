"""The app's form: scenario data the page edits, its validation and its TOML.

The form is a scenario in the shape of a scenario file (a dict of TOML data):
a preset is a shipped scenario file read as data, and every control of the
page edits one dotted path in it (``district.schools``, ``arms.1.floor``).
Validation is the scenario's own (pydantic): its messages are shown next to
the control whose path they name, and nothing runs while any remains. The
TOML the page offers for download is the validated scenario, which
``plsim run`` reads back to the same scenario.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from statistics import NormalDist
from typing import Any

import tomli_w
from pydantic import ValidationError

from sim.config.parameters import ArmSettings
from sim.config.scenario import Scenario, ScenarioError, read_scenario, read_toml

PACINGS = ("traditional", "personalized", "grade_level_first", "teacher_paced", "extra_time",
           "move_on")
TUTORING_TARGETS = ("near_cut", "furthest_behind", "all")
EVALUATIONS = ("teacher_of_record", "shared")
GRADE_PACED = ("traditional", "teacher_paced", "extra_time")
GENERAL = ""  # the error key of problems that name no field

# Share proficient at baseline implied by a district mean offset, a rough guide for the
# form, never used by the model: share ~ Phi(_SHARE_AT_ZERO + _SHARE_SLOPE x offset), fitted
# (probit least squares, every point within 0.4 points) to the case-study district's
# traditional arm, grades 3-8, year 1, fitted parameters, eight spin-up years, 2 replicates
# (`plsim run scenarios/tepp_case_study.toml --set district.mean_offset_sd=X --set years=1`):
# offset -2 / -1.5 / -1.25 / -1 / -0.5 / 0 / 0.5 gave 19.9 / 27.1 / 30.8 / 35.2 / 45.1 /
# 54.9 / 63.9% proficient. The spin-up's out-of-school learning pulls a district part of the
# way to the state (its community term), so the offset moves the share about half as much as
# a generated population's would. Refit it when the start or the parameters change.
_SHARE_AT_ZERO = 0.115
_SHARE_SLOPE = 0.485


def scenarios_dir() -> Path:
    """The shipped scenarios: ``scenarios/`` beside the ``sim`` package (a source checkout),
    else ``./scenarios``."""
    here = Path(__file__).resolve().parents[2] / "scenarios"
    return here if here.is_dir() else Path("scenarios")


def presets(directory: Path | None = None) -> dict[str, Path]:
    """Shipped run scenarios (not sweeps) by name, in file-name order."""
    directory = scenarios_dir() if directory is None else directory
    out = {}
    for p in sorted(directory.glob("*.toml")):
        try:
            data = read_toml(p)
        except ScenarioError:
            continue
        if "arms" in data and "base" not in data:
            out[str(data.get("name", p.stem))] = p
    return out


def load_preset(name: str, directory: Path | None = None) -> dict[str, Any]:
    """A shipped scenario as form data, over the fitted parameter set as ``plsim run``
    reads it (ScenarioError if there is none of that name)."""
    found = presets(directory)
    if name not in found:
        raise ScenarioError(f"no shipped scenario named {name!r} (have: {', '.join(found)})")
    return read_scenario(found[name])


MAIN_PRESET = "floor_strategies"


def fitted_offset() -> float:
    """The fitted district mean offset (SD of the statewide reference): the form's value
    where a scenario sets none, as ``plsim run`` reads it."""
    from sim.config.scenario import FITTED_PARAMETERS, read_parameters

    return float(read_parameters(FITTED_PARAMETERS).get("district", {}).get("mean_offset_sd",
                                                                           -0.9))


def strategy_library(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every arm of the shipped scenarios by label, the strategies the page offers to add:
    the main comparison's first, then the others' (the first file to use a label wins)."""
    found = presets(directory)
    paths = [found[n] for n in sorted(found, key=lambda n: (n != MAIN_PRESET, n))]
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for arm in read_toml(path).get("arms", []):
            if isinstance(arm, dict) and isinstance(arm.get("label"), str):
                out.setdefault(arm["label"], arm)
    return out


def approximate_share_proficient(mean_offset_sd: float) -> float:
    """Rough share proficient at baseline for a district mean offset (SD of the statewide
    reference): a guide shown beside the control, not a model output."""
    z = _SHARE_AT_ZERO + _SHARE_SLOPE * mean_offset_sd
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def offset_for_share(share: float) -> float:
    """The district mean offset (SD, 3 decimals) whose rough share proficient at baseline is
    ``share`` (0 < share < 1): the inverse of :func:`approximate_share_proficient`."""
    if not 0 < share < 1:
        raise ValueError(f"a share proficient must be between 0 and 100% (got {100 * share:g}%)")
    return round((NormalDist().inv_cdf(share) - _SHARE_AT_ZERO) / _SHARE_SLOPE, 3)


# --- editing ------------------------------------------------------------------------
def get_path(data: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path (list items by index), or ``default``."""
    node: Any = data
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at a dotted path; ``None`` removes the key (TOML has
    no null: an absent optional field is its default)."""
    out = copy.deepcopy(data)
    parts = path.split(".")
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return out


def unique_label(label: str, taken: list[str]) -> str:
    """``label``, or ``label_2``, ``label_3``... if taken."""
    if label not in taken:
        return label
    i = 2
    while f"{label}_{i}" in taken:
        i += 1
    return f"{label}_{i}"


def add_arm(data: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``arm`` appended (its label made unique)."""
    out = copy.deepcopy(data)
    arms = out.setdefault("arms", [])
    new = copy.deepcopy(arm)
    new["label"] = unique_label(str(new.get("label", "strategy")),
                                [str(a.get("label")) for a in arms])
    arms.append(new)
    return out


def remove_arm(data: dict[str, Any], index: int) -> dict[str, Any]:
    out = copy.deepcopy(data)
    del out["arms"][index]
    return out


def toggle_section(data: dict[str, Any], path: str, on: bool) -> dict[str, Any]:
    """Switch an optional block of an arm (``arms.0.leaders``) on with its defaults, or off."""
    if not on:
        return set_path(data, path, None)
    if get_path(data, path) is not None:
        return data
    defaults = {"leaders": {}, "review": {}, "gradual_floor": {"start_floor": 3.0},
                "tutoring": {"hours_per_week": 3.0, "target": "near_cut"}}
    return set_path(data, path, copy.deepcopy(defaults[path.rsplit(".", 1)[-1]]))


# --- what a person types and reads -----------------------------------------------------
def parse_number(text: str, integer: bool) -> tuple[int | float | None, str]:
    """The number typed in a field, or ``(None, message)``: a whole number where one is
    meant ('2.5', '1e3' and 'abc' are refused, not rounded or ignored), a finite decimal
    number elsewhere. Blanks around the number are allowed; commas are not (is '2,5' two
    and a half or twenty-five?)."""
    t = str(text).strip()
    if not t:
        return None, "enter a number"
    if integer:
        if re.fullmatch(r"[+-]?\d+", t):
            return int(t), ""
        return None, f"enter a whole number (got {t!r})"
    try:
        value = float(t)
    except ValueError:
        return None, f"enter a number, e.g. 2.5 (got {t!r})"
    if not math.isfinite(value):
        return None, f"enter a finite number (got {t!r})"
    return value, ""


_WORDS = {"pd": "PD", "tepp": "TEPP", "sd": "SD"}


def display_name(label: str) -> str:
    """A strategy's label as a person reads it: 'secondary_pd_advisory' -> 'Secondary PD
    advisory', 'floor3' -> 'Floor 3' (the label itself stays the key of every table)."""
    text = re.sub(r"(?<=[A-Za-z])(?=\d)", " ", str(label))
    words = [_WORDS.get(w.lower(), w) for w in re.split(r"[_\s]+", text) if w]
    if not words:
        return str(label)
    first = words[0]
    words[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(words)


# --- validation -----------------------------------------------------------------------
def _message(err: dict) -> str:
    msg = err["msg"]
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (not a field of this section)"
    elif err.get("type") == "too_short" and tuple(err["loc"]) == ("arms",):
        msg = "choose at least one strategy to compare"
    msg = re.sub(r"^Value error, ", "", msg)
    given = err.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
    return f"{msg}{shown}"


def field_errors(data: dict[str, Any]) -> dict[str, str]:
    """Validation problems by dotted path (``district.schools``, ``arms.1.floor``, ``arms.1``
    for a whole strategy, ``""`` for the scenario); empty when the scenario is valid."""
    try:
        Scenario.model_validate(data)
    except ValidationError as err:
        out: dict[str, str] = {}
        labels = [str(a.get("label")) if isinstance(a, dict) else "" for a in
                  data.get("arms", []) or []]
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if not key:  # the scenario's own checks name the arm in their message
                m = re.match(r"Value error, arm '([^']+)'", e["msg"])
                if m and m.group(1) in labels:
                    key = f"arms.{labels.index(m.group(1))}"
            key = _shortest_known(key)
            out[key] = f"{out[key]}; {_message(e)}" if key in out else _message(e)
        return out
    return {}


def _shortest_known(key: str) -> str:
    """Pydantic names union branches (``arms.0.floor.float``); the form's control is the
    field itself."""
    return re.sub(r"\.(float|int|str|bool|literal\[[^\]]*\]|list\[[^\]]*\]|function-[a-z-]+)"
                  r"(\..*)?$", "", key)


def errors_under(errors: dict[str, str], prefix: str) -> list[str]:
    """Messages of ``prefix`` and every path below it."""
    return [f"{k}: {v}" if k != prefix else v for k, v in errors.items()
            if k == prefix or k.startswith(prefix + ".")]


def build_scenario(data: dict[str, Any]) -> Scenario:
    """The validated scenario of the form (ScenarioError with the form's first problem)."""
    errors = field_errors(data)
    if errors:
        key, msg = next(iter(errors.items()))
        raise ScenarioError(f"{key or 'scenario'}: {msg}")
    return Scenario.model_validate(data)


# --- TOML -----------------------------------------------------------------------------
def scenario_toml(scenario: Scenario) -> str:
    """The scenario as a TOML file ``plsim run`` accepts: every field that differs from its
    default (absent optional blocks stay absent). The data is written by a TOML writer
    (tomli-w), so a name holding a newline or quotes stays a string; the comment above it
    names the file by its slug only."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    data["name"] = scenario.name
    data["arms"] = [_arm_data(a) for a in scenario.arms]
    stem = slug(scenario.name)
    head = (f"# Scenario built in the plsim app. Run it with:\n"
            f"#   plsim run {stem}.toml --out results/{stem}\n")
    return head + tomli_w.dumps(data)


def slug(name: str, default: str = "scenario") -> str:
    """A file-name stem for ``name`` (letters, digits, ``_ . -``; at most 60 characters;
    never starting with a dot, so never ``..`` or a hidden file): a scenario name or a
    label is data, never a path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._-")[:60].strip("._-")
    return stem or default


def _arm_data(arm: ArmSettings) -> dict[str, Any]:
    out = arm.model_dump(mode="json", exclude_defaults=True)
    out["label"] = arm.label  # a switched-on block with every default stays as ``{}``
    return out


def scenario_from_toml(text: str) -> Scenario:
    """Read back a TOML text (the download) as a validated scenario."""
    return Scenario.model_validate(tomllib.loads(text))
