"""``plsim validate``: every calibration fact and seed finding, on one parameter set.

``validate(params, settings)`` runs the studies (``sim.validation.studies``),
measures every pattern of ``sim.validation.facts`` and
``sim.validation.findings`` per replicate and returns one ``Outcome`` each:
the mean across replicates, its 95% interval and whether the pattern holds.
``format_table``, ``as_json`` and ``as_markdown`` render them; ``update_doc``
rewrites the marked block of ``docs/model.md``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from sim.config.scenario import ScenarioError
from sim.experiments.storage import atomic_write
from sim.validation.facts import facts
from sim.validation.findings import findings as seed_findings
from sim.validation.patterns import (
    CALIBRATION,
    FALLS_SHORT,
    HOLDS,
    UNDECIDED,
    Outcome,
    outcome,
)
from sim.validation.studies import (
    CASE,
    TIMELINE,
    ParameterSet,
    Settings,
    case_district,
    run_study,
    shipped,
    statewide,
    study,
    tables,
    timeline,
    variance_district,
)

DOC_BEGIN = "<!-- plsim validate: begin (regenerate with `make docs-validation`) -->"
DOC_END = "<!-- plsim validate: end -->"


def fact_runs(params: ParameterSet, settings: Settings, case: Path | None = None,
              progress: bool = False, timeline_path: Path | None = None) -> dict:
    """The fact districts' results: statewide, variance, case, and the timeline of the
    program as implemented (``logics_collide``)."""
    case = case or shipped(CASE)
    builds = (("statewide", statewide, case), ("variance", variance_district, case),
              ("case", case_district, case),
              ("timeline", timeline, timeline_path or shipped(TIMELINE)))
    out = {}
    for name, build, path in builds:
        t = time.time()
        out[name] = run_study(build(params, settings, path), settings)
        _say(progress, f"{name} district: {time.time() - t:.0f} s")
    return out


def fact_outcomes(runs: dict, quick: bool) -> list[Outcome]:
    """Every calibration fact measured on the fact districts' results."""
    out = []
    for f in facts():
        res = runs[f.study]
        out.append(outcome(f.pattern, f.values(getattr(res, f.table), res.reference), quick))
    return out


def finding_outcomes(params: ParameterSet, settings: Settings, folder: Path | None = None,
                     progress: bool = False) -> list[Outcome]:
    """Every seed finding, each scenario run once with the arms its findings need."""
    fs = seed_findings()
    arms: dict[str, list[str]] = {}
    for f in fs:
        need = arms.setdefault(f.scenario, [])
        need += [a for a in f.arms if a not in need]
    results, problems = {}, {}
    for name, labels in arms.items():
        t = time.time()
        try:
            sc = study(shipped(name, folder), params, settings, tuple(labels))
        except ScenarioError as err:  # a scenario changed under us: report, do not crash
            problems[name] = str(err)
            continue
        results[name] = run_study(sc, settings)
        _say(progress, f"{name}: {time.time() - t:.0f} s")
    out = []
    for f in fs:
        if f.scenario in problems:
            out.append(outcome(f.pattern, [], settings.quick, problems[f.scenario]))
            continue
        res = results[f.scenario]
        try:
            values = f.values(tables(res), res.reference)
            note = ""
        except KeyError as err:
            values, note = [], f"not measurable: {err}"
        out.append(outcome(f.pattern, values, settings.quick, note))
    return out


def validate(params: ParameterSet, settings: Settings, progress: bool = False,
             findings: bool = True) -> list[Outcome]:
    """Every pattern: the calibration facts, then (unless ``findings`` is false) the seed
    findings."""
    out = fact_outcomes(fact_runs(params, settings, progress=progress), settings.quick)
    if findings:
        out += finding_outcomes(params, settings, progress=progress)
    return out


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(f"plsim validate: {text}", file=sys.stderr, flush=True)


# --- rendering ----------------------------------------------------------------------------
def _fmt(x) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:+.3f}" if abs(x) < 10 else f"{x:+.1f}"


def _row(o: Outcome) -> tuple[str, ...]:
    p = o.pattern
    ci = "" if o.ci_low != o.ci_low else f"[{_fmt(o.ci_low)}, {_fmt(o.ci_high)}]"
    return (p.kind, p.name, p.target_text(), _fmt(o.value), ci, o.verdict)


def format_table(outcomes: list[Outcome]) -> str:
    """A plain-text table, one line per pattern, and a count."""
    head = ("kind", "pattern", "target", "value", "95% interval", "")
    rows = [head] + [_row(o) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", summary_line(outcomes)]
    notes = [f"  {o.pattern.name}: {o.note}" for o in outcomes if o.note]
    if notes:
        lines += ["Notes:", *notes]
    if any(o.quick for o in outcomes):
        lines.append("Quick run: small districts, few replicates; a fact holds when its interval "
                     "overlaps the band; a finding is judged by its interval, as in a full run, "
                     "so many are undecided. Not for conclusions.")
    return "\n".join(lines)


def summary_line(outcomes: list[Outcome]) -> str:
    facts_ = [o for o in outcomes if o.pattern.kind == CALIBRATION]
    finds = [o for o in outcomes if o.pattern.kind != CALIBRATION]
    short = sum(o.verdict == FALLS_SHORT for o in finds)
    open_ = sum(o.verdict == UNDECIDED for o in finds)
    return (f"{sum(o.holds for o in facts_)} of {len(facts_)} calibration facts hold; "
            f"{sum(o.holds for o in finds)} of {len(finds)} seed findings hold"
            + (f", {short} fall{'s' if short == 1 else ''} short" if short else "")
            + (f", {open_} undecided (the interval cannot tell)" if open_ else "") + ".")


def as_json(outcomes: list[Outcome], params: ParameterSet, settings: Settings) -> str:
    return json.dumps({"patterns": [o.as_dict() for o in outcomes],
                       "quick": settings.quick, "replicates": settings.replicates,
                       "parameters": params.source, "overrides": params.overrides},
                      indent=1)


def as_markdown(outcomes: list[Outcome], params: ParameterSet, settings: Settings) -> str:
    """The validation table in Markdown, with what produced it."""
    commit = _git_commit()
    lines = [f"Output of `plsim validate{' --quick' if settings.quick else ''}` "
             f"({settings.replicates} replicates per study; parameters: "
             f"`{Path(params.source).name if params.source != 'code defaults' else params.source}`"
             + (f"; code at commit `{commit}`" if commit else "") + "):", "",
             "| kind | pattern | source | target | value | 95% interval | |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        kind, name, target, value, ci, verdict = _row(o)
        cells = [kind, name, o.pattern.source, target, value, ci,
                 f"**{verdict}**" if verdict != HOLDS else verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", summary_line(outcomes)]
    values = [f"`{sec}.{k} = {v:g}`" for sec, t in sorted(params.tables.items())
              for k, v in sorted(t.items()) if isinstance(v, int | float)]
    if values:
        lines += ["", f"Parameter values of `{Path(params.source).name}` (over the code "
                      "defaults of §9): " + ", ".join(values) + "."]
    if params.overrides:
        lines += ["", "Overrides: " + ", ".join(f"`{o}`" for o in params.overrides) + "."]
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def update_doc(path: Path, block: str) -> None:
    """Replace the text between the validation markers of ``path`` (written atomically)."""
    text = Path(path).read_text(encoding="utf-8")
    pattern = re.compile(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no block between '{DOC_BEGIN}' and '{DOC_END}'")
    new = pattern.sub(lambda _m: f"{DOC_BEGIN}\n{block}\n{DOC_END}", text)
    atomic_write(Path(path), lambda tmp: tmp.write_text(new, encoding="utf-8"))
