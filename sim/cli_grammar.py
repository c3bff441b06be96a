"""The ``plsim`` command line's grammar: one table of commands (:data:`COMMANDS`), each
option that several commands share declared once (a parent parser), and the argparse
types that check a value before any command runs. ``sim.cli`` holds what each command
does; bad values exit with status 2 (``EXIT_BAD_INPUT``), as all bad input does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: same status as other bad input
        self.print_usage(sys.stderr)
        print(f"plsim: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


# --- value types -------------------------------------------------------------------------
def int_at_least(minimum: int):
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


nonneg_int, positive_int = int_at_least(0), int_at_least(1)


def port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port 1..65535, got {value}")
    return value


def share(text: str) -> float:
    """An argparse type: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}"
                                         ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


# --- options several commands share (parent parsers) ------------------------------------
def _parent() -> Parser:
    return Parser(add_help=False)


def executor_options(default_workers: int, what: str) -> Parser:
    """Where the work runs, resuming it and quiet output (run, sweep, optimize). ``what``
    names the work that a resume skips."""
    p = _parent()
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=nonneg_int, default=default_workers,
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


def workers_option(default: int) -> Parser:
    """Local processes for a command that runs many runs but resumes none."""
    p = _parent()
    p.add_argument("--workers", type=nonneg_int, default=default,
                   help=f"processes (default {default}; 1 = serial, 0 = all cores); results "
                        "do not depend on it")
    return p


def set_option(example: str = "--set district.schools=8 --set arms.floor3.floor=2") -> Parser:
    """``--set PATH=VALUE`` (repeatable): a field of the scenario or parameters overridden."""
    p = _parent()
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help=f"override a field, e.g. {example} (repeatable)")
    return p


def scenario_argument(optional_help: str | None = None) -> Parser:
    """The scenario file (TOML); optional with ``optional_help`` saying what stands in."""
    p = _parent()
    if optional_help:
        p.add_argument("scenario", nargs="?", help=optional_help)
    else:
        p.add_argument("scenario", help="scenario file (TOML)")
    return p


def memory_check_option() -> Parser:
    p = _parent()
    p.add_argument("--ignore-memory-check", action="store_true",
                   help="run even when the estimated peak memory exceeds the memory "
                        "available here (for a machine or cluster the check cannot see)")
    return p


def finished_sweep(band_default: str | None = None, arm_default: str = "the last arm"
                   ) -> Parser:
    """A finished sweep's folder and which of its rows an analysis reads."""
    p = _parent()
    p.add_argument("dir", help="a sweep's output directory")
    p.add_argument("--arm", help=f"arm (default: {arm_default})")
    p.add_argument("--year", type=positive_int, help="year (default: the last)")
    if band_default is not None:
        p.add_argument("--band", default=band_default,
                       help=f"start band (default: {band_default})")
    return p


# --- each command's own options ---------------------------------------------------------
def _run(p) -> None:
    p.add_argument("--seed", help="override the scenario's seed (a whole number >= 0)")
    p.add_argument("--replicates", help="override the number of replicates (>= 1)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html (the self-contained HTML report)")
    p.add_argument("--ensemble", metavar="FILE",
                   help="also run every member of an ensemble file (plsim calibrate "
                        "--ensemble) on the same seeds: summary.csv and the report say how "
                        "robust each comparison is across the plausible models")


def _calibrate(p) -> None:
    p.add_argument("--fit", action="store_true", help="fit the hand-set parameters to the "
                                                      "calibration facts (Optuna)")
    p.add_argument("--ensemble", action="store_true",
                   help="every parameter set consistent with all calibration facts "
                        "(history matching with Gaussian-process emulators, in waves): "
                        "writes --out (default ensemble.toml; quick: ensemble-quick.toml), "
                        "its diagnostics and a pairs plot beside it")
    p.add_argument("--quick", action="store_true", help="with --fit or --ensemble: tiny "
                                                        "districts, few trials or points, "
                                                        "for tests (not for use)")
    p.add_argument("--trials", type=positive_int, help="with --fit: trials (default 40; "
                                                       "quick 4)")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="with --fit or --ensemble: sampler seed")
    p.add_argument("--sampler", choices=("cmaes", "tpe"), default="cmaes",
                   help="with --fit: cmaes (default; a local search from the starting set) "
                        "or tpe (a global search)")
    p.add_argument("--replicates", type=positive_int,
                   help="with --fit: replicates per trial (default 4; quick 1); with "
                        "--ensemble: replicates of the members' re-check (default 4; quick 2)")
    p.add_argument("--radius", type=float, metavar="R",
                   help="with --ensemble: search the fit's box within R x each range of the "
                        "fitted set (0 < R <= 1; default 0.2, quick too; 1: the whole box)")
    p.add_argument("--members", type=positive_int,
                   help="with --ensemble: the ensemble's size (default 20; quick 6); more "
                        "members re-check more candidates (about 5 CPU-minutes each)")
    p.add_argument("--out", help="with --fit: parameters file to write (default "
                                 "sim/config/fitted.toml; quick: fitted-quick.toml); with "
                                 "--ensemble: the ensemble file (.toml)")
    p.add_argument("--parameters", help="with --fit or --ensemble: parameters file to start "
                                        "from (default the fitted set; 'none': code "
                                        "defaults)")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="with --fit: skip the local sensitivity check (quick skips it)")


def _validate(p) -> None:
    p.add_argument("--quick", action="store_true", help="small districts, few replicates "
                                                        "(under a minute; for tests)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--facts-only", action="store_true",
                   help="only the calibration facts (no seed findings): a few seconds")
    p.add_argument("--report-only", action="store_true",
                   help="exit 0 even when a calibration fact falls short")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when a seed finding falls short (by default only the "
                        "calibration facts gate: findings are outputs)")
    p.add_argument("--parameters", help="parameters file (default sim/config/fitted.toml; "
                                        "'none': the code defaults)")
    p.add_argument("--replicates", type=positive_int,
                   help="replicates per study (default 10; quick 2)")
    p.add_argument("--ensemble", metavar="FILE",
                   help="each calibration fact's spread across the members of an ensemble "
                        "file (plsim calibrate --ensemble); facts only")
    p.add_argument("--update-doc", metavar="FILE",
                   help="also write the Markdown table into FILE between the validation "
                        "markers (docs/model.md)")


def _sweep(p) -> None:
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html when the sweep is complete")
    p.add_argument("--ensemble", metavar="FILE",
                   help="also run every run under each member of an ensemble file (plsim "
                        "calibrate --ensemble) on the same seeds: sample_summary.csv gives "
                        "each sample's paired differences with their interval across members "
                        "(ens_low, ens_high) and robust_share")


def _report(p) -> None:
    p.add_argument("dir", help="the --out directory of `plsim run` or `plsim sweep`")
    p.add_argument("--out", help="HTML file to write (default: DIR/report.html, or "
                                 "DIR/report-vs-ARM.html with --baseline ARM)")
    p.add_argument("--baseline", help="arm the others are compared with (default: the first)")


def _sensitivity(p) -> None:
    p.add_argument("--outcome", help="one outcome (default: every recorded outcome)")


def _app(p) -> None:
    p.add_argument("--port", type=port, default=8765, help="port on 127.0.0.1 (default 8765)")


def _optimize(p) -> None:
    p.add_argument("spec", help="optimisation spec (TOML)")


def _discover(p) -> None:
    p.add_argument("--outcome", required=True, help="a recorded outcome, e.g. "
                                                    "program_active_share")
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--above", type=float, metavar="X", help="cases of interest: outcome > X")
    side.add_argument("--below", type=float, metavar="X", help="cases of interest: outcome < X")
    p.add_argument("--band", help="start band (default: all students)")
    p.add_argument("--min-density", type=share, default=0.8,
                   help="density a box must reach (0-1, default 0.8)")
    p.add_argument("--max-boxes", type=positive_int, default=3, help="most boxes (default 3)")
    p.add_argument("--peel-alpha", type=share, default=0.05,
                   help="share peeled per step (default 0.05)")
    p.add_argument("--mass-min", type=share, default=0.05,
                   help="smallest box, share of all runs (default 0.05)")
    p.add_argument("--min-runs", type=positive_int, default=10,
                   help="smallest box, in runs (default 10; a smaller box is flagged)")


def _reference(p) -> None:
    p.add_argument("--update", action="store_true",
                   help="recompute and write results/reference/ (deliberately: say so in the "
                        "commit message)")
    p.add_argument("--quick", action="store_true",
                   help="only the quick runs (the ones the tests re-run)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="only this scenario, e.g. floor_strategies (repeatable; default all)")


def _notebooks(p) -> None:
    p.add_argument("notebook", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    p.add_argument("--mode", choices=["quick", "full"], default="full",
                   help="full: the shipped scenarios (default); quick: small, as in the tests")
    p.add_argument("--out", default="results/notebooks", help="output directory")


def _bench(p) -> None:
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: results (one per size), end_to_end, sweep, "
                        "goals (each with its target and whether it is met)")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[100_000],
                   metavar="STUDENTS",
                   help="district sizes (default 100000, 99,900 students; 10000 and 1000000 "
                        "are opt-in: the latter about 10 minutes on one free core)")
    p.add_argument("--sweep-runs", type=nonneg_int, default=8, metavar="N",
                   help="runs of sweep_floor_sobol's 1,024-sample design measured to price a "
                        "1,000-sample Sobol (default 8; whole design points, each with both "
                        "replicates: N rounded down to even, at least 2; 0 leaves it out)")
    p.add_argument("--no-end-to-end", action="store_true",
                   help="leave out floor_strategies end to end (2 replicates, one core: "
                        "about 30 CPU-seconds)")


def _district_import(p) -> None:
    p.add_argument("csv", help="the district's aggregates (CSV)")
    p.add_argument("--out", help="scenario to write, replaced if it exists (default: "
                                 "NAME.toml in the current folder, NAME the CSV's)")
    p.add_argument("--seed", type=nonneg_int, default=1, help="the scenario's seed (default 1)")
    p.add_argument("--replicates", type=positive_int, default=4,
                   help="replicates of the fit and of the scenario (default 4)")


def _district(p) -> None:
    """``plsim district import FILE.csv``: a scenario fitted to a district's aggregates."""
    sub = p.add_subparsers(dest="district_command", required=True, parser_class=Parser)
    i = sub.add_parser("import", help="fit a scenario to a CSV of per-school, per-grade "
                                      "enrolment and share proficient (aggregates only)",
                       description="Columns: school, grade, enrolled, proficient_share "
                                   "(0-1), optional fall_mean, fall_sd; one row per school "
                                   "and tested grade, at least 10 students a row. Writes the "
                                   "scenario and its fit table (OUT.fit.csv) beside it.",
                       parents=[workers_option(1)])
    _district_import(i)


def _nothing(p) -> None:
    """A command with only the shared options."""


class Command(NamedTuple):
    """One row of the command line: its name, its line of help, the shared options it
    takes (parent parsers, made fresh for each parser) and its own options."""

    name: str
    help: str
    shared: Callable[[], list[Parser]]
    own: Callable[[argparse.ArgumentParser], None]


COMMANDS: list[Command] = [
    Command("run", "run a scenario and write its results",
            lambda: [scenario_argument(), executor_options(1, "finished arm x replicate runs"),
                     set_option(), memory_check_option()], _run),
    Command("check", "validate a scenario file without running it (and estimate its memory "
                     "and time)", lambda: [scenario_argument(), set_option()], _nothing),
    Command("calibrate", "measure the calibration facts on a scenario, or fit the hand-set "
                         "parameters to them (--fit)",
            lambda: [scenario_argument("scenario file (TOML); with --fit, the case district "
                                       "(default: tepp_case_study)"),
                     set_option(), workers_option(2)], _calibrate),
    Command("validate", "every calibration fact and seed finding of the design brief, each "
                        "holds / falls short / undecided",
            lambda: [set_option("--set learning.base_rate=0.5"), workers_option(2)], _validate),
    Command("sweep", "run a scenario sweep (local processes or a Dask cluster)",
            lambda: [executor_options(0, "finished runs"), memory_check_option()], _sweep),
    Command("report", "one self-contained HTML report of a finished run or sweep",
            list, _report),
    Command("sensitivity", "Sobol or Morris indices of a finished sweep",
            lambda: [finished_sweep("all students")], _sensitivity),
    Command("sweep-summary", "each outcome against each parameter, with figures",
            lambda: [finished_sweep(arm_default="every arm")], _nothing),
    Command("app", "the web page to compare strategies (127.0.0.1 only)", list, _app),
    Command("optimize", "many-objective search over policy levers (NSGA-II): the Pareto "
                        "frontier, with the shipped strategies",
            lambda: [executor_options(0, "finished candidates (replayed, not rerun)")],
            _optimize),
    Command("discover", "PRIM scenario discovery on a finished sweep: boxes of parameter "
                        "space where an outcome holds", lambda: [finished_sweep()], _discover),
    Command("reference", "check (or --update) the committed reference results of the "
                         "shipped scenarios", lambda: [workers_option(1)], _reference),
    Command("notebooks", "execute the notebooks and render them to HTML", list, _notebooks),
    Command("bench", "engine versus per-agent Mesa speed and memory", list, _bench),
    Command("district", "bring your own district: build a scenario from the aggregates a "
                        "district publishes", list, _district),
]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subcommand per row of :data:`COMMANDS`."""
    p = Parser(prog="plsim", description="Personalized learning under grade-level "
                                         "accountability: an agent-based simulation.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.own(sub.add_parser(command.name, help=command.help, parents=command.shared()))
    return p
