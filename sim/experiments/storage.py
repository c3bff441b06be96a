"""Writing files so that a reader never sees half of one; a run's parts on disk.

Every file plsim writes is written under a hidden temporary name in the same
folder and renamed into place with ``os.replace`` (atomic on one file system).

``plsim run`` streams each finished arm x replicate to ``OUT/.parts/``
(``RunParts``), so memory holds only the runs in flight and ``--resume``
skips what is done; ``StoredRun`` reads those parts back one at a time to
build the run's tables, summary and figures (``sim.experiments.output``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from sim.config.scenario import ScenarioError
from sim.district.cache import code_version


def resuming_into(out: Path, resume: bool, source: str, what: str) -> bool:
    """Check an output folder before anything is written; True when ``resume`` continues
    the ``what`` (run, sweep, study) already in it.

    Raises ScenarioError naming ``source`` when ``out`` is a file, or holds something
    and ``resume`` was not asked for.
    """
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"{source}: --out {out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ScenarioError(f"{source}: --out {out} is not empty; use --resume to continue "
                                f"the {what} there, or choose another directory")
        return True
    return False


def save_figure(fig, path: Path) -> Path:
    """Lay out a matplotlib figure, write it atomically as a PNG (110 dpi), close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``target``, then rename it to ``target``."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- a run's arm x replicate parts ------------------------------------------------------
TABLES = ("student_years", "teacher_years", "school_years")
PARTS_DIR = ".parts"  # hidden: no reader takes an unfinished run for results
PLAN = "plan.json"
PART = re.compile(r"r(\d{4})-a(\d{3})\.parquet")


def part_name(replicate: int, arm: int) -> str:
    return f"r{replicate:04d}-a{arm:03d}.parquet"


def run_fingerprint(scenario) -> str:
    """SHA-256 of what a run's parts depend on: the scenario (all but its number of
    replicates: a part is the same whatever their count) and the engine's code version."""
    spec = scenario.model_dump(mode="json")
    spec.pop("replicates", None)
    blob = json.dumps({"scenario": spec, "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class RunParts:
    """The finished arm x replicate parts of a run, under ``OUT/.parts/``::

        .parts/plan.json                         fingerprint and scenario of the run
        .parts/<table>/rRRRR-aAAA.parquet        one per table, replicate and arm

    Each file is written atomically, the school table last: a part is
    finished when all three tables are there, so an interrupted run loses
    only the parts in flight.
    """

    def __init__(self, out: Path, scenario):
        self.out, self.dir, self.scenario = Path(out), Path(out) / PARTS_DIR, scenario

    @classmethod
    def open(cls, out, scenario, resume: bool, source: str = "<scenario>") -> RunParts | None:
        """Check or create ``out`` for this run; None if it already holds it, finished.

        Raises:
            ScenarioError: ``out`` is a file; not empty without ``resume``; or with
                ``resume``, holds another run or nothing to resume.
        """
        out = Path(out)
        parts = cls(out, scenario)
        fingerprint = run_fingerprint(scenario)
        if resuming_into(out, resume, source, "run"):
            return parts._check_resumable(fingerprint, source)
        try:
            for name in TABLES:
                (parts.dir / name).mkdir(parents=True, exist_ok=True)
            plan = {"fingerprint": fingerprint, "scenario": scenario.model_dump(mode="json")}
            atomic_write(parts.dir / PLAN, lambda p: p.write_text(json.dumps(plan, indent=2)))
        except OSError as exc:
            raise ScenarioError(f"{source}: --out {out}: cannot write there "
                                f"({exc.strerror})") from None
        return parts

    def _check_resumable(self, fingerprint: str, source: str) -> RunParts | None:
        out, plan = self.out, self.dir / PLAN
        if plan.exists():
            old = _read_json(plan, "fingerprint", f"{source}: --out {out}: {PARTS_DIR}/{PLAN}")
            if old["fingerprint"] != fingerprint:
                raise ScenarioError(f"{source}: --out {out} holds an unfinished run of another "
                                    f"scenario ('{old.get('scenario', {}).get('name')}') or "
                                    "plsim version; cannot resume it")
            for name in TABLES:
                (self.dir / name).mkdir(parents=True, exist_ok=True)
            return self
        manifest = out / "manifest.json"
        if manifest.exists():
            old = _read_json(manifest, "scenario", f"{source}: --out {out}: manifest.json")
            if (old.get("fingerprint") == fingerprint
                    and old["scenario"].get("replicates") == self.scenario.replicates):
                return None  # finished already: nothing to do
            raise ScenarioError(f"{source}: --out {out} holds a finished run of another "
                                "scenario or number of replicates; choose another directory")
        raise ScenarioError(f"{source}: --out {out} holds no plsim run to resume")

    def path(self, name: str, key: tuple[int, int]) -> Path:
        return self.dir / name / part_name(*key)

    def finished(self) -> set[tuple[int, int]]:
        """(replicate, arm) of every part with all its tables on disk."""
        found = None
        for name in TABLES:
            folder = self.dir / name
            names = {f.name for f in folder.iterdir()} if folder.is_dir() else set()
            keys = {(int(m.group(1)), int(m.group(2)))
                    for m in map(PART.fullmatch, names) if m}
            found = keys if found is None else found & keys
        return found

    def write(self, key: tuple[int, int], tables: dict[str, pd.DataFrame]) -> None:
        """Write one part's tables, each atomically, ``TABLES[-1]`` last."""
        for name in TABLES:
            atomic_write(self.path(name, key),
                         lambda p, t=tables[name]: t.to_parquet(p, index=False))

    def remove(self) -> None:
        """Delete the parts (once the run's results are in place)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_json(path: Path, required: str, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
        data[required]
    except (OSError, ValueError, TypeError, KeyError):
        raise ScenarioError(f"{what} is unreadable; cannot resume") from None
    return data


class StoredRun:
    """A run whose arm x replicate parts are on disk: the tables read part by part.

    The same reading interface as ``sim.experiments.runner.Results`` (``frames``,
    ``table``, ``rows``, ``write_parquet``), so ``write_results`` takes either.
    """

    def __init__(self, scenario, reference, seeds: dict, parts: RunParts, ran: int = 0,
                 skipped: int = 0):
        self.scenario, self.reference, self.seeds, self.parts = scenario, reference, seeds, parts
        self.ran, self.skipped = ran, skipped
        self.fingerprint = run_fingerprint(scenario)

    def keys(self) -> list[tuple[int, int]]:
        """(replicate, arm) of every part, in table order (replicate by replicate)."""
        return [(r, a) for r in range(self.scenario.replicates)
                for a in range(len(self.scenario.arms))]

    def frames(self, name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table ``name`` one part (one arm x replicate) at a time, in table order."""
        for key in self.keys():
            yield pd.read_parquet(self.parts.path(name, key), columns=columns)

    def columns(self, name: str) -> list[str]:
        return pq.read_schema(self.parts.path(name, self.keys()[0])).names

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole table (for the small ones: teachers and schools)."""
        return pd.concat(list(self.frames(name, columns)), ignore_index=True)

    def rows(self, name: str) -> int:
        return sum(pq.ParquetFile(self.parts.path(name, k)).metadata.num_rows
                   for k in self.keys())

    def write_parquet(self, name: str, target: Path) -> None:
        """One Parquet file of the whole table, appended part by part (row groups)."""
        writer = None
        try:
            for key in self.keys():
                source = pq.ParquetFile(self.parts.path(name, key))
                for i in range(source.num_row_groups):
                    t = source.read_row_group(i)
                    if writer is None:
                        writer = pq.ParquetWriter(target, t.schema)
                    elif not t.schema.equals(writer.schema, check_metadata=False):
                        t = t.cast(writer.schema)
                    writer.write_table(t)
        finally:
            if writer is not None:
                writer.close()
