"""``plsim calibrate --ensemble``: every parameter set consistent with all calibration facts.

The fit (``sim.validation.fit``) finds one best parameter set; the facts, with their
tolerances, admit many. This module finds them by **history matching** in waves
(``sim.analysis.history_matching``): the free parameters and search ranges are the fit's
(``fit.known_space``), the outputs and bands are the calibration facts
(``facts.facts()``), both read at run time. Each design point runs the three fact
districts (``validation.fact_runs``) on the same seeds (common random numbers), one
point per worker process through the one executor (``experiments.executor``). After
the waves, spread-out points of the space not ruled out are run again with the check's
settings (more replicates) and kept as *members* when every fact holds (a ``--quick``
run: by the quick rule, the fact's interval overlapping its band), until the ensemble
has its size or the batches are spent.

Written beside the ensemble file ``FILE.toml``: ``FILE.diagnostics.txt`` (emulator
validation on held-out runs, the share of the search box not ruled out after each
wave and which facts rule out most, each parameter's plausible range, each fact's spread
across members), ``FILE.pairs.png`` (the pairs plot) and ``FILE.runs.csv`` (every design
point run: wave, parameters, each fact's value).
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w

from sim.analysis.history_matching import (
    CUTOFF,
    POOL,
    HistoryMatch,
    Matcher,
    Target,
    maximin,
    plausible_ranges,
)
from sim.config.ensemble import ABOUT, Ensemble
from sim.experiments.executor import Executor
from sim.experiments.storage import atomic_write
from sim.validation.facts import facts
from sim.validation.fit import (
    current_values,
    is_int,
    known_space,
    rounded,
    text_table,
    with_values,
)
from sim.validation.studies import ParameterSet, Settings
from sim.validation.validate import fact_outcomes, fact_runs


@dataclass(frozen=True)
class Plan:
    """How big an ensemble search is.

    Args:
        waves: design points run in each wave (the first also runs the starting set).
        members: the ensemble's size.
        batch: candidates re-checked at a time.
        batches: most batches re-checked before the ensemble is written short.
        radius: half-width of the search box around the starting set, as a share of each
            parameter's range in the fit's box (clipped to it); 1 searches the whole box.
    """

    waves: tuple[int, ...]
    members: int
    batch: int
    batches: int = 3
    radius: float = 1.0


    @classmethod
    def full(cls, members: int = 20, radius: float = 0.2) -> Plan:
        """The full search for ``members`` members: two waves of 60 and 40 design points in
        the box of ``radius`` around the fitted set, then at most two batches of 1.25 x
        ``members`` candidates re-checked."""
        return cls(waves=(60, 40), members=members, batch=-(-5 * members // 4), batches=2,
                   radius=radius)


def search_box(bounds: np.ndarray, start: np.ndarray, radius: float) -> np.ndarray:
    """The fit's box narrowed to ``start`` ± ``radius`` x each range (clipped to the box)."""
    if radius >= 1:
        return bounds
    half = radius * (bounds[:, 1] - bounds[:, 0])
    return np.column_stack([np.maximum(bounds[:, 0], start - half),
                            np.minimum(bounds[:, 1], start + half)])


# quick searches where the full run does: over the whole box its 52 tiny-district points
# found no candidate consistent with all 28 facts; near the fit 1 of 16 re-checked
QUICK = Plan(waves=(32, 20), members=6, batch=8, batches=2, radius=0.2)
FULL = Plan.full()


@dataclass
class EnsembleResult:
    hm: HistoryMatch
    members: list[dict]  # parameter -> value, each consistent with every fact
    member_values: np.ndarray  # members x facts: each fact's value (mean of replicates)
    checked: int  # candidates re-checked
    held: int  # of those, how many were consistent with every fact
    design: Settings
    check: Settings
    seed: int
    source: str  # the starting parameters file
    seconds: float = 0.0
    noise: np.ndarray | None = None  # each fact's one-run replicate variance (the floor)


def targets() -> list[Target]:
    """The calibration facts as history-matching targets (read at run time)."""
    return [Target(f.pattern.name, f.pattern.low, f.pattern.high, f.pattern.target,
                   f.pattern.tolerance) for f in facts()]


def to_values(point: np.ndarray, names: list[str]) -> dict[str, float]:
    """A point of the search box as parameter values (whole numbers rounded, others to the
    fit's significant digits)."""
    return {n: int(round(x)) if is_int(n) else rounded(float(x))
            for n, x in zip(names, point, strict=True)}


def _point_task(task) -> tuple[int, list[float], list[bool], list[float]]:
    """One point: the fact districts run with its values; each fact's value, verdict and
    the variance of its value (the squared standard error of the replicates' mean; NaN
    with one replicate). A module-level function, so pool workers can run it."""
    i, params, values, settings, case = task
    outcomes = fact_outcomes(fact_runs(with_values(params, values), settings, case),
                             settings.quick)
    return (i, [o.value for o in outcomes], [bool(o.holds) for o in outcomes],
            [mean_variance(o) for o in outcomes])


def mean_variance(o) -> float:
    """The squared standard error of an outcome's mean, from its 95% t-interval."""
    from scipy import stats  # lazily: the parent of a run never needs it

    if o.replicates < 2 or not np.isfinite(o.ci_high):
        return math.nan
    return float(((o.ci_high - o.value) / stats.t.ppf(0.975, o.replicates - 1)) ** 2)


def run_points(executor: Executor, params: ParameterSet, values: list[dict],
               settings: Settings, case: Path | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each fact's value, verdict and the variance of its value at every point (points x
    facts), in order."""
    m = len(facts())
    out, holds = np.full((len(values), m), np.nan), np.zeros((len(values), m), bool)
    var = np.full((len(values), m), np.nan)
    tasks = [(i, params, v, settings, case) for i, v in enumerate(values)]
    for i, vals, ok, v in executor.map_unordered(_point_task, tasks):
        out[i], holds[i], var[i] = vals, ok, v
    return out, holds, var


def consistent(ts: list[Target], values: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Whether each re-checked candidate is consistent with every fact: its implausibility
    on the simulated mean, ``|mean - target| / sqrt(se^2 + (tolerance/3)^2)`` (one-sided:
    the distance outside the band over ``se``), at most the cut-off for every fact. With
    no replicate noise this is the band itself; with it, a mean just outside a band by
    less than its noise allows is not ruled out, as in the waves."""
    v = np.where(np.isfinite(var), var, 0.0)
    imp = np.column_stack([t.implausibility(values[:, k], v[:, k])
                           for k, t in enumerate(ts)])
    return np.isfinite(values).all(axis=1) & (imp <= CUTOFF).all(axis=1)


def member_rule(check: Settings, ts: list[Target], values: np.ndarray, holds: np.ndarray,
                var: np.ndarray) -> np.ndarray:
    """Which re-checked candidates are members. Full: ``consistent`` (the waves'
    implausibility on the replicates' mean). Quick: every fact holds by the quick rule
    (its interval overlaps its band), the rule ``plsim validate --quick`` judges the
    fitted set by: a tiny district's facts sit off the full district's bands by more than
    its replicates' noise, so judged by the bands themselves even the fitted set fails
    (measured at the steady-state start, 2 replicates: growth in grade 3 1.131 against
    0.87-1.07, implausibility 3.65), and 0 of 16 quick candidates passed, 8 of which held
    all 28 facts by the quick rule."""
    if check.quick:
        return np.isfinite(values).all(axis=1) & holds.all(axis=1)
    return consistent(ts, values, var)


def rule_text(check: Settings) -> str:
    if check.quick:
        return "every fact by the quick rule: its interval overlaps its band"
    return f"implausibility <= {CUTOFF:g} on the replicates' mean"


def build_ensemble(params: ParameterSet, plan: Plan, design: Settings, check: Settings,
                   case: Path | None = None, seed: int = 0, workers: int = 2,
                   progress: bool = False) -> EnsembleResult:
    """History-match the fit's free parameters to the calibration facts; the members."""
    start_time = time.time()
    space, _ = known_space()
    names = list(space)
    bounds = np.array([space[n] for n in names], float)
    integer = np.array([is_int(n) for n in names])
    start = np.array([[min(max(v, lo), hi) for v, (lo, hi) in
                       zip(current_values(params, space).values(), bounds, strict=True)]])
    bounds = search_box(bounds, start[0], plan.radius)
    say = functools.partial(_say, progress)
    with Executor(workers) as executor:
        def simulate(points: np.ndarray) -> np.ndarray:
            t = time.time()
            out = run_points(executor, params, [to_values(p, names) for p in points],
                             design, case)[0]
            say(f"{len(points)} points in {time.time() - t:.0f} s")
            return out

        noise = one_run_variance(executor, params, to_values(start[0], names), design, case)
        say(f"one run's replicate variance measured at the starting set ({NOISE_REPLICATES} "
            "replicates)")
        matcher = Matcher(names, bounds, targets(), simulate, integer, seed, say,
                          noise_floor=noise)
        hm = matcher.run(plan.waves, extra=start)
        members, values, checked, held = _check_members(executor, params, hm, plan, check,
                                                        case, seed, say)
    return EnsembleResult(hm, members, values, checked, held, design, check, seed,
                          params.source, time.time() - start_time, noise)


NOISE_REPLICATES = 4  # replicates of the starting set that measure one run's noise


def one_run_variance(executor, params: ParameterSet, start: dict, design: Settings,
                     case: Path | None) -> np.ndarray:
    """Each fact's variance of one design run around its mean, from the starting set run
    with ``NOISE_REPLICATES`` replicates on the design's districts (the squared standard
    error of their mean times their number; 0 where it cannot be told).

    Every design point runs on the same seeds (common random numbers), so the runs share
    one draw of the replicate noise: the emulators take it for part of the mean, and
    their white-noise term cannot learn it. Without it in the implausibility, a fact
    whose one-seed value sits outside its band by chance rules out the whole box
    (measured at the steady-state start: the fitted set, consistent with every fact at
    four replicates, and every point within 0.04 of each range of it were ruled out,
    smallest implausibility 6.4)."""
    settings = Settings(**{**design.__dict__, "replicates": NOISE_REPLICATES})
    var = run_points(executor, params, [start], settings, case)[2][0]
    return np.where(np.isfinite(var), var * NOISE_REPLICATES, 0.0)


def _check_members(executor, params, hm: HistoryMatch, plan: Plan, check: Settings, case,
                   seed: int, say) -> tuple[list[dict], np.ndarray, int, int]:
    """Spread-out NROY points re-run with the check's settings, in batches; those holding
    every fact are the members (at most ``plan.members``)."""
    rng = np.random.default_rng(seed + 7)
    pool = hm.nroy
    tried = np.empty((0, len(hm.names)))
    members, values, checked, held = [], [], 0, 0
    for b in range(plan.batches):
        if len(members) >= plan.members or len(pool) == 0:
            break
        batch = maximin(pool, plan.batch, hm.bounds, rng, tried if len(tried) else None)
        tried = np.vstack([tried, batch])
        chosen = {tuple(row) for row in batch}  # maximin returns rows of the pool itself
        pool = pool[[tuple(row) not in chosen for row in pool]]
        t = time.time()
        candidates = [to_values(p, hm.names) for p in batch]
        out, holds, var = run_points(executor, params, candidates, check, case)
        checked += len(batch)
        ok = member_rule(check, hm.targets, out, holds, var)
        held += int(ok.sum())
        held_each = " ".join(str(int(k)) for k in sorted(holds.sum(axis=1)))
        say(f"check batch {b + 1}: {int(ok.sum())} of {len(batch)} consistent with every fact "
            f"({rule_text(check)}); facts held by each: {held_each} of {holds.shape[1]} "
            f"({time.time() - t:.0f} s)")
        for c, v, good in zip(candidates, out, ok, strict=True):
            if good and len(members) < plan.members:
                members.append(c)
                values.append(v)
    m = len(hm.targets)
    return members, np.array(values).reshape(-1, m), checked, held


# --- output ---------------------------------------------------------------------------
def as_ensemble(result: EnsembleResult) -> Ensemble:
    names = result.hm.names
    return Ensemble({n: [m[n] for m in result.members] for n in names},
                    about_table(result))


def about_table(result: EnsembleResult) -> dict:
    """How the ensemble was made, as data (the file's ``[about]`` table)."""
    return {
        "method": "history matching (Gaussian-process emulators, implausibility cut-off "
                  f"{CUTOFF:g}) to the calibration facts; members re-checked by simulation",
        "quick": result.design.quick, "seed": result.seed,
        "members": len(result.members), "checked": result.checked, "held": result.held,
        "design_points": [len(w.design) for w in result.hm.waves],
        "not_ruled_out_share": [w.nroy_share for w in result.hm.waves],
        "design_replicates": result.design.replicates,
        "check_replicates": result.check.replicates,
        "facts": [t.name for t in result.hm.targets],
        "starting_parameters": result.source,
        "seconds": round(result.seconds, 1),
    }


def ensemble_toml(result: EnsembleResult) -> str:
    """The ensemble file: one list per parameter (one value per member), ``[about]``."""
    ens = as_ensemble(result)
    lines = [
        "# Written by `plsim calibrate --ensemble`: parameter sets consistent with every",
        "# calibration fact (history matching; docs/model.md §10, Parameter ensembles).",
        "# One list per parameter, one value per member. Use with `plsim run SCENARIO",
        "# --ensemble FILE` or `plsim validate --ensemble FILE`."
        + (" Quick: tiny districts, not for use." if result.design.quick else ""),
    ]
    data = {**{n: v for n, v in ens.values.items()}, ABOUT: ens.about}
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(data)


def companion(out: Path, suffix: str) -> Path:
    """A file written beside the ensemble file: ``ens.toml`` -> ``ens.diagnostics.txt``."""
    return out.with_name(out.stem + suffix)


def write_ensemble(result: EnsembleResult, out: Path) -> list[Path]:
    """The ensemble file, its diagnostics and its pairs plot, each written atomically."""
    from sim.analysis.pairs import pairs_plot

    out = Path(out)
    text = ensemble_toml(result)
    diag = format_diagnostics(result)
    diag_path, png = companion(out, ".diagnostics.txt"), companion(out, ".pairs.png")
    atomic_write(diag_path, lambda tmp: tmp.write_text(diag + "\n", encoding="utf-8"))
    members = np.array([[m[n] for n in result.hm.names] for m in result.members], float)
    atomic_write(png, lambda tmp: pairs_plot(result.hm.names, result.hm.bounds,
                                             members.reshape(-1, len(result.hm.names)),
                                             result.hm.nroy, tmp))
    runs = companion(out, ".runs.csv")
    atomic_write(runs, lambda tmp: design_runs(result).to_csv(tmp, index=False,
                                                               float_format="%.6g"))
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return [out, diag_path, png, runs]


def design_runs(result: EnsembleResult):
    """Every design point run (wave, parameters, each fact's value): for checking the
    emulators or refitting them elsewhere."""
    import pandas as pd

    frames = []
    for k, w in enumerate(result.hm.waves, start=1):
        f = pd.DataFrame(w.design, columns=result.hm.names)
        f.insert(0, "wave", k)
        for j, t in enumerate(result.hm.targets):
            f[t.name] = w.outputs[:, j]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def format_diagnostics(result: EnsembleResult) -> str:
    hm = result.hm
    lines = [f"History matching: {len(hm.waves)} waves, implausibility cut-off {CUTOFF:g}, "
             f"{len(hm.targets)} calibration facts, {len(hm.names)} free parameters.", ""]
    rows = [("wave", "design points", "not ruled out (share of the search box)", "")]
    for k, w in enumerate(hm.waves, start=1):
        note = ("" if w.nroy_found else
                f"under 1/{POOL} of the box; searched: least implausibility {w.least:.2f}"
                + (" (none NROY: the least implausible points stood in)" if w.empty else ""))
        rows.append((str(k), str(len(w.design)), f"{w.nroy_share:.4g}", note))
    lines += text_table(rows)
    lines += ["", "Which facts rule out most: share of the candidates each wave's design was "
                  "drawn from (the box, then the NROY points, or the least implausible ones) "
                  "that the wave's emulator of the fact alone leaves at implausibility <= 3:",
              ""]
    rows = [("fact", *(f"wave {k}" for k in range(1, len(hm.waves) + 1)))]
    for j, t in enumerate(hm.targets):
        rows.append((t.name, *(_pct(w.output_share[j]) if w.output_share else "n/a"
                               for w in hm.waves)))
    lines += text_table(rows)
    lines += ["", "Emulator validation (held-out runs of each wave; z = (value - emulator "
                  "mean) / emulator sd; |z| <= 3 expected for most):", ""]
    rows = [("wave", "fact", "held out", "|z| <= 3", "max |z|", "rmse")]
    for k, w in enumerate(hm.waves, start=1):
        for v in w.validation:
            rows.append((str(k), v.name, str(v.held_out), _pct(v.within_3),
                         _num(v.max_abs_z), _num(v.rmse)))
    lines += text_table(rows) if len(rows) > 1 else ["(too few runs to hold any out)"]
    if result.noise is not None:
        lines += ["", "One run's replicate SD at the starting set (the emulators' noise floor: "
                      "the design runs share one seed):", ""]
        rows = [("fact", "band", "one run's SD")]
        for j, t in enumerate(hm.targets):
            rows.append((t.name, _band(t), _num(math.sqrt(result.noise[j]))))
        lines += text_table(rows)
    names = hm.names
    members = np.array([[m[n] for n in names] for m in result.members], float)
    lines += ["", f"Members: {len(result.members)} (of {result.checked} candidates re-run "
                  f"with {result.check.replicates} replicate(s), {result.held} consistent with "
                  f"every fact: {rule_text(result.check)}).", "",
              "Plausible ranges (members; not ruled out: the NROY sample):", ""]
    nroy = plausible_ranges(hm.nroy, names) if hm.nroy is not None and len(hm.nroy) else {}
    mem = plausible_ranges(members, names) if len(members) else {}
    rows = [("parameter", "search range", "members", "not ruled out")]
    for j, n in enumerate(names):
        rows.append((n, f"{hm.bounds[j, 0]:g} to {hm.bounds[j, 1]:g}",
                     _range(mem.get(n)), _range(nroy.get(n))))
    lines += text_table(rows)
    if len(result.members):
        lines += ["", "Each fact across the members (mean of replicates):", ""]
        rows = [("fact", "band", "min", "median", "max")]
        for j, t in enumerate(hm.targets):
            v = result.member_values[:, j]
            rows.append((t.name, _band(t), _num(np.nanmin(v)), _num(np.nanmedian(v)),
                         _num(np.nanmax(v))))
        lines += text_table(rows)
    lines += ["", f"{result.seconds:.0f} s."]
    return "\n".join(lines)


# --- plsim validate --ensemble ----------------------------------------------------------
def _member_task(task) -> tuple[int, list[tuple[float, float, float, bool]]]:
    i, params, settings = task
    outcomes = fact_outcomes(fact_runs(params, settings), settings.quick)
    return i, [(o.value, o.ci_low, o.ci_high, bool(o.holds)) for o in outcomes]


def ensemble_spread(ens: Ensemble, params: ParameterSet, settings: Settings,
                    workers: int = 2) -> tuple[list[Target], np.ndarray, np.ndarray]:
    """Every member's fact values and verdicts (members x facts), one member per worker."""
    inner = Settings(**{**settings.__dict__, "workers": 1})
    tasks = [(i, with_values(params, ens.member(i)), inner) for i in range(ens.size)]
    m = len(facts())
    values, holds = np.full((ens.size, m), np.nan), np.zeros((ens.size, m), bool)
    with Executor(workers) as executor:
        for i, rows in executor.map_unordered(_member_task, tasks):
            values[i] = [r[0] for r in rows]
            holds[i] = [r[3] for r in rows]
    return targets(), values, holds


def format_spread(ts: list[Target], values: np.ndarray, holds: np.ndarray,
                  source: str) -> str:
    """Each fact's spread across the members: band, min, median, max, members holding."""
    k = len(values)
    lines = [f"Calibration facts across the {k} members of {source} (each member's value is "
             "the mean of its replicates):", ""]
    rows = [("fact", "band", "min", "median", "max", "members holding")]
    for j, t in enumerate(ts):
        v = values[:, j]
        rows.append((t.name, _band(t), _num(np.nanmin(v)), _num(np.nanmedian(v)),
                     _num(np.nanmax(v)), f"{int(holds[:, j].sum())} of {k}"))
    lines += text_table(rows)
    every = int(holds.all(axis=1).sum())
    lines += ["", f"{every} of {k} members hold every calibration fact."]
    return "\n".join(lines)


def spread_status(holds: np.ndarray) -> int:
    return 0 if holds.all() else 1


# --- text helpers -----------------------------------------------------------------------
def _band(t: Target) -> str:
    if t.target is not None:
        return f"{t.target:g} ± {t.tolerance:g}"
    return f"> {t.low:g}" if math.isinf(t.high) else f"< {t.high:g}"


def _num(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _pct(x) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _range(r) -> str:
    return "n/a" if r is None else f"{r[0]:.3g} to {r[1]:.3g}"


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(f"plsim calibrate --ensemble: {text}", file=sys.stderr, flush=True)

