"""Writing files so that a reader never sees half of one; parts sealed with checksums.

Every file plsim writes is written under a hidden temporary name in the same
folder and renamed into place with ``os.replace`` (atomic on one file system).

Runs, sweeps and optimisations write their work as *parts* (an arm x
replicate, a sweep run, a candidate), each sealed by a checksum record
(``Seals``) written after its files: a part counts as finished only when its
record names this run (its fingerprint) and every file's SHA-256 matches, so
a truncated, swapped or foreign part is found and redone, never trusted.
A run's own parts store is ``sim.experiments.run_parts``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from sim.config.scenario import ScenarioError

TABLES = ("student_years", "teacher_years", "school_years")
LOCK = ".plsim.lock"  # the --out folder's lock (sim.experiments.folder_lock)


def resuming_into(out: Path, resume: bool, source: str, what: str) -> bool:
    """Check an output folder before anything is written; True when ``resume`` continues
    the ``what`` (run, sweep, study) already in it.

    Raises ScenarioError naming ``source`` when ``out`` is a file, or holds something
    and ``resume`` was not asked for.
    """
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"{source}: --out {out}: exists and is not a directory")
    if out.exists() and any(p.name != LOCK for p in out.iterdir()):
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


def sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def warn(message: str) -> None:
    """One line on stderr, prefixed ``plsim: warning:``."""
    print(f"plsim: warning: {message}", file=sys.stderr)


class Seals:
    """The checksum records of a folder's parts: ``FOLDER/<part>.json``, each naming the
    part, the fingerprint of the work it belongs to and every file's SHA-256 (paths
    relative to ``root``), written atomically after the part's files."""

    def __init__(self, root: Path, fingerprint: str, folder: str = ".seals"):
        self.root, self.dir, self.fingerprint = Path(root), Path(root) / folder, fingerprint

    def record(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def seal(self, name: str, files: list[Path]) -> None:
        """Record the checksums of part ``name``'s files (already in place)."""
        sums = {Path(f).relative_to(self.root).as_posix(): sha256(f) for f in files}
        record = {"part": name, "fingerprint": self.fingerprint, "files": sums}
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.record(name), lambda p: p.write_text(json.dumps(record, indent=1)))

    def problem(self, name: str, files: list[Path]) -> str | None:
        """None when part ``name`` is finished and whole; "unfinished" when it has no
        record (never sealed); else what is wrong with it (damaged or foreign)."""
        try:
            record = json.loads(self.record(name).read_text())
            part, fingerprint, sums = record["part"], record["fingerprint"], record["files"]
        except FileNotFoundError:
            return "unfinished"
        except (OSError, ValueError, TypeError, KeyError):
            return "damaged (its checksum record is unreadable)"
        if part != name or fingerprint != self.fingerprint:
            return "foreign (sealed for another part or run)"
        for f in files:
            rel = Path(f).relative_to(self.root).as_posix()
            try:
                digest = sha256(f)
            except OSError:
                return f"damaged ({rel} is missing or unreadable)"
            if sums.get(rel) != digest:
                return f"damaged ({rel} does not match its checksum)"
        return None

    def check(self, name: str, files: list[Path]) -> bool:
        """True when part ``name`` is finished and whole. A damaged or foreign part gets a
        one-line warning and its record is removed, so it is run again (and replaced)."""
        why = self.problem(name, files)
        if why is None:
            return True
        if why != "unfinished":
            warn(f"part {name} is {why}; running it again")
            self.record(name).unlink(missing_ok=True)
        return False
