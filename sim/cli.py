"""Command line: what each ``plsim`` command does (``cmd_*``, :data:`HANDLERS`); the
commands and their options are declared in ``sim.cli_grammar`` (one table).

Bad input (a scenario or option that fails validation, a missing or
unreadable file, text that is not TOML) prints one message naming the file,
the field and what is allowed, and exits with status 2 before anything is
written.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

from sim.cli_grammar import EXIT_BAD_INPUT, build_parser
from sim.config.scenario import ScenarioError, load_scenario, shorten


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
    members = _ensemble_scenarios(args, sc)  # a bad ensemble file stops here, before a run
    out = Path(args.out)
    _check_writable(out)
    _check_memory(sc, args, args.scenario)
    with hold(out, args.scenario):
        return _run_into(args, sc, out, members)


def _ensemble_scenarios(args, sc) -> list | None:
    """``--ensemble FILE``: every member's scenario, checked; None without the option."""
    if not getattr(args, "ensemble", None):
        return None
    from sim.config.ensemble import read_ensemble
    from sim.experiments.ensemble_runs import member_scenarios

    ens = read_ensemble(args.ensemble)
    return member_scenarios(args.scenario, ens, args.set, sc.seed, sc.replicates)


def _run_into(args, sc, out: Path, members: list | None = None) -> int:
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
    extra, ensemble = {}, None
    if members:
        from sim.experiments.ensemble_runs import run_members

        ensemble = run_members(members, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.quiet)
        extra["ensemble"] = {"file": str(args.ensemble), "members": len(members)}
    manifest, summary = write_results(stored, out, {
        "seconds": round(time.time() - start, 2), "command": sys.argv,
        "fingerprint": stored.fingerprint,
        "arm_replicates": {"ran": stored.ran, "resumed": stored.skipped}, **extra},
        reports=() if args.no_report else [functools.partial(
            stage_run_report, workers=None if args.scheduler else args.workers)],
        ensemble=ensemble, workers=None if args.scheduler else args.workers)
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
    if args.fit and args.ensemble:
        raise ScenarioError("calibrate: --fit and --ensemble: give one of them")
    if args.ensemble:
        return _ensemble(args)
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


def _ensemble(args) -> int:
    """``plsim calibrate --ensemble``: history matching to the calibration facts."""
    from sim.validation.ensemble import (
        FULL,
        QUICK,
        Plan,
        build_ensemble,
        format_diagnostics,
        write_ensemble,
    )
    from sim.validation.studies import CASE, ParameterSet, Settings, shipped

    params = ParameterSet.load(_parameters_option(args.parameters), args.set)
    case = Path(args.scenario) if args.scenario else shipped(CASE)
    if not case.is_file():
        raise ScenarioError(f"{case}: file not found")
    out = Path(args.out or ("ensemble-quick.toml" if args.quick else "ensemble.toml"))
    if out.suffix.lower() != ".toml":
        raise ScenarioError(f"--out {out}: an ensemble file name ends in .toml")
    if out.exists() and not out.is_file():
        raise ScenarioError(f"--out {out}: exists and is not a file")
    _check_writable(out.parent)
    design = Settings.for_fit(args.quick, 1, 1)  # one replicate a design point, serial
    check = (Settings.make(True, args.replicates or 2, 1) if args.quick
             else Settings.for_fit(False, args.replicates or 4, 1))
    plan = QUICK if args.quick else FULL
    if args.members:
        plan = (replace(plan, members=args.members, batch=max(plan.batch, args.members))
                if args.quick else Plan.full(args.members, plan.radius))
    if args.radius is not None:
        if not 0 < args.radius <= 1:
            raise ScenarioError(f"--radius {args.radius:g}: a share of each parameter's "
                                "range, above 0 and at most 1")
        plan = replace(plan, radius=args.radius)
    result = build_ensemble(params, plan, design, check, case,
                            args.seed, args.workers, progress=True)
    print(format_diagnostics(result))
    if not result.members:
        print(f"\nNo candidate held every calibration fact; {out} not written.",
              file=sys.stderr)
        return 1
    written = write_ensemble(result, out)
    print(f"\nWrote {', '.join(str(p) for p in written)} ({result.seconds:.0f} s).")
    return 0


def _validate_ensemble(args) -> int:
    """``plsim validate --ensemble FILE``: each calibration fact's spread across members."""
    from sim.config.ensemble import read_ensemble
    from sim.validation.ensemble import ensemble_spread, format_spread
    from sim.validation.studies import ParameterSet, Settings

    ens = read_ensemble(args.ensemble)
    params = ParameterSet.load(_parameters_option(args.parameters), args.set)
    settings = Settings.make(args.quick, args.replicates, 1)
    start = time.time()
    ts, values, holds = ensemble_spread(ens, params, settings, args.workers)
    print(format_spread(ts, values, holds, args.ensemble))
    print(f"plsim validate --ensemble: {time.time() - start:.0f} s", file=sys.stderr)
    return 0 if args.report_only or holds.all() else 1


def cmd_validate(args) -> int:
    if args.ensemble:
        return _validate_ensemble(args)
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
    members = None
    if args.ensemble:  # a bad ensemble file stops here, before a run
        from sim.experiments.sweep_ensemble import load_members

        members = load_members(sweep, args.sweep, args.ensemble)
    _check_sweep_memory(sweep, base, args)
    _check_writable(Path(args.out))
    start = time.time()
    with hold(args.out, args.sweep):
        counts = run_sweep(sweep, base, args.out, workers=args.workers,
                           scheduler=args.scheduler, resume=args.resume,
                           progress=not args.quiet, source=args.sweep, ensemble=members)
        if not args.no_report:
            from sim.presentation.report import REPORT, write_report

            write_report(args.out, Path(args.out) / REPORT,
                         workers=None if args.scheduler else args.workers)
    if not args.quiet:
        print(f"{sweep.name}: {counts['ran']} runs done now, {counts['skipped']} already "
              f"finished, {counts['runs']} in all; {time.time() - start:.0f} s. "
              f"Results in {args.out}")
        if members:
            print(f"Ensemble ({members.ensemble.size} members): {counts['member_ran']} member "
                  f"runs done now, {counts['member_skipped']} already finished; each "
                  "sample's differences across members in sample_summary.csv")
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
    from sim.experiments.bench import bench_report, format_bench

    report = bench_report(sizes=tuple(args.sizes), sweep_runs=args.sweep_runs,
                          end_to_end=not args.no_end_to_end)
    print(json.dumps(report) if args.json else format_bench(report))
    return 0


# each command of sim.cli_grammar.COMMANDS, by name: the function that carries it out
HANDLERS = {
    "run": cmd_run, "check": cmd_check, "calibrate": cmd_calibrate,
    "validate": cmd_validate, "sweep": cmd_sweep, "report": cmd_report,
    "sensitivity": cmd_sensitivity, "sweep-summary": cmd_sweep_summary, "app": cmd_app,
    "optimize": cmd_optimize, "discover": cmd_discover, "reference": cmd_reference,
    "notebooks": cmd_notebooks, "bench": cmd_bench, "district": cmd_district,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
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
