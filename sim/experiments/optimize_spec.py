"""Optimisation specs: levers, objectives and the validated problem (``plsim optimize``).

An optimisation spec (TOML, validated) names a base scenario (with overrides
and the candidate arms, as a sweep does), the **levers** -- scenario fields
with a range or a list of choices, addressed by dotted path exactly like
sweep parameters -- and two or more **objectives** (an outcome to maximise or
minimise, for an arm, year and start band). ``load_spec`` validates it, with
the scenario at every lever's ends; ``candidate_scenario`` gives the scenario
of one candidate. The search and its runs are ``sim.experiments.optimize``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from sim.analysis.summaries import ALL
from sim.config.parameters import Strict
from sim.config.scenario import (
    ScenarioError,
    apply_override,
    format_validation_error,
    read_toml,
    repeated,
    validate_scenario,
)
from sim.engine.outcomes import BANDS
from sim.engine.random_streams import stream_key
from sim.experiments.sweeps import ACCOUNTABILITY, OUTCOMES, Parameter, base_data, check_paths

RESERVED = {"seed": "set the spec's own seed instead (every replicate's streams derive from it)",
            "replicates": "set the spec's own replicates instead"}
OBJECTIVE_OUTCOMES = (*OUTCOMES, "tutoring_hours")
Scalar = float | int | str | bool


class Lever(Parameter):
    """A scenario field the search may set: a range [low, high] or a list of choices.

    Beyond a sweep parameter, a choice may be a table (its fields are set inside the
    section at ``path``, which is created if absent); ``off`` adds a choice, so
    labelled, that leaves the section out (e.g. no gradual floor); ``also`` names
    further fields that take the same value (a floor start that is also the gradual
    floor's start). Sections turned off stay off whatever other levers set in them.
    """

    name: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$",
                             description="column name in the outputs (default: the path)")
    values: list[Scalar | dict[str, Any]] | None = None
    labels: list[str] | None = Field(None, description="names of the choices (needed for "
                                                       "tables)")
    off: str | None = Field(None, min_length=1, description="label of an extra choice that "
                                                             "leaves the section out")
    also: list[str] = Field(default_factory=list, description="further paths set to the same "
                                                              "value")

    @model_validator(mode="after")
    def _choices(self):
        if self.name is None:
            self.name = self.path
        if self.is_range:
            if self.labels is not None or self.off is not None:
                raise ValueError(f"lever '{self.name}': labels and off go with values, "
                                 "not with a range")
            if self.integer and math.floor(self.high) < math.ceil(self.low):
                raise ValueError(f"lever '{self.name}': no whole number between low and high")
            return self
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"lever '{self.name}': {len(self.labels)} labels for "
                             f"{len(self.values)} values")
        if self.labels is None and any(isinstance(v, dict) for v in self.values):
            raise ValueError(f"lever '{self.name}': table values need labels")
        names = self.choice_labels()
        if len(set(names)) != len(names):
            raise ValueError(f"lever '{self.name}': choices repeated: {names}")
        return self

    def choices(self) -> list[Any]:
        """The values a choice lever can take (None = off)."""
        return ([None] if self.off is not None else []) + list(self.values or [])

    def choice_labels(self) -> list[str]:
        labels = self.labels or [str(v) for v in self.values]
        return ([self.off] if self.off is not None else []) + list(labels)

    def distribution(self):
        """The Optuna distribution of the lever (choices by index)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if not self.is_range:
            return CategoricalDistribution(list(range(len(self.choices()))))
        if self.integer:
            return IntDistribution(math.ceil(self.low), math.floor(self.high))
        return FloatDistribution(self.low, self.high)

    def decode(self, param) -> tuple[Any, Scalar]:
        """(scenario value, value shown in the outputs) of an Optuna parameter."""
        if not self.is_range:
            i = int(param)
            return self.choices()[i], self.choice_labels()[i]
        v = int(param) if self.integer else float(param)
        return v, v

    def extremes(self) -> list:
        """Optuna parameters at the ends of the lever (for validation)."""
        if not self.is_range:
            return list(range(len(self.choices())))
        if self.integer:
            return [math.ceil(self.low), math.floor(self.high)]
        return [self.low, self.high]


class Objective(Strict):
    """An outcome to maximise or minimise, for one arm, year and start band."""

    name: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    outcome: str = Field(min_length=1, description="an outcome: " + ", ".join(
        OBJECTIVE_OUTCOMES))
    direction: Literal["maximize", "minimize"]
    arm: str | None = Field(None, description="candidate arm (default: the last)")
    year: int | None = Field(None, ge=1, description="year (default: the last)")
    band: str = Field(ALL, description="start band: " + ", ".join([ALL, *BANDS]))

    @model_validator(mode="after")
    def _known(self):
        if self.name is None:
            self.name = self.outcome
        if self.outcome not in OBJECTIVE_OUTCOMES:
            raise ValueError(f"objective '{self.name}': unknown outcome {self.outcome!r}; "
                             f"allowed: {', '.join(OBJECTIVE_OUTCOMES)}")
        if self.band not in (ALL, *BANDS):
            raise ValueError(f"objective '{self.name}': unknown band {self.band!r}; allowed: "
                             f"{', '.join([ALL, *BANDS])}")
        if self.outcome in ACCOUNTABILITY and self.band != ALL:
            raise ValueError(f"objective '{self.name}': {self.outcome} is recorded for "
                             f"'{ALL}' only")
        return self

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


class OptimizeSpec(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: str = Field(min_length=1, description="base scenario file, relative to this file")
    overrides: list[str] = Field(default_factory=list, description="dotted.path=value on the "
                                                                   "base")
    arms: list[dict[str, Any]] | None = Field(None, description="the candidate's arms (default: "
                                                                "the base's)")
    references: list[str] | None = Field(None, description="base arms run as shipped "
                                                           "strategies (default: all)")
    levers: list[Lever] = Field(min_length=1)
    objectives: list[Objective] = Field(min_length=2, max_length=6)
    population: int = Field(16, ge=2, le=1000, description="candidates per generation")
    generations: int = Field(6, ge=1, le=1000)
    replicates: int = Field(3, ge=1, le=100, description="replicates per candidate (common "
                                                         "random numbers)")
    seed: int = Field(0, ge=0, lt=2**63)
    refine_budget: int | None = Field(None, ge=0, le=100_000, description="extra candidate- "
                                      "or strategy-replicate runs spent re-running points "
                                      "whose place on the front is undecided (default: one "
                                      "generation's runs, population x replicates; 0: none)")
    refine_max_replicates: int | None = Field(None, ge=1, le=100, description="replicates a "
                                              "re-run point may reach (default: 4 x "
                                              "replicates, at most 100)")

    @model_validator(mode="after")
    def _unique(self):
        for what, names in (("levers", [lv.name for lv in self.levers]),
                            ("lever paths", [lv.path for lv in self.levers]),
                            ("objectives", [o.name for o in self.objectives])):
            dupes = repeated(names)
            if dupes:
                raise ValueError(f"{what} repeated: {', '.join(dupes)}")
        clash = sorted({lv.name for lv in self.levers} & {o.name for o in self.objectives})
        if clash:
            raise ValueError(f"a lever and an objective share the name {clash[0]!r}; "
                             "give one of them another name (they are columns of one table)")
        return self

    @property
    def trials(self) -> int:
        return self.population * self.generations

    def sampler_seed(self) -> int:
        """The NSGA-II sampler's seed, derived from the spec seed (not the runs' streams)."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(stream_key("optimizer"),))
        return int(seq.generate_state(1)[0])


# --- reading ------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A validated spec with its base data.

    Attributes:
        spec: the spec.
        base: the candidates' scenario data (base file, overrides, the spec's arms).
        reference_base: the base scenario data with its own arms (the strategies).
        source: the spec's file name, for messages.
    """

    spec: OptimizeSpec
    base: dict
    reference_base: dict
    source: str


def load_spec(path: str | Path) -> Problem:
    """Read and validate an optimisation spec; ScenarioError (naming the file, field and
    what is allowed) on bad input. The scenario at every lever's ends is validated."""
    path = Path(path)
    source = str(path)
    try:
        spec = OptimizeSpec.model_validate(read_toml(path))
    except ValidationError as err:
        raise ScenarioError(format_validation_error(source, err)) from None
    base = base_data(spec, path)
    reference_base = base_data(spec.model_copy(update={"arms": None}), path)
    paths = [p for lv in spec.levers for p in (lv.path, *lv.also)]
    check_paths(paths, source, RESERVED, "lever")
    problem = Problem(spec=spec, base=base, reference_base=reference_base, source=source)
    first = {lv.name: lv.extremes()[0] for lv in spec.levers}
    candidate_scenario(problem, first)
    for lv in spec.levers:
        for x in lv.extremes()[1:]:
            candidate_scenario(problem, {**first, lv.name: x})
    sc = validate_scenario(base, source)
    arms = [a.label for a in sc.arms]
    for o in spec.objectives:
        if o.arm is not None and o.arm not in arms:
            raise ScenarioError(f"{source}: objectives: '{o.name}': arm {o.arm!r} is not a "
                                f"candidate arm; arms: {', '.join(arms)}")
        if o.year is not None and o.year > sc.years:
            raise ScenarioError(f"{source}: objectives: '{o.name}': year {o.year} is past the "
                                f"scenario's {sc.years} year(s)")
    ref_arms = [a["label"] for a in reference_base["arms"]]
    for label in spec.references or []:
        if label not in ref_arms:
            raise ScenarioError(f"{source}: references: no arm {label!r} in {spec.base}; "
                                f"arms: {', '.join(ref_arms)}")
    return problem


def candidate_data(problem: Problem, params: dict[str, Any]) -> dict:
    """The scenario data of one candidate (Optuna parameters by lever name)."""
    spec = problem.spec
    data = json.loads(json.dumps(problem.base))
    off = []
    for lv in spec.levers:
        value, _ = lv.decode(params[lv.name])
        for p in (lv.path, *lv.also):
            parts = p.split(".")
            if value is None:
                off.append(parts)
            elif isinstance(value, dict):
                for k, v in value.items():
                    apply_override(data, [*parts, k], v, problem.source)
            else:
                apply_override(data, parts, value, problem.source)
    for parts in off:
        apply_override(data, parts, None, problem.source)
    data["seed"], data["replicates"] = spec.seed, spec.replicates
    return data


def candidate_scenario(problem: Problem, params: dict[str, Any]):
    """The validated scenario of one candidate; ScenarioError names the lever values."""
    shown = ", ".join(f"{lv.name}={lv.decode(params[lv.name])[1]!r}"
                      for lv in problem.spec.levers)
    try:
        data = candidate_data(problem, params)
    except ScenarioError as err:
        raise ScenarioError(f"{err} (lever values {shown})") from None
    return validate_scenario(data, f"{problem.source} (lever values {shown})")


def objective_columns(spec: OptimizeSpec) -> list[str]:
    return [c for o in spec.objectives for c in (o.name, f"{o.name}_low", f"{o.name}_high")]
