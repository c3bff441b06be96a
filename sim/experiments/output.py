"""Writing a run's results: all or nothing.

Files are written into a hidden staging folder inside ``DIR``, then moved
into place with ``os.replace`` (atomic on one file system), the manifest
last. A run interrupted before the moves leaves only the hidden staging
folder, which no reader takes for results; a ``manifest.json`` means the run
finished, and its checksums say which files belong to it.

The results may be in memory (``runner.Results``) or streamed to disk
(``storage.StoredRun``, the parts of ``plsim run``): the student table is
then read one arm x replicate at a time, only the columns the summary needs,
and ``student_years.parquet`` is appended part by part, so memory stays
bounded by one part whatever the number of replicates.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.analysis.figures import draw_all
from sim.analysis.robustness import ENSEMBLE_FILE, add_ensemble_columns
from sim.analysis.summaries import (
    SUMMARY_COLUMNS,
    part_means,
    school_summary,
    summarise_replicates,
    teacher_summary,
)
from sim.experiments.executor import Executor, resolve_workers
from sim.experiments.folder_lock import STAGING_PREFIX
from sim.experiments.storage import TABLES, sha256

FIGURES = 5  # a run's figures (analysis.figures.figure_jobs): no more processes than that


def git_commit() -> str | None:
    """The source tree's git commit, when plsim runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_results(results, out_dir: str | Path, extra: dict | None = None,
                  reports: Sequence[Callable[[Path, dict], list[str]]] = (),
                  ensemble: pd.DataFrame | None = None, workers: int | None = 1):
    """Write tables, summary, figures and manifest; returns (manifest, summary).

    ``ensemble``: each member's means (``plsim run --ensemble``,
    ``analysis.robustness.member_means``): written as ``ensemble.csv``, and the summary
    gains each paired difference's interval across members and robust share.
    ``workers``: local processes that draw the figures (as ``Executor``; the same files
    whatever the number).

    ``reports``: writers called as ``write(stage, manifest)`` once the tables and
    figures are staged (``manifest`` as it will read from disk, without their own
    files); each writes into the staging folder and returns the names it wrote, which
    join the manifest's checksums and are moved into place with the rest.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    stage.mkdir()
    try:
        summary = summary_of(results)
        if ensemble is not None:
            summary = add_ensemble_columns(summary, ensemble)
        files = _write_staged(results, summary, stage, workers)  # tables, summary, figures
        if ensemble is not None:
            ensemble.to_csv(stage / ENSEMBLE_FILE, index=False, float_format="%.6g")
            files.append(ENSEMBLE_FILE)
        manifest = _manifest(results, files, stage, extra)
        for write in reports:
            written = write(stage, json.loads(json.dumps(manifest, default=_json)))
            manifest["files"].update({f: sha256(stage / f) for f in written})
            files += written
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json))
        _move_into_place(stage, out, [*files, "manifest.json"])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest, summary


def summary_of(results) -> pd.DataFrame:
    """The summary table (``summarise``), built one part at a time.

    Each part is one arm x replicate, so its replicate means are those rows
    of the whole run's; concatenated in table order, they give the same
    summary as the whole table would. Parts whose means the run's workers
    computed (a stored run's ``means``) are not read again.
    """
    have = set(results.columns("student_years"))
    columns = [c for c in SUMMARY_COLUMNS if c in have]
    known = getattr(results, "means", {})
    if not known:
        reps = [part_means(f) for f in results.frames("student_years", columns)]
    else:
        keys = results.keys()  # a stored run's parts, in table order
        reps = [known[k] if k in known else part_means(results.part("student_years", k, columns))
                for k in keys]
    return summarise_replicates(pd.concat(reps, ignore_index=True))


def known_teacher_records(results) -> list[dict] | None:
    """``teacher_records`` of the whole teacher table (arm by arm, replicate by replicate)
    from those the run's workers made for each part (a stored run's ``teacher_records``);
    None unless every part's are known."""
    known = getattr(results, "teacher_records", {})
    keys = results.keys() if known else []
    if not known or any(k not in known for k in keys):
        return None
    return [r for k in sorted(keys, key=lambda k: (k[1], k[0])) for r in known[k]]


def _write_staged(results, summary: pd.DataFrame, stage: Path,
                  workers: int | None = 1) -> list[str]:
    files = []
    for name in TABLES:
        results.write_parquet(name, stage / f"{name}.parquet")
        files.append(f"{name}.parquet")
    summary.to_csv(stage / "summary.csv", index=False, float_format="%.6g")
    teachers = results.table("teacher_years")  # small: one row per teacher-year
    schools = school_summary(results.table("school_years"))
    teacher_summary(teachers, known_teacher_records(results)).to_csv(
        stage / "teacher_summary.csv", index=False, float_format="%.6g")
    schools.to_csv(stage / "school_summary.csv", index=False, float_format="%.6g")
    with Executor(min(resolve_workers(workers), FIGURES), what="figures") as executor:
        figs = draw_all(summary, stage / "figures", teachers, schools, executor.map_unordered)
    return [*files, "summary.csv", "teacher_summary.csv", "school_summary.csv",
            *[str(Path("figures") / f.name) for f in figs]]


def _manifest(results, files: list[str], stage: Path, extra: dict | None) -> dict:
    sc = results.scenario
    return {
        "plsim_version": sim.__version__,
        "git_commit": git_commit(),
        "scenario": sc.model_dump(mode="json"),
        "seeds": results.seeds,
        "reference": {"seed_note": "statewide reference uses its own fixed seed",
                      "cut_by_grade": _finite(results.reference.cut_by_grade),
                      "fall_sd_by_grade": _finite(results.reference.fall_sd_by_grade)},
        "rows": {name: int(results.rows(name)) for name in TABLES},
        "python": platform.python_version(),
        "numpy": np.__version__, "pandas": pd.__version__,
        "files": {f: sha256(stage / f) for f in files},
        **(extra or {}),
    }


def _move_into_place(stage: Path, out: Path, files: list[str]) -> None:
    old_manifest = out / "manifest.json"
    if old_manifest.exists():  # an older run's results are about to be replaced
        old_manifest.unlink()
    moved = []
    try:
        for f in files:
            target = out / f
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / f, target)
            moved.append(target)
    except BaseException:
        for target in moved:  # a half-moved run must not pass for a complete one
            target.unlink(missing_ok=True)
        raise


def _finite(a) -> list:
    """Array as a JSON-safe list (NaN becomes null)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def _json(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
