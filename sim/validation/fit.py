"""``plsim calibrate --fit``: the hand-set parameters fitted jointly to the calibration facts.

The search space is the parameters docs/model.md §10 lists as "set by hand"
(``FIT_SPACE``). The loss is the sum over the **calibration facts only** of the
squared distance from each target in tolerance units (``Pattern.loss``), plus
``SHORT_PENALTY`` for each fact outside its band; seed findings are outputs and
never enter it. Every trial runs the three fact
districts (``sim.validation.studies``) on the same seeds and replicates —
common random numbers, so trials differ by their parameters, not by luck.
The default sampler is Optuna's CMA-ES, started at the starting parameter set
with a step of ``SIGMA0`` of each parameter's range: a local search, which in
19 dimensions and a few dozen trials does far better than a global one from
a good start; ``sampler="tpe"`` (Optuna's TPE, a global search) is the other
choice. Both are seeded and run one trial at a time (``n_jobs=1``: the same
seed gives the same study); the replicates of a trial run in worker
processes. The first trial is the starting parameter set, so the fit never
reports something worse than where it started.

Which parameters the facts pin down: around the best trial each parameter is
moved by a tenth of its range either way (the others held); a parameter whose
move raises the loss by at least ``PINNED_LOSS`` (one tolerance, squared) is
*pinned*, otherwise *loose*. The spread of the best trials is reported too.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from sim.config.scenario import FITTED_PARAMETERS, Scenario, merge_under
from sim.experiments.storage import atomic_write
from sim.validation.patterns import Outcome
from sim.validation.studies import CASE, ParameterSet, Settings, case_district, shipped
from sim.validation.validate import fact_outcomes, fact_runs

# parameter: (low, high) of the search; docs/model.md §10 lists the same names
FIT_SPACE: dict[str, tuple[float, float]] = {
    "learning.base_rate": (0.25, 1.2),
    "learning.grade_difficulty": (0.0, 0.2),
    "learning.readiness_floor": (0.02, 0.5),
    "learning.backfill_rate": (0.0, 1.5),
    "traditional.reteach_group_size": (0, 16),
    "traditional.extension_share": (0.0, 1.0),
    "traditional.extension_years": (1, 4),
    "population.sd_years_intercept": (0.2, 1.5),
    "population.sd_years_per_grade": (0.05, 0.5),
    "population.mastery_spread_years": (0.2, 1.0),
    "population.learning_rate_sd": (0.1, 0.9),
    "learning.summer_loss_recent": (0.05, 0.6),
    "learning.summer_loss_old": (0.0, 0.03),
    "population.learning_rate_achievement_corr": (0.0, 0.8),
    "teachers.typical_growth_sd": (0.2, 1.0),
    "district.mean_offset_sd": (-1.6, -0.3),
    "evaluation.observation_mean": (2.5, 3.8),
    "sensemaking.exit_base": (0.04, 0.2),
    "assessment.familiarity_weight": (0.0, 0.3),
    "leadership.responsiveness": (0.5, 8.0),
    "leadership.anticipation": (0.0, 2.0),
    "learning.outside_sd_years": (0.0, 0.8),
    "learning.outside_community_weight": (0.0, 1.0),
}
SAMPLERS = ("cmaes", "tpe")
SIGMA0 = 0.1  # CMA-ES initial step, as a share of each parameter's search range
SHORT_PENALTY = 2.0  # added to the loss for each fact that falls short
PINNED_LOSS = 1.0
STEP = 0.1  # share of a parameter's range moved in the sensitivity check
DIGITS = 4  # significant digits of every evaluated (and written) value


@dataclass
class Trial:
    values: dict[str, float]
    loss: float
    outcomes: list[Outcome]


@dataclass
class FitResult:
    start: Trial
    best: Trial
    trials: list[Trial]
    sensitivity: dict[str, float] = field(default_factory=dict)  # parameter -> loss rise
    settings: Settings | None = None
    seed: int = 0
    skipped: list[str] = field(default_factory=list)
    sampler: str = "cmaes"
    start_source: str = ""  # the starting parameters file ("code defaults" without one)


def _round(x: float) -> float:
    return x if isinstance(x, int) else float(f"{x:.{DIGITS}g}")


def _is_int(name: str) -> bool:
    section, key = name.split(".")
    return Scenario.model_fields[section].annotation.model_fields[key].annotation is int


is_int, rounded = _is_int, _round  # public names, for sim.validation.ensemble


def known_space() -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The search space restricted to parameters the model has (and the others)."""
    keep, skipped = {}, []
    for name, bounds in FIT_SPACE.items():
        section, key = name.split(".")
        if key in Scenario.model_fields[section].annotation.model_fields:
            keep[name] = bounds
        else:
            skipped.append(name)
    return keep, skipped


def current_values(params: ParameterSet, space: dict) -> dict[str, float]:
    """The parameter set's value of each fitted parameter (file, else the code default)."""
    out = {}
    for name in space:
        section, key = name.split(".")
        table = params.tables.get(section, {})
        if key in table:
            out[name] = table[key]
        else:
            out[name] = Scenario.model_fields[section].annotation.model_fields[key].default
        out[name] = int(out[name]) if _is_int(name) else float(out[name])
    return out


def with_values(params: ParameterSet, values: dict[str, float]) -> ParameterSet:
    """The parameter set with these fitted values (dotted names)."""
    tables: dict = {}
    for name, v in values.items():
        section, key = name.split(".")
        tables.setdefault(section, {})[key] = v
    return ParameterSet(merge_under(params.tables, tables), params.overrides, "trial")


def evaluate(params: ParameterSet, values: dict[str, float], settings: Settings,
             case: Path | None) -> Trial:
    """One trial: run the fact districts with ``values`` and score the facts."""
    trial_params = with_values(params, values)
    outcomes = fact_outcomes(fact_runs(trial_params, settings, case), settings.quick)
    return Trial(dict(values), trial_loss(outcomes), outcomes)


def trial_loss(outcomes: list[Outcome]) -> float:
    """Squared distances from the targets in tolerances, plus ``SHORT_PENALTY`` for each
    fact outside its band: the fit's aim is that every fact holds, and a set with one
    fact just outside its band should not beat one with all inside by a hair."""
    return float(sum(o.pattern.loss(o.value) for o in outcomes)
                 + SHORT_PENALTY * sum(not o.holds for o in outcomes))


def fit(params: ParameterSet, settings: Settings, trials: int = 40, seed: int = 0,
        case: Path | None = None, sensitivity: bool = True, progress: bool = False,
        sampler: str = "cmaes") -> FitResult:
    """Search the hand-set parameters for the smallest calibration loss (Optuna CMA-ES
    from the starting set, or TPE)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    case_district(params, settings, case or shipped(CASE))  # bad input fails before any trial
    space, skipped = known_space()
    start = {k: _round(min(max(v, space[k][0]), space[k][1]))
             for k, v in current_values(params, space).items()}
    start = {k: int(v) if _is_int(k) else v for k, v in start.items()}
    done: list[Trial] = []

    def objective(trial) -> float:
        values = {k: trial.suggest_int(k, int(lo), int(hi)) if _is_int(k)
                  else _round(trial.suggest_float(k, lo, hi)) for k, (lo, hi) in space.items()}
        t0 = time.time()
        result = evaluate(params, values, settings, case)
        done.append(result)
        best = min(t.loss for t in done)
        _say(progress, f"trial {len(done)}/{trials}: loss {result.loss:.2f} (best {best:.2f}), "
                       f"{time.time() - t0:.0f} s")
        return result.loss

    study = optuna.create_study(direction="minimize",
                                sampler=make_sampler(sampler, seed, trials, start))
    study.enqueue_trial(start)
    study.optimize(objective, n_trials=trials, n_jobs=1)
    best = min(done, key=lambda t: t.loss)
    out = FitResult(done[0], best, done, settings=settings, seed=seed, skipped=skipped,
                    sampler=sampler, start_source=params.source)
    if sensitivity:
        out.sensitivity = local_sensitivity(params, best, space, settings, case, progress)
    return out


def make_sampler(name: str, seed: int, trials: int, start: dict[str, float]):
    """The seeded Optuna sampler ``name`` (one of ``SAMPLERS``)."""
    import optuna

    if name == "cmaes":
        with warnings.catch_warnings():
            # Optuna 4.9 deprecates x0 and sigma0 (kept until Optuna 6, which
            # pyproject.toml excludes): the start is what makes this a local search
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(x0=start, sigma0=SIGMA0, seed=seed,
                                                warn_independent_sampling=False)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          n_startup_trials=max(2, min(10, trials // 3)))
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, not {name!r}")


def local_sensitivity(params, best: Trial, space, settings, case, progress=False
                      ) -> dict[str, float]:
    """Per parameter: the largest rise of the loss when it moves by ``STEP`` of its range
    either way from the best values (the others held)."""
    out = {}
    for name, (lo, hi) in space.items():
        rises = []
        for sign in (-1, 1):
            v = _round(min(max(best.values[name] + sign * STEP * (hi - lo), lo), hi))
            v = int(round(v)) if _is_int(name) else v
            if v == best.values[name]:
                continue
            t = evaluate(params, {**best.values, name: v}, settings, case)
            rises.append(t.loss - best.loss)
        out[name] = max(rises) if rises else 0.0
        _say(progress, f"sensitivity {name}: loss +{out[name]:.2f}")
    return out


def spread(result: FitResult, space: dict) -> dict[str, float]:
    """Per parameter: range of its values among the best fifth of trials (at least 3),
    as a share of its search range (small: the facts pin it)."""
    ranked = sorted(result.trials, key=lambda t: t.loss)
    top = ranked[:max(3, len(ranked) // 5)]
    return {k: (max(t.values[k] for t in top) - min(t.values[k] for t in top)) / (hi - lo)
            for k, (lo, hi) in space.items()}


def pinned(result: FitResult, name: str, spreads: dict[str, float]) -> str:
    if result.sensitivity:
        return "pinned" if result.sensitivity.get(name, 0.0) >= PINNED_LOSS else "loose"
    return "pinned" if spreads[name] <= 0.25 else "loose"


# --- output -------------------------------------------------------------------------------
def fitted_toml(result: FitResult, trials: int) -> str:
    """The fitted values as a parameters file (tables by section), with how they were got."""
    s = result.settings
    lines = [
        "# Fitted by `plsim calibrate --fit` to the calibration facts of design §9 only",
        f"# (never to a seed finding): Optuna {_SAMPLER_NAMES[result.sampler]}, seed "
        f"{result.seed}, {trials} trials, {s.replicates} replicate(s) per trial"
        f"{', quick (tiny districts: not for use)' if s.quick else ''}.",
        f"# Loss (squared distances from the targets in tolerances, plus {SHORT_PENALTY:g} "
        f"per fact short): start "
        f"{result.start.loss:.2f}, fitted {result.best.loss:.2f}.",
        f"# Started from: {result.start_source or 'code defaults'}.",
        "# Every scenario starts from these values; a scenario file's own values win",
        "# (sim/config/scenario.py). Regenerate with `plsim calibrate --fit`; do not edit.",
    ]
    by_section: dict[str, dict[str, float]] = {}
    for name, v in sorted(result.best.values.items()):
        section, key = name.split(".")
        by_section.setdefault(section, {})[key] = v if isinstance(v, int) else float(v)
    tables = {section: by_section[section] for section in sorted(by_section)}
    # the data from a TOML writer; the comments above it are text, kept to single lines
    return "\n".join(_comment_line(line) for line in lines) + "\n\n" + tomli_w.dumps(tables)


_SAMPLER_NAMES = {"cmaes": "CMA-ES from the starting set", "tpe": "TPE"}


def _comment_line(line: str) -> str:
    """A ``# ...`` line with no line breaks or other control characters (a file name given
    on the command line may hold them), so it cannot end the comment and start TOML."""
    return "".join(c if c.isprintable() else "?" for c in line)


def write_fitted(result: FitResult, trials: int, out: Path = FITTED_PARAMETERS) -> None:
    atomic_write(Path(out), lambda tmp: tmp.write_text(fitted_toml(result, trials),
                                                       encoding="utf-8"))


def format_fit(result: FitResult) -> str:
    """Each calibration pattern before and after; each parameter start, fitted, pinned."""
    space, _ = known_space()
    lines = [f"Calibration facts before and after the fit ({len(result.trials)} trials; loss "
             f"{result.start.loss:.2f} -> {result.best.loss:.2f}):", ""]
    head = ("pattern", "target", "before", "after", "")
    rows = [head]
    for a, b in zip(result.start.outcomes, result.best.outcomes, strict=True):
        rows.append((a.pattern.name, a.pattern.target_text(), _num(a.value), _num(b.value),
                     "holds" if b.holds else "falls short"))
    lines += text_table(rows)
    spreads = spread(result, space)
    lines += ["", "Parameters (pinned: moving it by a tenth of its range raises the loss by "
                  f">= {PINNED_LOSS:g}; spread: range among the best trials / search range):", ""]
    rows = [("parameter", "start", "fitted", "search range", "loss rise", "spread", "")]
    for name, (lo, hi) in space.items():
        rise = result.sensitivity.get(name)
        rows.append((name, _num(result.start.values[name]), _num(result.best.values[name]),
                     f"{lo:g} to {hi:g}", "n/a" if rise is None else f"{rise:+.2f}",
                     f"{spreads[name]:.2f}", pinned(result, name, spreads)))
    lines += text_table(rows)
    if result.skipped:
        lines += ["", f"Not fitted (the model no longer has them): {', '.join(result.skipped)}"]
    return "\n".join(lines)


def _num(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def text_table(rows) -> list[str]:
    """Rows (the first a header) as left-aligned text columns under a rule."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
           for r in rows]
    out.insert(1, "-" * len(out[0]))
    return out


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(f"plsim calibrate --fit: {text}", file=sys.stderr, flush=True)
