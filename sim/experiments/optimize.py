"""Many-objective policy search: the Pareto frontier of levers, with NSGA-II (Optuna).

The spec and its levers are ``optimize_spec``; the NSGA-II search
``optimize_search``; the files of a finished study ``optimize_outputs``.
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
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import sim
from sim.analysis.noisy_front import LEVEL, dominance_probability, verdict
from sim.analysis.summaries import ALL, METRICS, replicate_means
from sim.config.parameters import Tutoring
from sim.config.scenario import ScenarioError, validate_scenario
from sim.experiments.executor import Executor
from sim.experiments.optimize_outputs import format_front, pareto_figure, write_outputs
from sim.experiments.optimize_refine import Point, Store, refine, replicate_values, rules_of
from sim.experiments.optimize_search import search
from sim.experiments.optimize_spec import (
    Lever,
    Objective,
    OptimizeSpec,
    Problem,
    candidate_data,
    candidate_scenario,
    load_spec,
)
from sim.experiments.run_parts import differences
from sim.experiments.runner import progress_bar, run_arm
from sim.experiments.storage import Seals, atomic_write, resuming_into
from sim.experiments.sweeps import accountability_outcomes

__all__ = ["Lever", "Objective", "OptimizeSpec", "Problem", "candidate_data",
           "candidate_scenario", "format_front", "load_spec", "pareto_figure", "run_optimize",
           "search", "write_outputs"]
PART = re.compile(r"cand-(\d{6})\.parquet")  # a finished candidate's part
REF_PART = re.compile(r"ref-(\d{3})\.parquet")  # a shipped strategy's part


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
            old = old if isinstance(old, dict) else {}
            diffs = differences({"spec": old.get("spec"), "base": old.get("base_scenario")},
                                {"spec": problem.spec.model_dump(mode="json"),
                                 "base": problem.base})
            raise ScenarioError(f"{source}: --out {out} holds a different study "
                                f"({old.get('spec', {}).get('name')!r}); cannot resume it "
                                f"(nothing was changed): {'; '.join(diffs[:12]) or '?'}")
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


def read_parts(out: Path, folder: str, pattern: re.Pattern, fingerprint: str) -> pd.DataFrame:
    """Every part in ``out/folder`` whose checksum verifies, in name order (a damaged or
    foreign part is named in a warning and left out: it is run again)."""
    base = out / folder
    files = sorted(f for f in base.iterdir() if pattern.fullmatch(f.name)) \
        if base.is_dir() else []
    seals = Seals(out, fingerprint)
    good = [f for f in files if seals.check(f"{folder}-{f.stem}", [f])]
    if not good:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in good], ignore_index=True)


def objective_row(spec: OptimizeSpec, reps: np.ndarray) -> dict:
    """Per objective: mean, 95% interval and each replicate's value (reps: replicates x
    objectives; more than the spec's where the point was re-run)."""
    row: dict[str, Any] = {"replicates": int(len(reps))}
    for j, o in enumerate(spec.objectives):
        row[o.name], row[f"{o.name}_low"], row[f"{o.name}_high"] = interval(reps[:, j],
                                                                            o.outcome)
        for r in range(len(reps)):
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
    fp = fingerprint(problem)
    stored = read_parts(out, "candidates", PART, fp)
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
    executor = Executor(workers, scheduler, "finished candidates")
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
                _write_part(out, number, row, fp)
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
                _write_part(out, number, row, fp)
                counts["ran"] += 1
                bar.update()
                yield number, _values(spec, row), {"same_as": -1}
        for number, (params, original) in rows.items():
            src = pd.read_parquet(part_path(out, original)).iloc[0].to_dict()
            row = {**src, "candidate": number, "same_as": original}
            row.update({f"x:{lv.name}": float(params[lv.name]) for lv in spec.levers})
            _write_part(out, number, row, fp)
            counts["reused"] += 1
            bar.update()
            yield number, _values(spec, row), {"same_as": original}

    try:
        search(levers, [o.maximize for o in spec.objectives], evaluate,
               population=spec.population, generations=spec.generations,
               seed=spec.sampler_seed(), finished=finished)
        refs = run_references(problem, out, executor, arm_default, years)
        cands, refs, raced = settle(problem, out, executor,
                                    read_parts(out, "candidates", PART, fp), refs,
                                    arm_default, years)
    except BaseException:
        executor.close(failed=True)
        raise
    finally:
        executor.close()
        bar.close()
    files = write_outputs(problem, out, cands, refs)
    write_manifest(problem, out, {"finished": True, "optuna_version": optuna.__version__,
                                  "files": files, "refine": {
                                      "budget": rules_of(spec).budget,
                                      "max_replicates": rules_of(spec).max_replicates,
                                      "spent": raced.spent, "rounds": raced.rounds,
                                      "undecided_before": raced.undecided_before,
                                      "log": raced.log}})
    return {"candidates": spec.trials, "skipped": len(finished), **counts, "files": files,
            "refine_spent": raced.spent}


def _param(lever: Lever, x: float):
    if not lever.is_range or lever.integer:
        return int(round(x))
    return float(x)


def _key(params: dict) -> tuple:
    return tuple(sorted((k, float(v)) for k, v in params.items()))


def _values(spec: OptimizeSpec, row: dict) -> list[float] | None:
    vals = [float(row[o.name]) for o in spec.objectives]
    return None if any(math.isnan(v) for v in vals) else vals


def _write_part(out: Path, number: int, row: dict, fp: str) -> None:
    frame = pd.DataFrame([row])
    _write_sealed(out, part_path(out, number), frame, fp)


def _write_sealed(out: Path, path: Path, frame: pd.DataFrame, fp: str) -> None:
    """A one-row part, written atomically, then sealed with its checksum."""
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    Seals(out, fp).seal(f"{path.parent.name}-{path.stem}", [path])


def run_references(problem: Problem, out: Path, executor: Executor, arm_default: str,
                   years: int) -> pd.DataFrame:
    """The shipped strategies (base arms) on the same replicates; cached as parts."""
    spec = problem.spec
    folder, fp = out / "references", fingerprint(problem)
    folder.mkdir(exist_ok=True)
    done = set(read_parts(out, "references", REF_PART, fp).get("strategy", []))
    tasks = []
    for i, label, one in reference_scenarios(problem):
        if label in done:
            continue
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
            _write_sealed(out, folder / f"ref-{i:03d}.parquet", pd.DataFrame([row]), fp)
    return read_parts(out, "references", REF_PART, fp)


def reference_scenarios(problem: Problem) -> list[tuple[int, str, Any]]:
    """The shipped strategies: (index, label, the one-arm scenario) each."""
    spec = problem.spec
    data = json.loads(json.dumps(problem.reference_base))
    data["seed"], data["replicates"] = spec.seed, spec.replicates
    full = validate_scenario(data, problem.source)
    labels = spec.references if spec.references is not None else [a.label for a in full.arms]
    out = []
    for i, label in enumerate(labels):
        arm = next(a for a in full.arms if a.label == label)
        out.append((i, label, validate_scenario({**data, "arms": [arm.model_dump(mode="json")]},
                                                problem.source)))
    return out


def settle(problem: Problem, out: Path, executor: Executor, cands: pd.DataFrame,
           refs: pd.DataFrame, arm_default: str, years: int):
    """Race the candidates and strategies whose place on the front is undecided
    (``optimize_refine``); the candidates' and strategies' rows from all their
    replicates, with each one's probability of being non-dominated (``front_probability``,
    its verdict ``front``) and, for a strategy, the candidates that dominate it."""
    spec = problem.spec
    reps, points, by_key = {}, {}, {}
    for row in cands.to_dict("records"):
        if int(row["same_as"]) >= 0 or row.get("note"):
            continue
        key = ("c", int(row["candidate"]))
        params = {lv.name: _param(lv, row[f"x:{lv.name}"]) for lv in spec.levers}
        reps[key], by_key[key] = replicate_values(spec, row), params
        points[key] = Point(candidate_scenario(problem, params), spec, arm_default, years)
    labels = dict(zip(refs.get("strategy", []), range(len(refs)), strict=True))
    for i, label, one in reference_scenarios(problem):
        if label in labels:
            key = ("s", i)
            reps[key] = replicate_values(spec, refs.iloc[labels[label]].to_dict())
            points[key], by_key[key] = Point(one, _as_reference(spec, label), label, years), label
    raced = refine(reps, points, spec, executor, Store(out, fingerprint(problem)), _task)
    return (_settled_candidates(spec, cands, raced, by_key),
            _settled_references(spec, raced, by_key), raced)


def _settled_candidates(spec, cands: pd.DataFrame, raced, by_key) -> pd.DataFrame:
    rows = {}
    for row in cands.sort_values("candidate").to_dict("records"):
        n, key = int(row["candidate"]), ("c", int(row["candidate"]))
        if key in raced.reps:
            row = _record_row(spec, n, by_key[key], raced.reps[key], -1)
            row["front_probability"] = raced.probability[key]
        elif int(row["same_as"]) >= 0 and int(row["same_as"]) in rows:
            src = rows[int(row["same_as"])]
            keep = {c: row[c] for c in ("candidate", "same_as", "note") if c in row}
            keep.update({c: row[c] for c in row if c.startswith("x:")})
            row = {**src, **keep}
        else:
            row["front_probability"] = math.nan
        row["front"] = verdict(row["front_probability"])
        rows[n] = row
    return pd.DataFrame(list(rows.values()))


def _settled_references(spec, raced, by_key) -> pd.DataFrame:
    keys = [k for k in raced.reps if k[0] == "s"]
    if not keys:
        return pd.DataFrame()
    # the candidates that may be on the front (the others are beaten themselves)
    cand_keys = [k for k in raced.reps if k[0] == "c" and raced.probability[k] >= 0.5]
    order = cand_keys + keys
    maximize = [o.maximize for o in spec.objectives]
    dom = dominance_probability([raced.reps[k] for k in order], maximize, seed=spec.seed)
    rows = []
    for j, key in enumerate(keys, start=len(cand_keys)):
        p = dom[:len(cand_keys), j]
        sure = [cand_keys[i][1] for i in np.flatnonzero(p >= LEVEL)]
        maybe = [(cand_keys[i][1], p[i]) for i in np.flatnonzero((p > 1 - LEVEL) & (p < LEVEL))]
        rows.append({"strategy": by_key[key], **objective_row(spec, raced.reps[key]),
                     "front_probability": raced.probability[key],
                     "front": verdict(raced.probability[key]),
                     "dominated_by": " ".join(map(str, sure)),
                     "possibly_dominated_by": " ".join(f"{c} ({q:.2f})" for c, q in maybe)})
    return pd.DataFrame(rows)


def _as_reference(spec: OptimizeSpec, label: str) -> OptimizeSpec:
    """The spec with every objective read from the strategy's own arm."""
    objs = [o.model_copy(update={"arm": label}) for o in spec.objectives]
    return spec.model_copy(update={"objectives": objs})
