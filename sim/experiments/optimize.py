"""Many-objective policy search: the Pareto frontier of levers, with NSGA-II (Optuna).

An optimisation spec (TOML, validated) names a base scenario (with overrides
and the candidate arms, as a sweep does), the **levers** — scenario fields
with a range or a list of choices, addressed by dotted path exactly like
sweep parameters — and two or more **objectives** (an outcome to maximise or
minimise, for an arm, year and start band). Optuna's NSGA-II sampler, seeded
and run with one job, proposes candidates a generation at a time; every
candidate is run on the same ``replicates`` (common random numbers: replicate
``r`` has the same students and random streams for every candidate, so
candidates differ by policy, not luck). The runs of a generation go to the
local process pool or a Dask cluster. The shipped strategies (the base
scenario's own arms, ``references``) are run on the same replicates and
placed on the frontier.

Output directory::

    manifest.json                  the resolved spec, base scenario, seeds, versions
    candidates/cand-NNNNNN.parquet one part per finished candidate, written atomically
    references/ref-NNN.parquet     one part per shipped strategy
    candidates.parquet             every candidate: levers, objectives (mean, 95% interval)
    pareto.csv                     the non-dominated candidates
    references.csv                 the shipped strategies, and whether the frontier beats them
    figures/pareto.png             objectives pairwise: candidates, frontier, strategies

Finished parts are kept: ``--resume`` replays the study — the sampler asks
again for every candidate in order, each finished one is told its stored
objectives instead of being run — so a resumed study proposes the same
candidates and ends with the same files as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pydantic import Field, ValidationError, model_validator  # noqa: E402
from scipy import stats  # noqa: E402

import sim  # noqa: E402
from sim.analysis.figures import plain_text  # noqa: E402
from sim.analysis.pareto import dominated_by, non_dominated  # noqa: E402
from sim.analysis.summaries import ALL, METRICS, replicate_means  # noqa: E402
from sim.config.parameters import Strict, Tutoring  # noqa: E402
from sim.config.scenario import (  # noqa: E402
    ScenarioError,
    apply_override,
    format_validation_error,
    read_toml,
    repeated,
    validate_scenario,
)
from sim.engine.outcomes import BANDS  # noqa: E402
from sim.engine.random_streams import stream_key  # noqa: E402
from sim.experiments.runner import pool_context, progress_bar, run_arm  # noqa: E402
from sim.experiments.storage import atomic_write, resuming_into  # noqa: E402
from sim.experiments.sweeps import (  # noqa: E402
    ACCOUNTABILITY,
    OUTCOMES,
    Parameter,
    accountability_outcomes,
    base_data,
    check_paths,
)

PART = re.compile(r"cand-(\d{6})\.parquet")  # a finished candidate's part
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


# --- evaluating -------------------------------------------------------------------------
def run_outcomes(scenario, replicate: int) -> pd.DataFrame:
    """Every arm of one replicate: outcome means per arm x year x start band, with
    ``tutoring_hours`` (hours of tutoring per program student in the year: sessions x the
    arm's session length) and the accountability outcomes (on the all-students rows)."""
    parts = [run_arm(scenario, a, replicate) for a in range(len(scenario.arms))]
    labels = [a.label for a in scenario.arms]
    rows = pd.concat([p["student_years"] for p in parts], ignore_index=True)
    rows["arm"] = pd.Categorical(rows["arm"], categories=labels)
    out = replicate_means(rows, [*METRICS, "tutoring_sessions"])
    hours = {a.label: (a.tutoring.session_hours if a.tutoring is not None
                       else Tutoring.model_fields["session_hours"].default)
             for a in scenario.arms}
    out["tutoring_hours"] = out["tutoring_sessions"] * out["arm"].astype(str).map(hours)
    out["arm"], out["start_band"] = out["arm"].astype(str), out["start_band"].astype(str)
    acc = accountability_outcomes(pd.concat([p["school_years"] for p in parts]),
                                  pd.concat([p["teacher_years"] for p in parts]))
    acc = acc.reset_index().assign(start_band=ALL)
    return out.drop(columns="replicate").merge(acc, on=["arm", "year", "start_band"],
                                               how="left")


def objective_values(spec: OptimizeSpec, frame: pd.DataFrame, arm_default: str,
                     years: int) -> list[float]:
    """The objectives of one replicate's outcome table (NaN where there is no value)."""
    vals = []
    for o in spec.objectives:
        sel = frame[(frame["arm"] == (o.arm or arm_default)) & (frame["year"] == (o.year or years))
                    & (frame["start_band"] == o.band)]
        vals.append(float(sel[o.outcome].iloc[0]) if len(sel) else math.nan)
    return vals


SHARES = ("proficient", "grade_level_share", "mastered_share", "engagement", "window_share",
          "program_active_share", "teacher_exit_rate", "teacher_stress")
COUNTS = ("switches", "tutoring_hours")


def interval(x: np.ndarray, outcome: str = "") -> tuple[float, float, float]:
    """Mean and 95% t-interval of replicate values (NaN ones dropped); the interval of a
    share stays within [0, 1], of a count or hours at or above 0."""
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    lo, hi = mean - half, mean + half
    if outcome in SHARES or outcome in COUNTS:
        lo = max(lo, 0.0)
    if outcome in SHARES:
        hi = min(hi, 1.0)
    return mean, lo, hi


def _task(args) -> tuple[Any, int, list[float]]:
    key, scenario, replicate, spec, arm_default, years = args
    frame = run_outcomes(scenario, replicate)
    return key, replicate, objective_values(spec, frame, arm_default, years)


class Executor:
    """Runs tasks serially, on a local process pool, or on a Dask cluster."""

    def __init__(self, workers: int | None, scheduler: str | None):
        self.pool, self.client = None, None
        if scheduler:
            from distributed import Client

            try:
                self.client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise ScenarioError(f"--scheduler {scheduler}: cannot reach a Dask scheduler "
                                    f"there ({exc}); finished candidates are kept, use "
                                    "--resume") from None
            self.pool = self.client.get_executor(pure=False)
        else:
            n = workers if workers else (os.cpu_count() or 1)
            if n > 1:
                self.pool = ProcessPoolExecutor(max_workers=n, mp_context=pool_context())

    def map_unordered(self, fn: Callable, tasks: list) -> Iterable:
        if self.pool is None:
            for t in tasks:
                yield fn(t)
            return
        pending = {self.pool.submit(fn, t) for t in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        elif self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


# --- the search ------------------------------------------------------------------------
Evaluate = Callable[[list[tuple[int, dict]]], Iterable[tuple[int, list[float] | None, dict]]]


def search(levers: dict[str, Any], maximize: list[bool], evaluate: Evaluate, *,
           population: int, generations: int, seed: int,
           finished: dict[int, dict] | None = None,
           on_result: Callable[[int, dict, list[float] | None, dict], None] | None = None
           ) -> list[dict]:
    """NSGA-II over ``levers`` (name -> Optuna distribution), a generation at a time.

    Args:
        maximize: per objective, whether larger is better.
        evaluate: takes [(trial number, params)] of one generation, yields
            (number, objective values or None for a failed candidate, extra record
            fields) in any order.
        population, generations: candidates per generation, and generations.
        seed: the sampler's seed (with one job the study is reproducible).
        finished: candidates already evaluated, by trial number: records with
            ``params`` and ``values`` (None if failed). They are replayed, not
            evaluated; their params must be what the sampler asks for again.
        on_result: called once per newly evaluated candidate (number, params, values,
            extra), as soon as it is known, e.g. to write it to disk.

    Returns:
        One record per candidate in trial order: number, generation, params, values, and
        the fields ``evaluate`` added.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finished = dict(finished or {})
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=["maximize" if m else "minimize" for m in maximize],
                                sampler=sampler)
    records: list[dict] = []
    for gen in range(generations):
        batch = [study.ask(levers) for _ in range(population)]
        todo = []
        for t in batch:
            old = finished.get(t.number)
            if old is not None and old["params"] != t.params:
                raise ScenarioError(f"stored candidate {t.number} has levers {old['params']} "
                                    f"but the search asks for {t.params} (stored by another "
                                    "version?); cannot resume")
            if old is None:
                todo.append((t.number, dict(t.params)))
        results = {n: (old["values"], {k: v for k, v in old.items()
                                       if k not in ("params", "values")})
                   for n, old in finished.items() if n in {t.number for t in batch}}
        for number, values, extra in evaluate(todo):
            results[number] = (values, extra)
            if on_result is not None:
                on_result(number, dict(batch[number - batch[0].number].params), values, extra)
        for t in batch:  # tell in trial order: the study does not depend on run order
            values, extra = results[t.number]
            if values is None or any(math.isnan(v) for v in values):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, values)
            records.append({"number": t.number, "generation": gen, "params": dict(t.params),
                            "values": values, **extra})
    return records


# --- the command ------------------------------------------------------------------------
def fingerprint(problem: Problem) -> str:
    blob = json.dumps({"spec": problem.spec.model_dump(mode="json"), "base": problem.base,
                       "reference_base": problem.reference_base}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def part_path(out: Path, number: int) -> Path:
    return out / "candidates" / f"cand-{number:06d}.parquet"


def prepare(problem: Problem, out: Path, resume: bool) -> None:
    """Create the output folder with its manifest, or check it for --resume."""
    source, fp = problem.source, fingerprint(problem)
    manifest_path = out / "manifest.json"
    if resuming_into(out, resume, source, "study"):
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            raise ScenarioError(f"{source}: --out {out} holds no readable optimisation "
                                "manifest; cannot resume") from None
        if not isinstance(old, dict) or old.get("fingerprint") != fp:
            name = old.get("spec", {}).get("name") if isinstance(old, dict) else None
            raise ScenarioError(f"{source}: --out {out} holds a different study ({name!r}); "
                                "cannot resume it")
        return
    try:
        for sub in ("candidates", "references"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"{source}: --out {out}: cannot create it ({exc.strerror})") from None
    write_manifest(problem, out, {"finished": False})


def write_manifest(problem: Problem, out: Path, extra: dict) -> dict:
    import optuna

    spec = problem.spec
    manifest = {"plsim_version": sim.__version__, "optuna_version": optuna.__version__,
                "fingerprint": fingerprint(problem), "spec": spec.model_dump(mode="json"),
                "base_scenario": problem.base, "reference_scenario": problem.reference_base,
                "sampler": {"name": "NSGAIISampler", "seed": spec.sampler_seed(),
                            "population_size": spec.population, "n_jobs": 1},
                "candidates": spec.trials, "replicates": spec.replicates,
                "replicate_seeds": {"seed": spec.seed, "spawn_key": "(replicate,)",
                                    "note": "the same replicates for every candidate and "
                                            "strategy (common random numbers)"},
                **extra}
    atomic_write(out / "manifest.json",
                 lambda p: p.write_text(json.dumps(manifest, indent=2, default=str)))
    return manifest


def read_parts(folder: Path, pattern: re.Pattern) -> pd.DataFrame:
    files = sorted(f for f in folder.iterdir() if pattern.fullmatch(f.name)) \
        if folder.is_dir() else []
    if not files:
        return pd.DataFrame()
    try:
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    except (OSError, ValueError) as err:
        raise ScenarioError(f"{folder}: a stored part is unreadable ({type(err).__name__}); "
                            "remove it and --resume") from None


def objective_columns(spec: OptimizeSpec) -> list[str]:
    return [c for o in spec.objectives for c in (o.name, f"{o.name}_low", f"{o.name}_high")]


def objective_row(spec: OptimizeSpec, reps: np.ndarray) -> dict:
    """Per objective: mean, 95% interval and each replicate's value (reps: replicates x
    objectives)."""
    row: dict[str, Any] = {}
    for j, o in enumerate(spec.objectives):
        row[o.name], row[f"{o.name}_low"], row[f"{o.name}_high"] = interval(reps[:, j],
                                                                            o.outcome)
        for r in range(spec.replicates):
            row[f"{o.name}_r{r}"] = float(reps[r, j])
    return row


def _record_row(spec: OptimizeSpec, number: int, params: dict, reps: np.ndarray,
                same_as: int, note: str = "") -> dict:
    """A candidate's row: levers (as shown, and as Optuna parameters ``x:``), objectives,
    ``same_as`` (the earlier candidate with the same levers, or -1) and a ``note`` (why a
    candidate failed)."""
    row: dict[str, Any] = {"candidate": number}
    row.update({lv.name: lv.decode(params[lv.name])[1] for lv in spec.levers})
    row.update({f"x:{lv.name}": float(params[lv.name]) for lv in spec.levers})
    return {**row, **objective_row(spec, reps), "same_as": same_as, "note": note}


def run_optimize(problem: Problem, out: str | Path, workers: int | None = None,
                 scheduler: str | None = None, resume: bool = False,
                 progress: bool = False) -> dict:
    """Run (or finish) a study into ``out``; returns counts and the output files."""
    import optuna

    from sim.district.reference import state_reference

    spec, out = problem.spec, Path(out)
    prepare(problem, out, resume)
    stored = read_parts(out / "candidates", PART)
    finished: dict[int, dict] = {}
    for row in stored.to_dict("records"):
        n = int(row["candidate"])
        params = {lv.name: _param(lv, row[f"x:{lv.name}"]) for lv in spec.levers}
        values = [row[o.name] for o in spec.objectives]
        finished[n] = {"params": params, "values": None if any(map(math.isnan, values))
                       else values, "same_as": int(row["same_as"])}
    sc0 = validate_scenario(problem.base, problem.source)
    state_reference(sc0)  # computed once here; forked workers inherit it
    arm_default, years = sc0.arms[-1].label, sc0.years
    levers = {lv.name: lv.distribution() for lv in spec.levers}
    seen: dict[tuple, int] = {}  # levers -> the candidate that ran them
    for n in sorted(finished):
        if finished[n]["same_as"] < 0:
            seen.setdefault(_key(finished[n]["params"]), n)
    bar = progress_bar(spec.trials, progress, "candidates", initial=len(finished))
    executor = Executor(workers, scheduler)
    counts = {"ran": 0, "reused": 0}

    def evaluate(todo):
        fresh, rows = [], {}
        for number, params in todo:
            k = _key(params)
            if k in seen:  # the same levers again: the same runs, the same numbers
                rows[number] = (params, seen[k])
            else:
                seen[k] = number
                fresh.append((number, params))
        reps = {number: np.full((spec.replicates, len(spec.objectives)), np.nan)
                for number, _ in fresh}
        tasks, by_number = [], dict(fresh)
        for number, params in fresh:
            try:
                scenario = candidate_scenario(problem, params)
            except ScenarioError as err:  # a combination the scenario rejects: a failed trial
                row = _record_row(spec, number, params, reps[number], -1, note=str(err))
                _write_part(out, number, row)
                bar.update()
                yield number, None, {"same_as": -1}
                continue
            tasks += [(number, scenario, r, spec, arm_default, years)
                      for r in range(spec.replicates)]
        left = {number: spec.replicates for number, _ in fresh}
        for number, r, vals in executor.map_unordered(_task, tasks):
            reps[number][r] = vals
            left[number] -= 1
            if left[number] == 0:
                row = _record_row(spec, number, by_number[number], reps[number], -1)
                _write_part(out, number, row)
                counts["ran"] += 1
                bar.update()
                yield number, _values(spec, row), {"same_as": -1}
        for number, (params, original) in rows.items():
            src = pd.read_parquet(part_path(out, original)).iloc[0].to_dict()
            row = {**src, "candidate": number, "same_as": original}
            row.update({f"x:{lv.name}": float(params[lv.name]) for lv in spec.levers})
            _write_part(out, number, row)
            counts["reused"] += 1
            bar.update()
            yield number, _values(spec, row), {"same_as": original}

    try:
        search(levers, [o.maximize for o in spec.objectives], evaluate,
               population=spec.population, generations=spec.generations,
               seed=spec.sampler_seed(), finished=finished)
        refs = run_references(problem, out, executor, arm_default, years)
    finally:
        executor.close()
        bar.close()
    files = write_outputs(problem, out, refs)
    write_manifest(problem, out, {"finished": True, "optuna_version": optuna.__version__,
                                  "files": files})
    return {"candidates": spec.trials, "skipped": len(finished), **counts, "files": files}


def _param(lever: Lever, x: float):
    if not lever.is_range or lever.integer:
        return int(round(x))
    return float(x)


def _key(params: dict) -> tuple:
    return tuple(sorted((k, float(v)) for k, v in params.items()))


def _values(spec: OptimizeSpec, row: dict) -> list[float] | None:
    vals = [float(row[o.name]) for o in spec.objectives]
    return None if any(math.isnan(v) for v in vals) else vals


def _write_part(out: Path, number: int, row: dict) -> None:
    frame = pd.DataFrame([row])
    atomic_write(part_path(out, number), lambda p: frame.to_parquet(p, index=False))


def run_references(problem: Problem, out: Path, executor: Executor, arm_default: str,
                   years: int) -> pd.DataFrame:
    """The shipped strategies (base arms) on the same replicates; cached as parts."""
    spec = problem.spec
    data = json.loads(json.dumps(problem.reference_base))
    data["seed"], data["replicates"] = spec.seed, spec.replicates
    full = validate_scenario(data, problem.source)
    labels = spec.references if spec.references is not None else [a.label for a in full.arms]
    folder = out / "references"
    folder.mkdir(exist_ok=True)
    tasks = []
    for i, label in enumerate(labels):
        if (folder / f"ref-{i:03d}.parquet").exists():
            continue
        arm = next(a for a in full.arms if a.label == label)
        one = validate_scenario({**data, "arms": [arm.model_dump(mode="json")]},
                                problem.source)
        for r in range(spec.replicates):
            tasks.append(((i, label), one, r, _as_reference(spec, label), label, years))
    reps: dict[tuple, np.ndarray] = {}
    left: dict[tuple, int] = {}
    for key, r, vals in executor.map_unordered(_task, tasks):
        reps.setdefault(key, np.full((spec.replicates, len(spec.objectives)), np.nan))[r] = vals
        left[key] = left.get(key, 0) + 1
        if left[key] == spec.replicates:
            i, label = key
            row = {"strategy": label, **objective_row(spec, reps[key])}
            frame = pd.DataFrame([row])
            atomic_write(folder / f"ref-{i:03d}.parquet",
                         lambda p, f=frame: f.to_parquet(p, index=False))
    return read_parts(folder, re.compile(r"ref-(\d{3})\.parquet"))


def _as_reference(spec: OptimizeSpec, label: str) -> OptimizeSpec:
    """The spec with every objective read from the strategy's own arm."""
    objs = [o.model_copy(update={"arm": label}) for o in spec.objectives]
    return spec.model_copy(update={"objectives": objs})


# --- outputs ----------------------------------------------------------------------------
def write_outputs(problem: Problem, out: Path, refs: pd.DataFrame) -> list[str]:
    """candidates.parquet, pareto.csv, references.csv, figures/pareto.png (atomically)."""
    spec = problem.spec
    cands = read_parts(out / "candidates", PART).sort_values("candidate", ignore_index=True)
    names = [o.name for o in spec.objectives]
    maximize = [o.maximize for o in spec.objectives]
    front_mask = non_dominated(cands[names].to_numpy(float), maximize)
    cands.insert(1, "pareto", front_mask)
    atomic_write(out / "candidates.parquet", lambda p: cands.to_parquet(p, index=False))
    cols = ["candidate", *[lv.name for lv in spec.levers], *objective_columns(spec)]
    front = cands.loc[front_mask, cols].sort_values(names[0], ascending=not maximize[0],
                                                    kind="stable", ignore_index=True)
    atomic_write(out / "pareto.csv", lambda p: front.to_csv(p, index=False,
                                                           float_format="%.6g"))
    files = ["candidates.parquet", "pareto.csv"]
    if len(refs):
        pts = front[names].to_numpy(float)
        refs = refs.copy()
        beaten = [dominated_by(r, pts, maximize) for r in refs[names].to_numpy(float)]
        refs["dominated_by"] = [" ".join(str(int(c)) for c in front["candidate"][b])
                                for b in beaten]
        refs = refs[["strategy", *objective_columns(spec), "dominated_by"]]
        atomic_write(out / "references.csv", lambda p: refs.to_csv(p, index=False,
                                                                  float_format="%.6g"))
        files.append("references.csv")
    (out / "figures").mkdir(exist_ok=True)
    pareto_figure(spec, cands, front, refs, out / "figures" / "pareto.png")
    return [*files, "figures/pareto.png"]


@plain_text
def pareto_figure(spec: OptimizeSpec, cands: pd.DataFrame, front: pd.DataFrame,
                  refs: pd.DataFrame, path: Path) -> Path:
    """Objectives pairwise: every candidate (grey), the non-dominated ones (coloured by
    the next objective, with 95% intervals) and the shipped strategies (labelled)."""
    objs = spec.objectives
    pairs = [(i, j) for i in range(len(objs)) for j in range(i + 1, len(objs))]
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(5.2 * ncols, 4.4 * nrows))
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        a, b = objs[i].name, objs[j].name
        ax.scatter(cands[a], cands[b], s=10, color="0.75", label="candidates")
        other = next((o.name for k, o in enumerate(objs) if k not in (i, j)), None)
        ax.errorbar(front[a], front[b], xerr=_err(front, a), yerr=_err(front, b), fmt="none",
                    ecolor="tab:blue", alpha=0.35, lw=0.8)
        sc = ax.scatter(front[a], front[b], s=28, c=front[other] if other else "tab:blue",
                        cmap="viridis", edgecolor="k", lw=0.4, zorder=3, label="non-dominated")
        if other:
            fig.colorbar(sc, ax=ax, label=other)
        if len(refs):
            ax.scatter(refs[a], refs[b], marker="X", s=70, color="tab:red", edgecolor="k",
                       zorder=4, label="shipped strategies")
            for r in refs.itertuples():
                ax.annotate(r.strategy, (getattr(r, a), getattr(r, b)), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
        _limits(ax, [cands, refs], a, b)
        ax.set_xlabel(f"{a} ({objs[i].direction[:3]})")
        ax.set_ylabel(f"{b} ({objs[j].direction[:3]})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{spec.name}: {len(cands)} candidates x {spec.replicates} replicates; "
                 f"{len(front)} non-dominated (95% intervals across replicates)", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def _limits(ax, frames: list[pd.DataFrame], a: str, b: str) -> None:
    """Axis limits from the points (not the intervals, which may reach far out)."""
    for name, setter in ((a, ax.set_xlim), (b, ax.set_ylim)):
        v = pd.concat([f[name] for f in frames if len(f)]).to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            pad = 0.08 * (v.max() - v.min()) or 0.05 * (abs(v.max()) or 1)
            setter(v.min() - pad, v.max() + pad)


def _err(frame: pd.DataFrame, name: str):
    lo, hi = frame[f"{name}_low"], frame[f"{name}_high"]
    if lo.isna().all():
        return None
    return np.vstack([(frame[name] - lo).fillna(0), (hi - frame[name]).fillna(0)])


def format_front(problem: Problem, out: Path) -> str:
    """The non-dominated set and the shipped strategies as a plain table."""
    front = pd.read_csv(out / "pareto.csv")
    spec = problem.spec
    lines = [f"{len(front)} non-dominated candidate(s) of {spec.trials} "
             f"(objectives: " + ", ".join(f"{o.direction} {o.name}" for o in spec.objectives)
             + "; mean [95% interval] over replicates):"]
    shown = ["candidate", *[lv.name for lv in spec.levers]]
    table = front[shown].copy()
    for o in spec.objectives:
        table[o.name] = [_ci(r, o.name) for r in front.to_dict("records")]
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    ref_path = out / "references.csv"
    if ref_path.exists():
        refs = pd.read_csv(ref_path, keep_default_na=False)
        t = refs[["strategy"]].copy()
        for o in spec.objectives:
            t[o.name] = [_ci(r, o.name) for r in refs.to_dict("records")]
        t["beaten by"] = [x or "-" for x in refs["dominated_by"].astype(str)]
        lines += ["", "Shipped strategies (beaten by: non-dominated candidates better on every "
                      "objective):", t.to_string(index=False)]
    return "\n".join(lines)


def _ci(row: dict, name: str) -> str:
    m, lo, hi = (row[name], row.get(f"{name}_low"), row.get(f"{name}_high"))
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        lo = hi = math.nan
    return f"{m:.3g}" if math.isnan(lo) else f"{m:.3g} [{lo:.3g}, {hi:.3g}]"
