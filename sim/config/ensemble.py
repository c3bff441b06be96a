"""Ensemble files: plausible parameter sets, one list per parameter (``plsim calibrate
--ensemble`` writes them; ``plsim run --ensemble`` and ``plsim validate --ensemble`` read them).

The file is TOML data. Each top-level key is a parameter's dotted name (quoted, as
``"learning.base_rate"``) holding a list with one value per member; every list has the
same length. A table ``[about]`` says how the ensemble was made (never read back as a
parameter). Member ``i`` is the parameter set of the i-th value of every list: it
stands in for the fitted parameters file (``sim/config/fitted.toml``) — the fitted
values of parameters the file does not name still apply, and a scenario file's own
values still win.

Bad input (not TOML, an unknown parameter, lists of unequal length, a value that is not
a number) raises :class:`~sim.config.scenario.ScenarioError` naming the file and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config.scenario import (
    MAX_SHOWN,
    PARAMETER_SECTIONS,
    Scenario,
    ScenarioError,
    printable,
    read_toml,
    shorten,
)

ABOUT = "about"  # the table that says how the ensemble was made
MAX_MEMBERS = 10_000  # far above any use; keeps a hostile file from asking for millions of runs


@dataclass
class Ensemble:
    """Members as parameter sets.

    Args:
        values: parameter (dotted name) -> one value per member.
        about: how the ensemble was made (the file's ``[about]`` table).
        source: the file it was read from.
    """

    values: dict[str, list[float]]
    about: dict[str, Any] = field(default_factory=dict)
    source: str = "<ensemble>"

    @property
    def size(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0

    def member(self, i: int) -> dict[str, float]:
        """Member ``i`` (0-based) as dotted name -> value."""
        return {name: vs[i] for name, vs in self.values.items()}

    def member_tables(self, i: int) -> dict[str, dict[str, float]]:
        """Member ``i`` as parameter tables (``{"learning": {"base_rate": ...}}``)."""
        tables: dict[str, dict[str, float]] = {}
        for name, v in self.member(i).items():
            section, key = name.split(".")
            tables.setdefault(section, {})[key] = v
        return tables


def _name(name: str) -> str:
    """A key of the file as it reads, one line, cut short (a key is data)."""
    text = printable(name)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def parameter_type(name: str) -> type | None:
    """``int`` or ``float`` for a known ``section.key`` parameter, None for an unknown one."""
    parts = name.split(".")
    if len(parts) != 2 or parts[0] not in PARAMETER_SECTIONS:
        return None
    fields = Scenario.model_fields[parts[0]].annotation.model_fields
    if parts[1] not in fields:
        return None
    kind = fields[parts[1]].annotation
    return kind if kind in (int, float) else None


def read_ensemble(path: str | Path) -> Ensemble:
    """An ensemble file, checked (see the module); ScenarioError names the file and field."""
    source = str(path)
    data = read_toml(path)
    about = data.pop(ABOUT, {})
    if not isinstance(about, dict):
        raise ScenarioError(f"{source}: {ABOUT}: must be a table (how the ensemble was made)")
    if not data:
        raise ScenarioError(f"{source}: no parameters: an ensemble file holds one list per "
                            'parameter, e.g. "learning.base_rate" = [0.5, 0.55]')
    values: dict[str, list[float]] = {}
    for name, raw in data.items():
        values[name] = _column(source, name, raw)
    sizes = {len(v) for v in values.values()}
    if len(sizes) > 1:
        first = next(iter(values))
        odd = next(n for n, v in values.items() if len(v) != len(values[first]))
        raise ScenarioError(f"{source}: {_name(odd)}: {len(values[odd])} values, but "
                            f"{_name(first)} has {len(values[first])}: every parameter "
                            "needs one value per member")
    return Ensemble(values, about, source)


def _column(source: str, name: str, raw: Any) -> list[float]:
    kind = parameter_type(name)
    if kind is None:
        raise ScenarioError(f"{source}: {_name(name)}: not a numeric model parameter "
                            "(expected section.key, e.g. learning.base_rate, of a section "
                            f"{', '.join(PARAMETER_SECTIONS)})")
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{source}: {_name(name)}: expected a non-empty list of "
                            "numbers, one per member")
    if len(raw) > MAX_MEMBERS:
        raise ScenarioError(f"{source}: {_name(name)}: {len(raw)} members (at most "
                            f"{MAX_MEMBERS})")
    out = []
    for i, v in enumerate(raw):
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (kind is int and float(v) != int(v)):
            what = "a whole number" if kind is int else "a finite number"
            raise ScenarioError(f"{source}: {_name(name)}[{i}]: expected {what}, got "
                                f"{shorten(v)}")
        out.append(int(v) if kind is int else float(v))
    return out
