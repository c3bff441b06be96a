"""Command line: ``plsim run | check | calibrate | validate | sweep | sensitivity |
sweep-summary | report | app | optimize | discover | reference | notebooks | bench |
district import``.

Bad input (a scenario or option that fails validation, a missing or
unreadable file, text that is not TOML) prints one message naming the file,
the field and what is allowed, and exits with status 2 before anything is
written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sim.config.scenario import ScenarioError, load_scenario, shorten

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: same status as other bad input
        self.print_usage(sys.stderr)
        print(f"plsim: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


_nonneg_int, _positive_int = _int_at_least(0), _int_at_least(1)


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port 1..65535, got {value}")
    return value


def _share(text: str) -> float:
    """An argparse type: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}"
                                         ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _option_int(path: str, option: str, text: str | None, minimum: int) -> int | None:
    """A whole-number option that overrides a scenario field; errors name the file."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        limit = f" of at most {sys.get_int_max_str_digits():,} digits" if text.isdigit() else ""
        raise ScenarioError(f"{path}: {option}: expected a whole number >= {minimum}{limit}, "
                            f"got {shorten(text)}") from None
    if value < minimum:
        raise ScenarioError(f"{path}: {option}: must be >= {minimum}, got {value}")
    return value


IGNORE_MEMORY_HELP = ("run even when the estimated peak memory exceeds the memory available "
                      "here (for a machine or cluster the check cannot see)")


def _executor_options(default_workers: int, what: str) -> argparse.ArgumentParser:
    """The options shared by run, sweep and optimize (a parent parser): where the work
    runs, resuming it and quiet output. ``what`` names the work that resumes skip."""
    p = _Parser(add_help=False)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=_nonneg_int, default=default_workers,
                   help=f"local processes (default {default_workers}; 0 = all cores, "
                        "1 = serial; at most the cores); results do not depend on it")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. "
                                       "tcp://10.0.0.5:8786, to run on its cluster (then "
                                       "--workers is ignored)")
    p.add_argument("--resume", action="store_true",
                   help=f"continue the work in --out, skipping {what} (their checksums "
                        "verified; damaged ones are redone)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="plsim", description="Personalized learning under grade-level "
                                          "accountability: an agent-based simulation.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario and write its results",
                       parents=[_executor_options(1, "finished arm x replicate runs")])
    r.add_argument("scenario", help="scenario file (TOML)")
    r.add_argument("--seed", help="override the scenario's seed (a whole number >= 0)")
    r.add_argument("--replicates", help="override the number of replicates (>= 1)")
    r.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a field, e.g. --set district.schools=8 "
                        "--set arms.floor3.floor=2 (repeatable)")
    r.add_argument("--no-report", action="store_true",
                   help="do not write report.html (the self-contained HTML report)")
    r.add_argument("--ignore-memory-check", action="store_true", help=IGNORE_MEMORY_HELP)
    c = sub.add_parser("check", help="validate a scenario file without running it")
    c.add_argument("scenario")
    c.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    k = sub.add_parser("calibrate", help="measure the calibration facts on a scenario, or "
                                         "fit the hand-set parameters to them (--fit)")
    k.add_argument("scenario", nargs="?", help="scenario file (TOML); with --fit, the case "
                                               "district (default: tepp_case_study)")
    k.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    k.add_argument("--fit", action="store_true", help="fit the hand-set parameters to the "
                                                      "calibration facts (Optuna)")
    k.add_argument("--quick", action="store_true", help="with --fit: tiny districts and "
                                                        "trials, for tests (not for use)")
    k.add_argument("--trials", type=_positive_int, help="with --fit: trials (default 40; "
                                                        "quick 4)")
    k.add_argument("--seed", type=_nonneg_int, default=0, help="with --fit: sampler seed")
    k.add_argument("--sampler", choices=("cmaes", "tpe"), default="cmaes",
                   help="with --fit: cmaes (default; a local search from the starting set) "
                        "or tpe (a global search)")
    k.add_argument("--replicates", type=_positive_int,
                   help="with --fit: replicates per trial (default 4; quick 1)")
    k.add_argument("--out", help="with --fit: parameters file to write (default "
                                 "sim/config/fitted.toml; quick: fitted-quick.toml)")
    k.add_argument("--parameters", help="with --fit: parameters file to start from "
                                        "(default the fitted set; 'none': code defaults)")
    k.add_argument("--no-sensitivity", action="store_true",
                   help="with --fit: skip the local sensitivity check (quick skips it)")
    k.add_argument("--workers", type=_nonneg_int, default=2, help="processes per trial")
    v = sub.add_parser("validate", help="every calibration fact and seed finding of the "
                                        "design brief, each holds / falls short")
    v.add_argument("--quick", action="store_true", help="small districts, few replicates "
                                                        "(under a minute; for tests)")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.add_argument("--markdown", action="store_true", help="print a Markdown table")
    v.add_argument("--facts-only", action="store_true",
                   help="only the calibration facts (no seed findings): a few seconds")
    v.add_argument("--report-only", action="store_true",
                   help="exit 0 even when a calibration fact falls short")
    v.add_argument("--strict", action="store_true",
                   help="exit 1 also when a seed finding falls short (by default only the "
                        "calibration facts gate: findings are outputs)")
    v.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a parameter of the common set, e.g. "
                        "--set learning.base_rate=0.5 (repeatable)")
    v.add_argument("--parameters", help="parameters file (default sim/config/fitted.toml; "
                                        "'none': the code defaults)")
    v.add_argument("--replicates", type=_positive_int,
                   help="replicates per study (default 10; quick 2)")
    v.add_argument("--workers", type=_nonneg_int, default=2,
                   help="processes (default 2; 0 = all cores); results do not depend on it")
    v.add_argument("--update-doc", metavar="FILE",
                   help="also write the Markdown table into FILE between the validation "
                        "markers (docs/model.md)")
    w = sub.add_parser("sweep", help="run a scenario sweep (local processes or a Dask cluster)",
                       parents=[_executor_options(0, "finished runs")])
    w.add_argument("sweep", help="sweep file (TOML)")
    w.add_argument("--no-report", action="store_true",
                   help="do not write report.html when the sweep is complete")
    w.add_argument("--ignore-memory-check", action="store_true", help=IGNORE_MEMORY_HELP)
    h = sub.add_parser("report", help="one self-contained HTML report of a finished run or "
                                      "sweep")
    h.add_argument("dir", help="the --out directory of `plsim run` or `plsim sweep`")
    h.add_argument("--out", help="HTML file to write (default: DIR/report.html, or "
                                 "DIR/report-vs-ARM.html with --baseline ARM)")
    h.add_argument("--baseline", help="arm the others are compared with (default: the first)")
    s = sub.add_parser("sensitivity", help="Sobol or Morris indices of a finished sweep")
    s.add_argument("dir", help="a sweep's output directory")
    s.add_argument("--outcome", help="one outcome (default: every recorded outcome)")
    s.add_argument("--arm", help="arm (default: the last arm)")
    s.add_argument("--year", type=_positive_int, help="year (default: the last)")
    s.add_argument("--band", default="all students", help="start band (default: all students)")
    m = sub.add_parser("sweep-summary", help="each outcome against each parameter, with figures")
    m.add_argument("dir", help="a sweep's output directory")
    m.add_argument("--arm", help="arm (default: every arm)")
    m.add_argument("--year", type=_positive_int, help="year (default: the last)")
    a = sub.add_parser("app", help="the web page to compare strategies (127.0.0.1 only)")
    a.add_argument("--port", type=_port, default=8765, help="port on 127.0.0.1 (default 8765)")
    o = sub.add_parser("optimize", help="many-objective search over policy levers (NSGA-II): "
                                        "the Pareto frontier, with the shipped strategies",
                       parents=[_executor_options(0, "finished candidates (replayed, not "
                                                     "rerun)")])
    o.add_argument("spec", help="optimisation spec (TOML)")
    d = sub.add_parser("discover", help="PRIM scenario discovery on a finished sweep: boxes of "
                                        "parameter space where an outcome holds")
    d.add_argument("dir", help="a sweep's output directory")
    d.add_argument("--outcome", required=True, help="a recorded outcome, e.g. "
                                                    "program_active_share")
    side = d.add_mutually_exclusive_group(required=True)
    side.add_argument("--above", type=float, metavar="X", help="cases of interest: outcome > X")
    side.add_argument("--below", type=float, metavar="X", help="cases of interest: outcome < X")
    d.add_argument("--arm", help="arm (default: the last arm)")
    d.add_argument("--year", type=_positive_int, help="year (default: the last)")
    d.add_argument("--band", help="start band (default: all students)")
    d.add_argument("--min-density", type=_share, default=0.8,
                   help="density a box must reach (0-1, default 0.8)")
    d.add_argument("--max-boxes", type=_positive_int, default=3, help="most boxes (default 3)")
    d.add_argument("--peel-alpha", type=_share, default=0.05,
                   help="share peeled per step (default 0.05)")
    d.add_argument("--mass-min", type=_share, default=0.05,
                   help="smallest box, share of all runs (default 0.05)")
    d.add_argument("--min-runs", type=_positive_int, default=10,
                   help="smallest box, in runs (default 10; a smaller box is flagged)")
    f = sub.add_parser("reference", help="check (or --update) the committed reference "
                                         "results of the shipped scenarios")
    f.add_argument("--update", action="store_true",
                   help="recompute and write results/reference/ (deliberately: say so in the "
                        "commit message)")
    f.add_argument("--quick", action="store_true",
                   help="only the quick runs (the ones the tests re-run)")
    f.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="only this scenario, e.g. floor_strategies (repeatable; default all)")
    f.add_argument("--workers", type=_nonneg_int, default=1,
                   help="processes (1 = serial, 0 = all cores); results do not depend on it")
    n = sub.add_parser("notebooks", help="execute the notebooks and render them to HTML")
    n.add_argument("notebook", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    n.add_argument("--mode", choices=["quick", "full"], default="full",
                   help="full: the shipped scenarios (default); quick: small, as in the tests")
    n.add_argument("--out", default="results/notebooks", help="output directory")
    b = sub.add_parser("bench", help="engine versus per-agent Mesa speed and memory")
    b.add_argument("--json", action="store_true", help="print one JSON list")
    b.add_argument("--sizes", type=_positive_int, nargs="+", default=[10_000, 100_000],
                   metavar="STUDENTS",
                   help="district sizes (default 10000 100000; 1000000 is opt-in: about 10 "
                        "minutes on one free core)")
    _district_parser(sub)
    return p


def _district_parser(sub) -> None:
    """``plsim district import FILE.csv``: a scenario fitted to a district's aggregates."""
    t = sub.add_parser("district", help="bring your own district: build a scenario from the "
                                        "aggregates a district publishes")
    ts = t.add_subparsers(dest="district_command", required=True, parser_class=_Parser)
    i = ts.add_parser("import", help="fit a scenario to a CSV of per-school, per-grade "
                                     "enrolment and share proficient (aggregates only)",
                      description="Columns: school, grade, enrolled, proficient_share "
                                  "(0-1), optional fall_mean, fall_sd; one row per school "
                                  "and tested grade, at least 10 students a row. Writes the "
                                  "scenario and its fit table (OUT.fit.csv) beside it.")
    i.add_argument("csv", help="the district's aggregates (CSV)")
    i.add_argument("--out", help="scenario to write, replaced if it exists (default: "
                                 "NAME.toml in the current folder, NAME the CSV's)")
    i.add_argument("--seed", type=_nonneg_int, default=1, help="the scenario's seed (default 1)")
    i.add_argument("--replicates", type=_positive_int, default=4,
                   help="replicates of the fit and of the scenario (default 4)")
    i.add_argument("--workers", type=_nonneg_int, default=1,
                   help="processes (1 = serial, 0 = all cores); results do not depend on it")


def cmd_district(args) -> int:
    from sim.validation.district_import import (
        fit_district,
        format_fit,
        read_district_csv,
        write_import,
    )

    data = read_district_csv(args.csv)
    out = Path(args.out) if args.out else Path(Path(args.csv).stem + ".toml")
    if out.suffix.lower() != ".toml":
        raise ScenarioError(f"--out {out}: a scenario file name ends in .toml")
    if out.exists() and not out.is_file():
        raise ScenarioError(f"--out {out}: exists and is not a file")
    start = time.time()
    imported = fit_district(data, name=Path(args.csv).stem or "district", seed=args.seed,
                            replicates=args.replicates, workers=args.workers,
                            log=lambda m: print(m, file=sys.stderr))
    scenario, fit = write_import(imported, out)
    print(format_fit(imported.table))
    print(f"Wrote {scenario} and {fit} in {time.time() - start:.0f} s. Run it with "
          f"`plsim run {scenario} --out DIR`.")
    return 0


def cmd_run(args) -> int:
    from sim.experiments.folder_lock import hold
    from sim.experiments.run_parts import recorded_replicates

    seed = _option_int(args.scenario, "--seed", args.seed, 0)
    replicates = _option_int(args.scenario, "--replicates", args.replicates, 1)
    if args.resume and replicates is None:  # finish the run as it was started
        replicates = recorded_replicates(args.out)
    sc = load_scenario(args.scenario, args.set, seed=seed, replicates=replicates)
    out = Path(args.out)
    _check_writable(out)
    _check_memory(sc, args, args.scenario)
    with hold(out, args.scenario):
        return _run_into(args, sc, out)


def _run_into(args, sc, out: Path) -> int:
    from sim.analysis.summaries import format_summary
    from sim.experiments.output import write_results
    from sim.experiments.runner import run_to_directory
    from sim.presentation.report import stage_run_report

    start = time.time()
    stored = run_to_directory(sc, out, workers=args.workers, scheduler=args.scheduler,
                              resume=args.resume, progress=not args.quiet,
                              source=args.scenario)
    if stored is None:
        if not args.quiet:
            print(f"{out} already holds this run, finished; nothing to do.")
        return 0
    manifest, summary = write_results(stored, out, {
        "seconds": round(time.time() - start, 2), "command": sys.argv,
        "fingerprint": stored.fingerprint,
        "arm_replicates": {"ran": stored.ran, "resumed": stored.skipped}},
        reports=() if args.no_report else [stage_run_report])
    stored.parts.remove()
    if not args.quiet:
        print(format_summary(summary))
        resumed = f" ({stored.skipped} arm-replicates resumed)" if stored.skipped else ""
        print(f"Wrote {len(manifest['files'])} files and manifest.json to {out} "
              f"in {time.time() - start:.0f} s{resumed}.")
    return 0


def _check_writable(out: Path) -> None:
    """Fail before a long run, not after it, if ``out`` cannot be written."""
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"--out {out}: exists and is not a directory")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ScenarioError(f"--out {out}: cannot create or write there")


def _check_memory(scenario, args, source: str, tasks: int | None = None) -> None:
    """Refuse (status 2) a run whose estimated peak memory exceeds what is available;
    not with a Dask scheduler (its workers' memory is not this machine's)."""
    from sim.experiments.resources import check_memory

    check_memory(scenario, args.workers, ignore=args.ignore_memory_check or bool(
        args.scheduler), source=source, tasks=tasks)


def _check_sweep_memory(sweep, base, args) -> None:
    """The sweep's largest design point, checked as one run on each of the sweep's workers."""
    from sim.experiments.resources import estimate
    from sim.experiments.sweeps import design_matrix, scenario_for

    design = design_matrix(sweep)
    sizing = ("district.", "curriculum.", "assessment.", "years")  # what the estimate reads
    varied = any(p.path.startswith(sizing) for p in sweep.parameters)
    points = (scenario_for(sweep, base, row, args.sweep) for row in design[:None if varied
                                                                            else 1])
    largest = max(points, key=lambda sc: estimate(sc).per_worker)
    _check_memory(largest, args, args.sweep, tasks=len(design) * sweep.replicates)


def cmd_check(args) -> int:
    sc = load_scenario(args.scenario, args.set)
    arms = ", ".join(a.label for a in sc.arms)
    print(f"{args.scenario}: OK — '{sc.name}', {sc.years} year(s), {sc.replicates} "
          f"replicate(s), arms: {arms}")
    from sim.experiments.resources import available_bytes, estimate, format_estimate

    est = estimate(sc, workers=1)
    print(f"Estimated, run serially: {format_estimate(est)}")
    free = available_bytes()
    if free is not None and est.in_all > free:
        print(f"warning: this is more than the {free / 1e9:,.1f} GB of memory available here: "
              "`plsim run` will refuse it unless given --ignore-memory-check")
    return 0


def cmd_calibrate(args) -> int:
    if args.fit:
        return _fit(args)
    if args.scenario is None:
        raise ScenarioError("calibrate: a scenario file is needed (or --fit)")
    sc = load_scenario(args.scenario, args.set)
    from sim.validation.calibration import calibration_report, format_report

    print(format_report(calibration_report(sc)))
    return 0


def _parameters_option(text: str | None):
    from sim.config.scenario import FITTED_PARAMETERS

    if text is None:
        return FITTED_PARAMETERS
    return None if text.lower() == "none" else Path(text)


def _fit(args) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ScenarioError("calibrate --fit needs Optuna: pip install 'plsim[fit]'") from None
    from sim.validation.fit import fit, format_fit, write_fitted
    from sim.validation.studies import CASE, ParameterSet, Settings, shipped

    params = ParameterSet.load(_parameters_option(args.parameters), args.set)
    case = Path(args.scenario) if args.scenario else shipped(CASE)
    if not case.is_file():
        raise ScenarioError(f"{case}: file not found")
    out = Path(args.out or ("fitted-quick.toml" if args.quick else
                            _parameters_option(None)))
    _check_writable(out.parent if str(out.parent) else Path("."))
    settings = Settings.for_fit(args.quick, args.replicates, args.workers)
    trials = args.trials or (4 if args.quick else 40)
    start = time.time()
    result = fit(params, settings, trials, args.seed, case,
                 sensitivity=not (args.quick or args.no_sensitivity), progress=True,
                 sampler=args.sampler)
    write_fitted(result, trials, out)
    print(format_fit(result))
    print(f"\nWrote {out} ({time.time() - start:.0f} s).")
    return 0


def cmd_validate(args) -> int:
    from sim.validation.studies import ParameterSet, Settings
    from sim.validation.validate import (
        as_json,
        as_markdown,
        format_table,
        update_doc,
        validate,
    )

    params = ParameterSet.load(_parameters_option(args.parameters), args.set)
    settings = Settings.make(args.quick, args.replicates, args.workers)
    if args.update_doc and not Path(args.update_doc).is_file():
        raise ScenarioError(f"--update-doc {args.update_doc}: file not found")
    start = time.time()
    outcomes = validate(params, settings, progress=not args.json, findings=not args.facts_only)
    if args.json:
        print(as_json(outcomes, params, settings))
    elif args.markdown:
        print(as_markdown(outcomes, params, settings))
    else:
        print(format_table(outcomes))
    if args.update_doc:
        try:
            update_doc(Path(args.update_doc), as_markdown(outcomes, params, settings))
        except ValueError as err:
            raise ScenarioError(str(err)) from None
    print(f"plsim validate: {time.time() - start:.0f} s", file=sys.stderr)
    return validation_status(outcomes, report_only=args.report_only, strict=args.strict)


def validation_status(outcomes, report_only: bool = False, strict: bool = False) -> int:
    """Exit status of ``plsim validate``: 1 when a calibration fact falls short (with
    ``strict``, also a seed finding), 0 otherwise or with ``report_only``.

    The facts are what the parameters are fitted to, so they are the model's gate;
    the findings are outputs, reported with their intervals whichever way they come
    out, and gating on them by default would invite tuning the model to produce them.
    """
    from sim.validation.patterns import CALIBRATION

    gating = [o for o in outcomes if strict or o.pattern.kind == CALIBRATION]
    return 0 if report_only or all(o.holds for o in gating) else 1


def cmd_sweep(args) -> int:
    from sim.experiments.folder_lock import hold
    from sim.experiments.sweeps import load_sweep, run_sweep

    sweep, base = load_sweep(args.sweep)
    _check_sweep_memory(sweep, base, args)
    _check_writable(Path(args.out))
    start = time.time()
    with hold(args.out, args.sweep):
        counts = run_sweep(sweep, base, args.out, workers=args.workers,
                           scheduler=args.scheduler, resume=args.resume,
                           progress=not args.quiet, source=args.sweep)
        if not args.no_report:
            from sim.presentation.report import REPORT, write_report

            write_report(args.out, Path(args.out) / REPORT)
    if not args.quiet:
        print(f"{sweep.name}: {counts['ran']} runs done now, {counts['skipped']} already "
              f"finished, {counts['runs']} in all; {time.time() - start:.0f} s. "
              f"Results in {args.out}")
    return 0


def cmd_report(args) -> int:
    from sim.presentation.report import default_name, write_report

    # another baseline gets its own default name: DIR/report.html is the run's own report,
    # vouched for by its manifest (write_report refuses any other file in DIR)
    out = Path(args.out) if args.out else Path(args.dir) / default_name(args.baseline)
    path = write_report(args.dir, out, args.baseline)
    print(f"Wrote {path}")
    return 0


def cmd_sensitivity(args) -> int:
    from sim.experiments.sensitivity import main_sensitivity

    return main_sensitivity(args)


def cmd_sweep_summary(args) -> int:
    from sim.experiments.sensitivity import main_sweep_summary

    return main_sweep_summary(args)


def cmd_app(args) -> int:
    from sim.presentation.assets import AssetError
    from sim.presentation.serve import serve

    try:
        serve(args.port)
    except AssetError as err:
        raise ScenarioError(str(err)) from None
    return 0


def cmd_optimize(args) -> int:
    from sim.experiments.folder_lock import hold
    from sim.experiments.optimize import format_front, load_spec, run_optimize

    problem = load_spec(args.spec)
    _check_writable(Path(args.out))
    start = time.time()
    with hold(args.out, args.spec):
        counts = run_optimize(problem, args.out, workers=args.workers,
                              scheduler=args.scheduler, resume=args.resume,
                              progress=not args.quiet)
    if not args.quiet:
        print(format_front(problem, Path(args.out)))
        print(f"\n{problem.spec.name}: {counts['ran']} candidates run now, {counts['reused']} "
              f"repeats, {counts['skipped']} already finished, {counts['candidates']} in all; "
              f"{time.time() - start:.0f} s. Results in {args.out} "
              f"(figure: {Path(args.out) / 'figures' / 'pareto.png'})")
    return 0


def cmd_discover(args) -> int:
    from sim.experiments.discover import main_discover

    return main_discover(args)


def cmd_reference(args) -> int:
    from sim.validation import reference_results as ref

    files = ref.scenario_files()
    known = {f.stem: f for f in files}
    unknown = [n for n in args.scenario if n not in known]
    if unknown:
        raise ScenarioError(f"--scenario {unknown[0]!r}: no such scenario; scenarios: "
                            f"{', '.join(known)}")
    if args.scenario:
        files = [known[n] for n in args.scenario]
    kinds = ("quick",) if args.quick else ref.KINDS
    if args.update:
        written = ref.update(files, kinds, workers=args.workers)
        print(f"Wrote {len(written)} reference file(s) in {ref.REFERENCE_DIR}; say so in the "
              "commit message.")
        return 0
    moved = ref.check(files, kinds, workers=args.workers)
    for line in moved:
        print(line)
    print(f"{len(moved)} reference number(s) moved beyond tolerance" if moved
          else "All reference numbers hold.")
    return 1 if moved else 0


def cmd_notebooks(args) -> int:
    try:
        import nbclient  # noqa: F401
        import nbconvert  # noqa: F401

        from sim.validation.notebooks import notebook_paths, render
    except ImportError as exc:
        raise ScenarioError(f"notebooks: {exc.name} is not installed; install the notebooks "
                            "extra: pip install -e '.[notebooks]'") from None
    paths = [Path(p) for p in args.notebook] or notebook_paths()
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ScenarioError(f"{missing[0]}: file not found")
    render(paths, Path(args.out), args.mode)
    return 0


def cmd_bench(args) -> int:
    from sim.experiments.bench import format_bench, run_bench

    results = run_bench(sizes=tuple(args.sizes))
    print(json.dumps(results) if args.json else format_bench(results))
    return 0


COMMANDS = {"run": cmd_run, "check": cmd_check, "calibrate": cmd_calibrate, "bench": cmd_bench,
            "app": cmd_app,
            "validate": cmd_validate,
            "sweep": cmd_sweep, "sensitivity": cmd_sensitivity,
            "sweep-summary": cmd_sweep_summary, "report": cmd_report,
            "optimize": cmd_optimize, "discover": cmd_discover, "reference": cmd_reference,
            "notebooks": cmd_notebooks, "district": cmd_district}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ScenarioError as err:
        print(f"plsim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"plsim: interrupted; {_kept(args.command)}", file=sys.stderr)
        return 130
    except BrokenProcessPool:  # a worker was killed (out of memory, say)
        print(f"plsim: error: a worker process died; {_kept(args.command)}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a folder removed underneath, ...
        where = f": {err.filename}" if err.filename else ""
        print(f"plsim: error: {err.strerror or err}{where}; {_kept(args.command)}",
              file=sys.stderr)
        return 1


def _kept(command: str) -> str:
    """What an interrupted or failed command leaves, in words."""
    return {"sweep": "finished runs are kept; use --resume",
            "run": "finished runs are kept; use --resume",
            "optimize": "finished candidates are kept; use --resume"}.get(
                command, "no results were written")


if __name__ == "__main__":
    sys.exit(main())
