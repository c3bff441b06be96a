"""Scenario sweeps: designs over scenario fields, run locally or on Dask, streamed to disk.

A sweep file (TOML, validated) names a base scenario, the fields to vary by
dotted path (ranges or value lists), a design (``grid``, ``random``,
``latin``, ``sobol``, ``morris`` — the last three sampled with SALib),
samples, replicates, a seed and the outcomes to record.

A *run* is one design sample x one replicate: every arm of the scenario for
that replicate. Its random streams come from ``SeedSequence(sweep seed,
spawn_key=(replicate,))`` (common random numbers across samples, the
default) or ``(run id,)``, so a run gives the same outcomes whichever
process, pool or cluster computes it.

Output directory::

    manifest.json         the resolved sweep, its design and the SALib problem
    experiments.parquet   one row per run: run id, sample, replicate, seed, values
    outcomes/run-NNNNNN.parquet   one part per finished run, written atomically
    .seals/run-NNNNNN.json        its checksum, written after it (``storage.Seals``)

With ``--ensemble FILE`` every run is also run under each member of a parameter
ensemble (``sim.experiments.sweep_ensemble``: its parts, ``ensemble/``, and the
per-sample table ``sample_summary.csv``); the ensemble's values are part of the
sweep's fingerprint, so a resume with another ensemble is refused.

``read_outcomes(DIR)`` reads the whole sweep (every part's checksum verified).
Finished parts are never rewritten: ``--resume`` skips them (a damaged or
foreign one is redone, with a warning), so an interrupted sweep loses only the
runs in flight.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

import sim
from sim.analysis.summaries import METRICS, replicate_means
from sim.config.parameters import Strict
from sim.config.scenario import (
    ScenarioError,
    apply_override,
    format_validation_error,
    merge_under,
    parse_override,
    read_parameters,
    read_scenario,
    read_toml,
    repeated,
    validate_scenario,
)
from sim.experiments.executor import map_unordered
from sim.experiments.output import git_commit
from sim.experiments.run_parts import differences
from sim.experiments.runner import progress_bar
from sim.experiments.storage import Seals, atomic_write, resuming_into

PART = re.compile(r"run-(\d{6})\.parquet")  # a finished run's outcome part
Design = Literal["grid", "random", "latin", "sobol", "morris"]
RESERVED = {"seed": "set the sweep's own seed instead (each run's streams derive from it)",
            "replicates": "set the sweep's own replicates instead (each run is one replicate)"}
# accountability outcomes, per arm x year (recorded on the "all students" rows)
ACCOUNTABILITY = ("window_share", "program_active_share", "teacher_exit_rate",
                  "teacher_stress", "va_true_corr")
OUTCOMES = (*METRICS, *ACCOUNTABILITY)  # recorded per arm x year x start band


class Parameter(Strict):
    """One scenario field to vary: a range [low, high] or a list of values."""

    path: str = Field(min_length=1, description="dotted path into the scenario")
    low: float | None = None
    high: float | None = None
    values: list[float | int | str | bool] | None = None
    integer: bool = Field(False, description="round range values to whole numbers")
    levels: int = Field(3, ge=2, le=100, description="grid points of a range (grid design)")

    @model_validator(mode="after")
    def _range_or_values(self):
        has_range = self.low is not None or self.high is not None
        if has_range == (self.values is not None):
            raise ValueError(f"parameter '{self.path}': give either low and high, or values")
        if self.values is not None and not self.values:
            raise ValueError(f"parameter '{self.path}': values must not be empty")
        if has_range:
            if self.low is None or self.high is None:
                raise ValueError(f"parameter '{self.path}': give both low and high")
            if not self.low < self.high:
                raise ValueError(f"parameter '{self.path}': low ({self.low}) must be below "
                                 f"high ({self.high})")
        return self

    @property
    def is_range(self) -> bool:
        return self.values is None

    def bounds(self) -> list[float]:
        """Bounds in the design's unit space (values lists map to their index)."""
        return [self.low, self.high] if self.is_range else [0.0, float(len(self.values))]

    def value(self, x: float):
        """The scenario value for a design coordinate ``x``."""
        if not self.is_range:
            return self.values[min(int(np.floor(x)), len(self.values) - 1)]
        return int(round(x)) if self.integer else float(x)


class Sweep(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: str = Field(min_length=1, description="base scenario file, relative to the sweep file")
    overrides: list[str] = Field(default_factory=list, description="dotted.path=value on the base")
    arms: list[dict[str, Any]] | None = Field(None, description="replace the base's arms")
    parameters: list[Parameter] = Field(min_length=1)
    design: Design = "latin"
    samples: int = Field(8, ge=1, le=1_000_000, description="design samples (sobol: base N, a "
                                                             "power of 2; morris: trajectories)")
    replicates: int = Field(1, ge=1, le=1000)
    seed: int = Field(0, ge=0, lt=2**63)
    morris_levels: int = Field(4, ge=2, le=100, description="grid levels of a Morris design")
    common_random_numbers: bool = Field(True, description="every sample uses the same "
                                                          "replicate streams")
    outcomes: list[str] = Field(default_factory=lambda: list(OUTCOMES))

    @model_validator(mode="after")
    def _consistent(self):
        paths = [p.path for p in self.parameters]
        dupes = repeated(paths)
        if dupes:
            raise ValueError(f"parameters repeated: {', '.join(dupes)}")
        unknown = [o for o in self.outcomes if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcomes {unknown}; allowed: {', '.join(OUTCOMES)}")
        if self.design in ("sobol", "morris", "latin", "random"):
            bad = [p.path for p in self.parameters if p.is_range and p.integer and
                   p.high - p.low < 1]
            if bad:
                raise ValueError(f"integer ranges narrower than 1: {bad}")
        if self.design == "sobol" and (self.samples < 2 or self.samples & (self.samples - 1)):
            raise ValueError(f"sobol samples must be a power of 2, at least 2 (got "
                             f"{self.samples})")
        if self.design == "morris" and self.samples < 2:
            raise ValueError(f"morris samples (trajectories) must be at least 2 (got "
                             f"{self.samples})")
        return self

    def problem(self) -> dict:
        """The SALib problem: names and bounds of the varied fields."""
        return {"num_vars": len(self.parameters), "names": [p.path for p in self.parameters],
                "bounds": [p.bounds() for p in self.parameters]}


# --- reading ------------------------------------------------------------------------
def load_sweep(path: str | Path) -> tuple[Sweep, Any]:
    """Read and validate a sweep file and its base scenario; ScenarioError on bad input.

    Every design point is checked against the scenario schema before anything runs.
    """
    path = Path(path)
    data = read_toml(path)
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(str(path), err)) from None
    base = base_data(sweep, path)
    check_paths([p.path for p in sweep.parameters], str(path))
    design = design_matrix(sweep)
    for row in unique_rows(design):
        scenario_for(sweep, base, row, str(path))
    return sweep, base


def base_data(sweep: Sweep, sweep_path: Path, member: dict | None = None,
              source: str | None = None) -> dict:
    """The base scenario as data, with the sweep's overrides and arms applied.

    ``member``: parameter tables of an ensemble member, standing in for the fitted set's
    (the base file's own values, the overrides and the varied fields still win);
    ``source``: how errors name it.
    """
    base_path = (sweep_path.parent / sweep.base).resolve()
    if not base_path.is_file():
        raise ScenarioError(f"{sweep_path}: base: no scenario file at {base_path}")
    data = (read_scenario(base_path) if member is None else
            merge_under(merge_under(read_parameters(), member), read_toml(base_path)))
    source = source or f"{sweep_path} (base {sweep.base})"
    for text in sweep.overrides:
        apply_override(data, *parse_override(text, source), source)
    if sweep.arms is not None:
        data["arms"] = sweep.arms
    validate_scenario(data, source)
    return data


def scenario_for(sweep: Sweep, base: dict, row: np.ndarray, source: str = "<sweep>"):
    """The validated scenario of one design point."""
    data = json.loads(json.dumps(base))  # a deep copy of plain data
    for p, x in zip(sweep.parameters, row, strict=True):
        try:
            apply_override(data, p.path.split("."), p.value(x), source)
        except ScenarioError as err:
            detail = str(err).removeprefix(f"{source}: ")
            raise ScenarioError(f"{source}: parameter '{p.path}': {detail}") from None
    data["seed"], data["replicates"] = sweep.seed, 1
    return validate_scenario(data, f"{source} (parameter values {_describe(sweep, row)})")


def check_paths(paths: list[str], source: str, reserved: dict[str, str] = RESERVED,
                what: str = "parameter") -> None:
    """A varied path must name a field of the scenario schema (not invent a section) and
    not one of the ``reserved`` fields; ScenarioError names the ``what`` (parameter, lever)."""
    from sim.config.scenario import Scenario

    for path in paths:
        if path in reserved:
            raise ScenarioError(f"{source}: {what} '{path}': {reserved[path]}")
        node: Any = Scenario
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part == "arms" and i == 0:
                node = "arms"
                continue
            if node == "arms":  # an arm by index or label
                node = sim.config.parameters.ArmSettings
                continue
            fields = getattr(node, "model_fields", None)
            if fields is None or part not in fields:
                raise ScenarioError(f"{source}: {what} '{path}': '{part}' is not a "
                                    "scenario field")
            node = _field_model(fields[part].annotation)


def _field_model(annotation):
    for t in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(t, type) and hasattr(t, "model_fields"):
            return t
    return None


def _describe(sweep: Sweep, row) -> str:
    return ", ".join(f"{p.path}={p.value(x)!r}" for p, x in zip(sweep.parameters, row,
                                                               strict=True))


def unique_rows(design: np.ndarray) -> Iterator[np.ndarray]:
    """The design's rows without repeats (to 12 decimals), in order."""
    seen = set()
    for row in design:
        key = tuple(np.round(row, 12))
        if key not in seen:
            seen.add(key)
            yield row


# --- designs ------------------------------------------------------------------------
def design_matrix(sweep: Sweep) -> np.ndarray:
    """Design points in unit space, one row per sample (SALib for latin/sobol/morris)."""
    problem = sweep.problem()
    rng = np.random.default_rng(np.random.SeedSequence(sweep.seed, spawn_key=(2**31,)))
    if sweep.design == "grid":
        axes = [np.linspace(p.low, p.high, p.levels) if p.is_range
                else np.arange(len(p.values)) + 0.5 for p in sweep.parameters]
        return np.array(list(itertools.product(*axes)), float)
    if sweep.design == "random":
        lo, hi = np.array(problem["bounds"]).T
        return lo + (hi - lo) * rng.random((sweep.samples, len(lo)))
    seed = int(rng.integers(2**31))
    if sweep.design == "latin":
        from SALib.sample import latin
        return latin.sample(problem, sweep.samples, seed=seed)
    if sweep.design == "sobol":
        from SALib.sample import sobol
        return sobol.sample(problem, sweep.samples, calc_second_order=False, seed=seed)
    from SALib.sample import morris
    return morris.sample(problem, sweep.samples, num_levels=sweep.morris_levels, seed=seed)


def experiments(sweep: Sweep, design: np.ndarray) -> pd.DataFrame:
    """One row per run: run id, sample, replicate, stream key, values and raw coordinates."""
    rows = []
    for i, row in enumerate(design):
        for r in range(sweep.replicates):
            run_id = i * sweep.replicates + r
            rec = {"run_id": run_id, "sample": i, "replicate": r,
                   "stream_key": r if sweep.common_random_numbers else run_id,
                   "seed": sweep.seed}
            for p, x in zip(sweep.parameters, row, strict=True):
                rec[p.path] = p.value(x)
                rec[f"x:{p.path}"] = float(x)
            rows.append(rec)
    df = pd.DataFrame(rows)
    for p in sweep.parameters:  # mixed value lists would not be one Parquet type
        if not p.is_range and len({type(v) for v in p.values}) > 1:
            df[p.path] = df[p.path].astype(str)
    return df


# --- running ------------------------------------------------------------------------
def run_one(scenario, stream_key: int, run_id: int, outcomes: list[str]) -> pd.DataFrame:
    """Every arm of one run; its outcomes per arm x year x start band."""
    from sim.experiments.runner import run_arm

    parts = [run_arm(scenario, a, stream_key) for a in range(len(scenario.arms))]
    labels = [a.label for a in scenario.arms]
    rows = pd.concat([p["student_years"] for p in parts], ignore_index=True)
    rows["arm"] = pd.Categorical(rows["arm"], categories=labels)
    out = replicate_means(rows, [o for o in outcomes if o in METRICS])
    out = out.drop(columns="replicate")
    out.insert(0, "run_id", run_id)
    out["arm"] = out["arm"].astype(str)
    out["start_band"] = out["start_band"].astype(str)
    wanted = [o for o in outcomes if o in ACCOUNTABILITY]
    if wanted:
        acc = accountability_outcomes(pd.concat([p["school_years"] for p in parts]),
                                      pd.concat([p["teacher_years"] for p in parts]))
        acc = acc[wanted].reset_index().assign(start_band="all students")
        out = out.merge(acc, on=["arm", "year", "start_band"], how="left")
    return out


def accountability_outcomes(schools: pd.DataFrame, teachers: pd.DataFrame) -> pd.DataFrame:
    """Per arm x year: shares of schools with a window and with the program, teachers'
    exit rate and stress, and the correlation of value-added estimates with true effects."""
    keys = ["arm", "year"]
    s = schools.assign(window=schools.test_prep_weeks > 0).groupby(keys, observed=True).agg(
        window_share=("window", "mean"), program_active_share=("program_active", "mean"))
    t = teachers.groupby(keys, observed=True).agg(teacher_exit_rate=("exited", "mean"),
                                                  teacher_stress=("stress", "mean"))
    linked = teachers.dropna(subset=["va_estimate"])
    corr = linked.groupby(keys, observed=True)[["va_estimate", "true_effect"]].apply(
        lambda g: g.va_estimate.corr(g.true_effect)).rename("va_true_corr")
    out = s.join(t).join(corr)
    out.index = out.index.set_levels(out.index.levels[0].astype(str), level=0)
    return out.astype(float)


def _run_task(task) -> tuple[int, pd.DataFrame]:
    scenario, stream_key, run_id, outcomes = task
    return run_id, run_one(scenario, stream_key, run_id, outcomes)


def part_path(out: Path, run_id: int) -> Path:
    return out / "outcomes" / f"run-{run_id:06d}.parquet"


def seals(out: Path, fingerprint: str | None = None) -> Seals:
    """The sweep's checksum records (fingerprint read from its manifest by default)."""
    if fingerprint is None:
        try:
            fingerprint = json.loads((out / "manifest.json").read_text())["fingerprint"]
        except (OSError, ValueError, TypeError, KeyError):
            fingerprint = "unreadable manifest"
    return Seals(out, fingerprint)


def finished_runs(out: Path, fingerprint: str | None = None) -> set[int]:
    """Run ids whose outcome part is on disk and matches its checksum (a damaged or
    foreign part is named in a warning and counts as not finished)."""
    folder = out / "outcomes"
    if not folder.is_dir():
        return set()
    found = sorted(int(m.group(1)) for m in map(PART.fullmatch, (f.name for f in
                                                                  folder.iterdir())) if m)
    check = seals(out, fingerprint)
    return {i for i in found if check.check(part_path(out, i).stem, [part_path(out, i)])}


def write_part(out: Path, run_id: int, frame: pd.DataFrame, fingerprint: str) -> None:
    """Write one run's outcomes atomically (temporary name, then rename), then seal it."""
    path = part_path(out, run_id)
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    seals(out, fingerprint).seal(path.stem, [path])


def sweep_fingerprint(sweep: Sweep, base: dict, ensemble: dict | None = None) -> str:
    """SHA-256 of what the sweep's parts depend on; ``ensemble`` (its members' values,
    parameter -> list) only when the sweep runs one, so a plain sweep's is unchanged."""
    spec = {"sweep": sweep.model_dump(mode="json"), "base": base}
    if ensemble is not None:
        spec["ensemble"] = ensemble
    blob = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _compared(sweep: Sweep, base: dict, ensemble: dict | None) -> dict:
    """What a resume must find recorded unchanged (named difference by difference)."""
    spec = {"sweep": sweep.model_dump(mode="json"), "base": base}
    return spec if ensemble is None else {**spec, "ensemble": ensemble["parameters"]}


def _recorded(old: dict) -> dict:
    spec = {"sweep": old.get("sweep"), "base": old.get("base_scenario")}
    ens = old.get("ensemble")
    return spec if ens is None else {**spec, "ensemble": (ens.get("parameters") if
                                                          isinstance(ens, dict) else ens)}


def prepare(sweep: Sweep, base: dict, out: Path, resume: bool, source: str,
            ensemble: dict | None = None) -> pd.DataFrame:
    """Create or check the output folder; return the experiments table. ``ensemble``:
    ``{"file", "members", "parameters"}`` of a sweep run with ``--ensemble`` (recorded in
    the manifest; its parameters are part of the fingerprint)."""
    values = None if ensemble is None else ensemble["parameters"]
    fingerprint = sweep_fingerprint(sweep, base, values)
    manifest_path = out / "manifest.json"
    if resuming_into(out, resume, source, "sweep"):
        if not manifest_path.exists():
            raise ScenarioError(f"{source}: --out {out} holds no sweep manifest to resume")
        try:
            old = json.loads(manifest_path.read_text())
            old["fingerprint"]
        except (OSError, ValueError, TypeError, KeyError):
            raise ScenarioError(f"{source}: --out {out}: its manifest.json is unreadable; "
                                "cannot resume") from None
        if old.get("fingerprint") != fingerprint:
            diffs = [d if len(d) <= 240 else d[:237] + "..." for d in
                     differences(_recorded(old), _compared(sweep, base, ensemble))]
            raise ScenarioError(f"{source}: --out {out} holds a different sweep "
                                f"('{old.get('sweep', {}).get('name')}'); cannot resume it "
                                f"(nothing was changed): {'; '.join(diffs[:12]) or '?'}")
        return pd.read_parquet(out / "experiments.parquet")
    design = design_matrix(sweep)
    exp = experiments(sweep, design)
    try:
        (out / "outcomes").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"{source}: --out {out}: cannot create it ({exc.strerror})") from None
    atomic_write(out / "experiments.parquet", lambda p: exp.to_parquet(p, index=False))
    manifest = {"plsim_version": sim.__version__, "git_commit": git_commit(),
                "fingerprint": fingerprint,
                "sweep": sweep.model_dump(mode="json"), "base_scenario": base,
                "problem": sweep.problem(), "design": sweep.design,
                "runs": int(len(exp)), "samples": int(len(design)),
                "replicates": sweep.replicates}
    if ensemble is not None:
        manifest["ensemble"] = ensemble
    atomic_write(manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return exp


def tasks(sweep: Sweep, base: dict, exp: pd.DataFrame, skip: set[int]) -> Iterator[tuple]:
    """(scenario, stream key, run id, outcomes) for every run not yet finished."""
    coords = exp[[f"x:{p.path}" for p in sweep.parameters]].to_numpy(float)
    for row, run_id, key in zip(coords, exp.run_id, exp.stream_key, strict=True):
        if run_id in skip:
            continue
        yield scenario_for(sweep, base, row), int(key), int(run_id), list(sweep.outcomes)


def run_sweep(sweep: Sweep, base: dict, out: str | Path, workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, progress: bool = False,
              source: str = "<sweep>", ensemble=None) -> dict:
    """Run (or finish) a sweep into ``out``; returns counts of runs. ``ensemble``
    (``sweep_ensemble.SweepEnsemble``): also run every run under each member, and write
    the per-sample table with each paired difference's interval across members."""
    out = Path(out)
    record = None if ensemble is None else ensemble.record()
    exp = prepare(sweep, base, out, resume, source, record)
    fingerprint = sweep_fingerprint(sweep, base, None if record is None else
                                    record["parameters"])
    done = finished_runs(out, fingerprint)
    _warm_reference(sweep, base)
    todo = tasks(sweep, base, exp, done)
    remaining = len(exp) - len(done & set(exp.run_id))
    bar = progress_bar(len(exp), progress, "runs", initial=len(exp) - remaining)
    finished = 0
    try:  # serial, a local pool or Dask: the runner's executor (bounded runs in flight)
        for run_id, frame in map_unordered(_run_task, todo, workers or 0, scheduler):
            write_part(out, run_id, frame, fingerprint)
            bar.update()
            finished += 1
    finally:
        bar.close()
    counts = {"runs": int(len(exp)), "skipped": int(len(exp) - remaining), "ran": finished}
    if ensemble is not None:
        counts.update(ensemble.run(sweep, exp, out, fingerprint, workers, scheduler, progress))
    return counts


def _warm_reference(sweep: Sweep, base: dict) -> None:
    """Compute the base scenario's statewide reference in this process before the pool
    forks: workers inherit it, instead of one computing it while the others wait on
    the cache's lock (design points that change it still compute their own)."""
    from sim.district.reference import state_reference

    data = json.loads(json.dumps(base))
    data["seed"], data["replicates"] = sweep.seed, 1
    state_reference(validate_scenario(data, "<sweep base>"))


def read_outcomes(out: str | Path) -> pd.DataFrame:
    """Every finished run's outcomes (checksums verified), joined to the experiments table."""
    out = Path(out)
    runs = sorted(finished_runs(out))
    if not runs:
        raise ScenarioError(f"{out}: no finished sweep runs to read")
    outcomes = pd.concat([pd.read_parquet(part_path(out, i)) for i in runs],
                         ignore_index=True)
    exp = pd.read_parquet(out / "experiments.parquet")
    return outcomes.merge(exp, on="run_id", how="left")
