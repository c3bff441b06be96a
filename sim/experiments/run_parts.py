"""A run's resumable parts store: ``plsim run`` streams each arm x replicate to disk.

``OUT/.parts/`` holds the run while it is unfinished::

    .parts/plan.json                     fingerprint, code version, scenario, replicates
    .parts/<table>/rRRRR-aAAA.parquet    one per table, replicate and arm
    .parts/.seals/rRRRR-aAAA.json        the part's checksums, written after its tables

so memory holds only the runs in flight and ``--resume`` skips what is done
(every part's checksums verified first: a damaged or foreign part is redone).
``StoredRun`` reads the parts back one at a time to build the run's tables,
summary and figures (``sim.experiments.output``), manifest last; then the
parts are removed (the tables replace them).

Resuming: options that would change the results are refused, naming each
difference; without ``--replicates`` the recorded number is used; more
replicates may be added to an unfinished or a finished run (a finished run's
tables are split back into parts first), and a part does not depend on the
number of replicates, so the tables equal a fresh run with that many.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.config.scenario import ScenarioError
from sim.district.cache import code_version
from sim.experiments.storage import TABLES, Seals, atomic_write, resuming_into, sha256

PARTS_DIR = ".parts"  # hidden: no reader takes an unfinished run for results
PLAN = "plan.json"
MANIFEST = "manifest.json"
PART = re.compile(r"r(\d{4})-a(\d{3})")
MAX_DIFFERENCES = 12  # named in a refused --resume


def part_name(replicate: int, arm: int) -> str:
    return f"r{replicate:04d}-a{arm:03d}"


def run_fingerprint(scenario) -> str:
    """SHA-256 of what a run's parts depend on: the scenario (all but its number of
    replicates: a part is the same whatever their count) and the engine's code version."""
    spec = scenario.model_dump(mode="json")
    spec.pop("replicates", None)
    blob = json.dumps({"scenario": spec, "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def recorded_replicates(out: str | Path) -> int | None:
    """The replicates of the run recorded in ``out`` (unfinished or finished), or None."""
    out = Path(out)
    for path in (out / PARTS_DIR / PLAN, out / MANIFEST):
        try:
            n = json.loads(path.read_text())["scenario"]["replicates"]
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if isinstance(n, int) and n >= 1:
            return n
    return None


def differences(recorded, given, path: str = "") -> list[str]:
    """``path: recorded X, given Y`` for every field where two plain data trees differ."""
    if isinstance(recorded, dict) and isinstance(given, dict):
        out = []
        for k in sorted(set(recorded) | set(given), key=str):
            where = f"{path}.{k}" if path else str(k)
            if k not in recorded:
                out.append(f"{where}: recorded (absent), given {json.dumps(given[k])}")
            elif k not in given:
                out.append(f"{where}: recorded {json.dumps(recorded[k])}, given (absent)")
            else:
                out += differences(recorded[k], given[k], where)
        return out
    if (isinstance(recorded, list) and isinstance(given, list)
            and len(recorded) == len(given)):
        return [d for i, (a, b) in enumerate(zip(recorded, given, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]
    if recorded != given:
        return [f"{path}: recorded {json.dumps(recorded)}, given {json.dumps(given)}"]
    return []


class RunParts:
    """The finished arm x replicate parts of a run, under ``OUT/.parts/`` (see the module)."""

    def __init__(self, out: Path, scenario):
        self.out, self.dir, self.scenario = Path(out), Path(out) / PARTS_DIR, scenario
        self.seals = Seals(self.dir, run_fingerprint(scenario))

    @classmethod
    def open(cls, out, scenario, resume: bool, source: str = "<scenario>") -> RunParts | None:
        """Check or create ``out`` for this run; None if it already holds it, finished.

        Raises:
            ScenarioError: ``out`` is a file; not empty without ``resume``; or with
                ``resume``, holds another run (each difference named), fewer replicates
                than it records, or nothing to resume.
        """
        parts = cls(Path(out), scenario)
        if not resuming_into(parts.out, resume, source, "run"):
            parts._create(source)
            return parts
        return parts._resume(source)

    def _create(self, source: str) -> None:
        try:
            for name in TABLES:
                (self.dir / name).mkdir(parents=True, exist_ok=True)
            self._write_plan()
        except OSError as exc:
            raise ScenarioError(f"{source}: --out {self.out}: cannot write there "
                                f"({exc.strerror})") from None

    def _write_plan(self) -> None:
        plan = {"fingerprint": self.seals.fingerprint, "code": code_version(),
                "scenario": self.scenario.model_dump(mode="json")}
        atomic_write(self.dir / PLAN, lambda p: p.write_text(json.dumps(plan, indent=2)))

    def _resume(self, source: str) -> RunParts | None:
        plan, manifest = self.dir / PLAN, self.out / MANIFEST
        if plan.exists():
            old = _read_json(plan, f"{source}: --out {self.out}: {PARTS_DIR}/{PLAN}")
            if self._check_same_run(old, source, finished=False):
                self._write_plan()  # more replicates than recorded
            for name in TABLES:
                (self.dir / name).mkdir(parents=True, exist_ok=True)
            return self
        if manifest.exists():
            old = _read_json(manifest, f"{source}: --out {self.out}: {MANIFEST}")
            if not self._check_same_run(old, source, finished=True):
                return None  # finished already: nothing to do
            self._reopen(old, source)
            return self
        if self.dir.is_dir() and not any(f.is_file() for f in self.dir.rglob("*")):
            self._create(source)  # killed before its plan was written: nothing to lose
            return self
        raise ScenarioError(f"{source}: --out {self.out} holds no plsim run to resume")

    def _check_same_run(self, old: dict, source: str, finished: bool) -> bool:
        """Refuse (ScenarioError) a resume that would change the results, naming each
        difference; True when it adds replicates to the recorded ones."""
        given = self.scenario.model_dump(mode="json")
        recorded = old.get("scenario") if isinstance(old.get("scenario"), dict) else {}
        diffs = differences({k: v for k, v in recorded.items() if k != "replicates"},
                            {k: v for k, v in given.items() if k != "replicates"})
        if old.get("fingerprint") != self.seals.fingerprint and not diffs:
            diffs = [f"plsim code: recorded {old.get('code', 'another version')!r}, given "
                     f"{code_version()!r}"]
        before, now = recorded.get("replicates"), self.scenario.replicates
        if isinstance(before, int) and now < before:
            diffs.append(f"replicates: recorded {before}, given {now} (replicates can be "
                         "added, not taken away)")
        if diffs:
            shown = diffs[:MAX_DIFFERENCES] + ([f"... and {len(diffs) - MAX_DIFFERENCES} more"]
                                               if len(diffs) > MAX_DIFFERENCES else [])
            what = "a finished" if finished else "an unfinished"
            raise ScenarioError(f"{source}: --out {self.out} holds {what} run with other "
                                "options; --resume would change its results, so it is "
                                "refused (nothing was changed): " + "; ".join(shown))
        return isinstance(before, int) and now > before

    def _reopen(self, manifest: dict, source: str) -> None:
        """Split a finished run's tables back into sealed parts (to add replicates)."""
        sums = manifest.get("files", {})
        for name in TABLES:
            table = self.out / f"{name}.parquet"
            if not table.is_file() or sums.get(table.name) != sha256(table):
                raise ScenarioError(f"{source}: --out {self.out}: {table.name} does not match "
                                    "its checksum in manifest.json; cannot add replicates")
        self._create(source)
        labels = [a.label for a in self.scenario.arms]
        for name in TABLES:
            pieces: dict[tuple[int, int], list] = {}
            source_file = pq.ParquetFile(self.out / f"{name}.parquet")
            for i in range(source_file.num_row_groups):
                group = source_file.read_row_group(i)
                pieces.setdefault(_group_key(group, labels, source), []).append(group)
            for key, groups in pieces.items():
                t = pa.concat_tables(groups)
                atomic_write(self.path(name, key), lambda p, t=t: pq.write_table(t, p))
        for r in range(manifest["scenario"]["replicates"]):
            for a in range(len(labels)):
                self.seals.seal(part_name(r, a), self.files((r, a)))

    def path(self, name: str, key: tuple[int, int]) -> Path:
        return self.dir / name / f"{part_name(*key)}.parquet"

    def files(self, key: tuple[int, int]) -> list[Path]:
        return [self.path(name, key) for name in TABLES]

    def finished(self, keys: list[tuple[int, int]] | None = None) -> set[tuple[int, int]]:
        """(replicate, arm) of every part whose checksums verify (of ``keys``, default every
        part of the run); a damaged or foreign part gets a warning and will be redone."""
        if keys is None:
            keys = [(r, a) for r in range(self.scenario.replicates)
                    for a in range(len(self.scenario.arms))]
        return {k for k in keys if self.seals.check(part_name(*k), self.files(k))}

    def write(self, key: tuple[int, int], tables: dict[str, pd.DataFrame]) -> None:
        """Write one part's tables, each atomically, then seal it with their checksums."""
        for name in TABLES:
            atomic_write(self.path(name, key),
                         lambda p, t=tables[name]: t.to_parquet(p, index=False))
        self.seals.seal(part_name(*key), self.files(key))

    def remove(self) -> None:
        """Delete the parts (once the run's results, which replace them, are in place)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _group_key(group: pa.Table, labels: list[str], source: str) -> tuple[int, int]:
    """(replicate, arm index) of one row group of a finished table (one part's rows)."""
    reps = set(group.column("replicate").to_pylist())
    arms = {str(a) for a in group.column("arm").to_pylist()}
    if len(reps) != 1 or len(arms) != 1 or next(iter(arms)) not in labels:
        raise ScenarioError(f"{source}: a finished table mixes arm x replicate runs in one "
                            "row group (not written by plsim run); cannot add replicates")
    return int(reps.pop()), labels.index(arms.pop())


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError
    except (OSError, ValueError):
        raise ScenarioError(f"{what} is unreadable; cannot resume") from None
    return data


class StoredRun:
    """A run whose arm x replicate parts are on disk: the tables read part by part.

    The same reading interface as ``sim.experiments.runner.Results`` (``frames``,
    ``table``, ``rows``, ``write_parquet``), so ``write_results`` takes either.
    """

    def __init__(self, scenario, reference, seeds: dict, parts: RunParts, ran: int = 0,
                 skipped: int = 0, means: dict | None = None,
                 teacher_records: dict | None = None):
        self.scenario, self.reference, self.seeds, self.parts = scenario, reference, seeds, parts
        self.ran, self.skipped = ran, skipped
        # (replicate, arm) -> the part's summary means and teacher records, made by the
        # worker that ran it (summaries.part_means, teacher_records); parts resumed from
        # disk have none
        self.means, self.teacher_records = means or {}, teacher_records or {}
        self.fingerprint = run_fingerprint(scenario)

    def keys(self) -> list[tuple[int, int]]:
        """(replicate, arm) of every part, in table order (replicate by replicate)."""
        return [(r, a) for r in range(self.scenario.replicates)
                for a in range(len(self.scenario.arms))]

    def frames(self, name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table ``name`` one part (one arm x replicate) at a time, in table order."""
        for key in self.keys():
            yield self.part(name, key, columns)

    def part(self, name: str, key: tuple[int, int], columns: list[str] | None = None):
        """The table ``name`` of one part, ``key`` = (replicate, arm)."""
        return pd.read_parquet(self.parts.path(name, key), columns=columns)

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
