"""Reference results: the few numbers a reader would quote from each shipped scenario.

``results/reference/<scenario>.json`` (committed) holds, for every scenario file
in ``scenarios/`` (sweep files excepted), two runs at the file's fixed seed:

* ``full`` — the scenario as shipped: the numbers ``plsim run FILE`` prints and
  writes to ``summary.csv`` (and ``teacher_summary.csv``, ``school_summary.csv``);
* ``quick`` — a small version (two replicates; one school, two where leaders or a
  review act; at most two classes per grade, all of them where teachers teach several
  sections; one year, three with a program review; no burn-in year; a smaller
  statewide reference), which the tests re-run.

Each run stores its exact ``plsim run`` command, and per metric its value, its 95%
interval across replicates (for the reader) and the tolerance beyond which a change
of the model counts as moving the number (absolute, in the metric's units:
``TOLERANCE``). Metrics, all in the last year of the run: per arm, growth (SD of the
state's fall scores) and the share proficient, for all program-grade students and by
starting band (bands with at least ``MIN_BAND_STUDENTS`` students); the share of days
off the common pace where teachers are held to their capacity of paces; and where
the scenario is about accountability (leaders, a program review, or evaluation
designs that differ between arms), the teachers' stress, exit rate, correlation of
value-added estimates with true effects and misclassification, and the shares of
schools with a test-prep window, with tutoring and still running the program.

Regenerate deliberately with ``make reference`` (``plsim reference --update``) and
say so in the commit message; ``plsim reference --check`` compares without writing.
Runs are deterministic for a seed, so the quick references are exact on one machine;
the tolerances say how far a number may move before the test calls it moved.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import sim
from sim.analysis.summaries import ALL, replicate_means, school_summary, teacher_summary
from sim.config.scenario import Scenario, load_scenario, read_toml
from sim.experiments.output import git_commit
from sim.experiments.runner import run
from sim.experiments.storage import atomic_write
from sim.validation.claims import estimate

KINDS = ("full", "quick")
REFERENCE_DIR = Path("results") / "reference"
SCENARIO_DIR = Path("scenarios")
REGENERATE = "make reference  (= plsim reference --update)"
TOLERANCE = {  # absolute, in each metric's units
    "growth_sd": 0.02,             # SD of the state's fall scores
    "proficient": 0.02,            # share (2 percentage points)
    "off_pace_share": 0.02,        # share of days
    "stress": 0.02,                # 0-1
    "exit_rate": 0.02,             # share of teacher-years
    "corr_estimate_true": 0.05,    # correlation
    "misclassified": 0.03,         # share of teacher-years
    "window_share": 0.05,          # share of schools
    "tutoring_share": 0.05,
    "program_active_share": 0.05,
}
STUDENT_METRICS = ("growth_sd", "proficient")
TEACHER_METRICS = ("stress", "exit_rate", "corr_estimate_true", "misclassified")
SCHOOL_METRICS = ("window_share", "tutoring_share", "program_active_share")
MIN_BAND_STUDENTS = 10  # mean students per replicate for a band's numbers to be kept
QUICK_REPLICATES = 2


@dataclass(frozen=True)
class Settings:
    """How one reference run is made: a scenario file, overrides and replicates."""

    file: Path  # relative to root, as the command shows it
    kind: str
    overrides: tuple[str, ...] = ()
    replicates: int | None = None
    root: Path = Path(".")

    def scenario(self) -> Scenario:
        return load_scenario(self.root / self.file, list(self.overrides),
                             replicates=self.replicates)

    def command(self) -> str:
        """The ``plsim run`` command that gives the same numbers."""
        parts = ["plsim", "run", self.file.as_posix(), "--out", "DIR"]
        if self.replicates is not None:
            parts += ["--replicates", str(self.replicates)]
        for o in self.overrides:
            parts += ["--set", o]
        return shlex.join(parts)


def scenario_files(root: Path = Path(".")) -> list[Path]:
    """The shipped scenario files (``scenarios/*.toml`` that are not sweeps), relative
    to ``root``."""
    files = sorted((root / SCENARIO_DIR).glob("*.toml"))
    return [f.relative_to(root) for f in files if "base" not in read_toml(f)]


def quick_overrides(data: dict) -> tuple[str, ...]:
    """Overrides that make a scenario small (see the module docstring)."""
    district = data.get("district", {})
    reviewed = [a["label"] for a in data["arms"] if a.get("review") is not None]
    years = min(int(data.get("years", 1)), 3 if reviewed else 1)
    adaptive = [a for a in data["arms"] if a.get("leaders") is not None] + reviewed
    schools = 2 if adaptive else 1  # shares of schools need more than one
    out = [f"district.schools={min(int(district.get('schools', 5)), schools)}"]
    if all(int(a.get("sections", 1)) == 1 for a in data["arms"]):  # sections need their lines
        out.append(f"district.classes_per_grade="
                   f"{min(int(district.get('classes_per_grade', 4)), 2)}")
    out += [f"years={years}", "calendar.burn_in_years=0",
           f"assessment.reference_students_per_grade="
           f"{min(int(data.get('assessment', {}).get('reference_students_per_grade', 3000)), 300)}"]
    for arm in data["arms"]:
        if arm.get("review") is not None:
            after = min(int(arm["review"].get("after_years", 3)), max(1, years - 1))
            out.append(f"arms.{arm['label']}.review.after_years={after}")
    return tuple(out)


def settings(file: Path, kind: str, root: Path = Path(".")) -> Settings:
    """The settings of the ``full`` or ``quick`` reference run of a scenario file."""
    if kind == "full":
        return Settings(Path(file), kind, root=root)
    if kind == "quick":
        return Settings(Path(file), kind, quick_overrides(read_toml(root / file)),
                        QUICK_REPLICATES, root)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _is_accountability(sc: Scenario) -> bool:
    arms = sc.arms
    return (any(a.leaders is not None or a.review is not None for a in arms)
            or len({a.evaluation for a in arms}) > 1)


SHARES = {"proficient", "off_pace_share", "exit_rate", "misclassified", *SCHOOL_METRICS}


def _metric(value: float, lo: float, hi: float, name: str) -> dict:
    if name in SHARES:  # a share's interval stays within [0, 1]
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    clean = [None if (x is None or math.isnan(x)) else round(float(x), 6) for x in (value, lo, hi)]
    return {"value": clean[0], "lo": clean[1], "hi": clean[2], "tolerance": TOLERANCE[name]}


def metrics_of(results) -> dict[str, dict]:
    """The quoted numbers of a run: ``"arm | band | metric"`` -> value, interval, tolerance."""
    sc = results.scenario
    year = int(sc.years)
    out: dict[str, dict] = {}
    student = list(STUDENT_METRICS)
    if any(a.limit_paces for a in sc.arms):
        student.append("off_pace_share")
    reps = replicate_means(results.student_years, student)
    reps = reps[reps.year == year]
    for (arm, band), g in reps.groupby(["arm", "start_band"], observed=True, sort=True):
        if band != ALL and g.n_students.mean() < MIN_BAND_STUDENTS:
            continue
        for m in student if band == ALL else STUDENT_METRICS:
            e = estimate(g[m], m)
            if e.n:
                out[f"{arm} | {band} | {m}"] = _metric(e.mean, e.lo, e.hi, m)
    if _is_accountability(sc):
        teachers = teacher_summary(results.teacher_years)
        for r in teachers.itertuples():
            for m in TEACHER_METRICS:
                mean = getattr(r, m)
                if not math.isnan(mean):
                    out[f"{r.arm} | teachers | {m}"] = _metric(
                        mean, getattr(r, f"{m}_lo"), getattr(r, f"{m}_hi"), m)
        schools = school_summary(results.school_years)
        for r in schools[schools.year == year].itertuples():
            for m in SCHOOL_METRICS:
                out[f"{r.arm} | schools | {m}"] = _metric(
                    getattr(r, m), getattr(r, f"{m}_lo"), getattr(r, f"{m}_hi"), m)
    return out


def compute(s: Settings, workers: int = 1) -> dict:
    """Run one reference and return its record (settings, command, metrics)."""
    sc = s.scenario()
    start = time.time()
    results = run(sc, workers=workers)
    return {"command": s.command(), "seed": sc.seed, "replicates": sc.replicates,
            "overrides": list(s.overrides), "year": int(sc.years),
            "plsim_version": sim.__version__, "git_commit": git_commit(),
            "seconds": round(time.time() - start, 1), "metrics": metrics_of(results)}


def reference_path(file: Path, root: Path = Path(".")) -> Path:
    return root / REFERENCE_DIR / f"{Path(file).stem}.json"


def load(file: Path, root: Path = Path(".")) -> dict | None:
    """The stored reference of a scenario file (None if there is none)."""
    p = reference_path(file, root)
    return json.loads(p.read_text()) if p.is_file() else None


def compare(expected: dict, got: dict, label: str = "") -> list[str]:
    """Readable differences between two runs' metrics beyond the stored tolerances:
    one line per metric that moved, appeared or disappeared."""
    lines = []
    old, new = expected["metrics"], got["metrics"]
    for key, e in old.items():
        g = new.get(key)
        if g is None:
            lines.append(f"{label}{key}: expected {e['value']}, got nothing (metric gone)")
            continue
        a, b, tol = e["value"], g["value"], e["tolerance"]
        if (a is None) != (b is None) or (a is not None and abs(a - b) > tol):
            moved = "" if a is None or b is None else f" (moved {b - a:+.4f})"
            lines.append(f"{label}{key}: expected {a}, got {b}, tolerance {tol}{moved}")
    for key in new.keys() - old.keys():
        lines.append(f"{label}{key}: new metric {new[key]['value']} (no reference)")
    return lines


def update(files: list[Path], kinds=KINDS, root: Path = Path("."), workers: int = 1,
           log=print) -> list[Path]:
    """Recompute the references of ``files`` (the runs of ``kinds``; others kept) and write
    them atomically; returns the files written."""
    written = []
    for file in files:
        record = load(file, root) or {}
        runs = dict(record.get("runs", {}))
        for kind in kinds:
            runs[kind] = compute(settings(file, kind, root), workers)
            log(f"{Path(file).stem} ({kind}): {len(runs[kind]['metrics'])} numbers, "
                f"{runs[kind]['seconds']} s")
        record = {"scenario": Path(file).stem, "file": Path(file).as_posix(),
                  "regenerate": REGENERATE,
                  "note": "Committed reference numbers of this scenario at its fixed seed. "
                          "A change of the model that moves one beyond its tolerance fails "
                          "tests/test_reference_results.py; regenerate deliberately and say "
                          "so in the commit message.",
                  "runs": {k: runs[k] for k in KINDS if k in runs}}
        path = reference_path(file, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _one_metric_a_line(json.dumps(record, indent=1)) + "\n"
        atomic_write(path, lambda p, text=text: p.write_text(text))
        written.append(path)
    return written


def _one_metric_a_line(text: str) -> str:
    """JSON with each metric's value, interval and tolerance on the metric's own line."""
    return re.sub(r'\{\s+"value": ([^,]+),\s+"lo": ([^,]+),\s+"hi": ([^,]+),\s+'
                  r'"tolerance": ([^\s}]+)\s+\}',
                  r'{"value": \1, "lo": \2, "hi": \3, "tolerance": \4}', text)


def check(files: list[Path], kinds=KINDS, root: Path = Path("."), workers: int = 1,
          log=print) -> list[str]:
    """Re-run the references of ``files`` and return the differences (empty: all hold)."""
    lines = []
    for file in files:
        record = load(file, root)
        if record is None:
            lines.append(f"{file}: no reference at {reference_path(file, root)}; run "
                         f"`{REGENERATE}`")
            continue
        for kind in kinds:
            if kind not in record["runs"]:
                lines.append(f"{file}: no {kind} reference; run `{REGENERATE}`")
                continue
            got = compute(settings(file, kind, root), workers)
            diff = compare(record["runs"][kind], got, f"{Path(file).stem} ({kind}): ")
            log(f"{Path(file).stem} ({kind}): {len(diff)} moved")
            lines += diff
    return lines
