"""One command per output folder: a lock on ``--out``, and what a dead run left there cleaned.

``hold(out, source)`` takes an exclusive ``flock`` on ``OUT/.plsim.lock`` (its
holder's pid written inside) for the whole command, so a second run, resume,
sweep or study on the same folder is refused (status 2, naming the pid)
instead of racing the first. The kernel releases the lock when its holder
dies, however it dies, so a lock left by ``kill -9`` is recognised as stale
and taken over. Pool workers close their inherited copy of the lock at start
(``executor.close_in_workers``), so a dead parent's workers cannot keep it.

Once the lock is held, leftovers of a dead command are removed: its
``.staging-*`` folders (results being written) and hidden ``.*.tmp`` files
(a file being written atomically). Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from sim.config.scenario import ScenarioError
from sim.experiments.executor import close_in_workers, forget_in_workers
from sim.experiments.storage import LOCK

STAGING_PREFIX = ".staging-"
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.tmp(\.npz)?")  # atomic_write's temporary names


@contextlib.contextmanager
def hold(out: str | Path, source: str = "<command>") -> Iterator[Path]:
    """Hold ``out``'s lock for the ``with`` block (creating ``out`` if needed), after
    removing a dead command's leftovers; ScenarioError if a live command holds it."""
    out = Path(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"{source}: --out {out}: cannot create it ({exc.strerror})") from None
    fd = _acquire(out / LOCK, source, out)
    close_in_workers(fd)
    try:
        clean_leftovers(out)
        yield out
    finally:
        forget_in_workers(fd)
        with contextlib.suppress(OSError):
            (out / LOCK).unlink()  # unlinked while still held: see _acquire's inode check
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if the command left it empty (refused, say)


def _acquire(path: Path, source: str, out: Path) -> int:
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ScenarioError(f"{source}: --out {out}: cannot write there "
                                f"({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise ScenarioError(f"{source}: --out {out} is in use by another plsim command "
                                f"({holder}); wait for it to finish or choose another "
                                "directory") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its last holder unlinked while we opened it
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid()}).encode())
            return fd
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid = json.loads(os.pread(fd, 200, 0).decode())["pid"]
        return f"pid {int(pid)}"
    except (OSError, ValueError, TypeError, KeyError):
        return "pid unknown"


def clean_leftovers(out: Path) -> list[Path]:
    """Remove a dead command's staging folders and temporary files under ``out``."""
    removed = []
    for p in out.iterdir():
        if p.is_dir() and p.name.startswith(STAGING_PREFIX):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    for p in out.rglob(".*.tmp*"):
        if p.is_file() and TEMPORARY.fullmatch(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
