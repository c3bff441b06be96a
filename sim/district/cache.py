"""An on-disk cache of results that depend only on parameters and code (the statewide
reference, the item bank, each replicate's spun-up start).

A value is stored under a key: the SHA-256 of a JSON text naming everything
the value depends on -- its parameters, the plsim version, numpy's version
and a hash of the source of the packages that compute it (``code_version``),
so any code change gives new keys and stale entries are never read.

Files live in ``$PLSIM_CACHE_DIR`` (default ``$XDG_CACHE_HOME/plsim``, else
``~/.cache/plsim``), one ``.npz`` per entry, written to a temporary name and
renamed into place: readers see a whole entry or none, and concurrent
writers of the same key (pool workers, Dask workers on one machine) just
replace identical files. A lock file per key lets a second process wait for
the first one's result instead of computing it again. ``PLSIM_NO_CACHE=1``
turns the disk cache off; an unwritable cache is skipped silently, and a
damaged entry (truncated, say) is removed and computed again, never fatal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

import sim

# Packages whose source decides what the simulation computes (not analysis, CLI or output).
ENGINE_PACKAGES = ("config", "engine", "policies", "accountability", "district")


def cache_dir() -> Path | None:
    """The cache folder, or None when the disk cache is off (``PLSIM_NO_CACHE=1``)."""
    if os.environ.get("PLSIM_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("PLSIM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "plsim"


@lru_cache(maxsize=1)
def code_version() -> str:
    """plsim's version, numpy's version and a SHA-256 of the engine packages' source files."""
    root = Path(sim.__file__).resolve().parent
    h = hashlib.sha256()
    for package in ENGINE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return f"plsim {sim.__version__}; numpy {np.__version__}; source {h.hexdigest()[:16]}"


def cache_key(kind: str, parameters: dict) -> str:
    """SHA-256 (hex) of ``kind``, the parameters (as canonical JSON) and ``code_version()``."""
    blob = json.dumps({"kind": kind, "parameters": parameters, "code": code_version()},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_dataclass(kind: str, parameters: dict, cls, compute):
    """``cls`` instance for ``parameters``: from the disk cache, else ``compute()`` stored there.

    ``cls`` is a dataclass whose fields are numpy arrays or numbers.
    """
    def as_arrays():
        value = compute()
        return value, {f.name: np.asarray(getattr(value, f.name))
                       for f in dataclasses.fields(value)}

    def from_arrays(arrays):
        return cls(**{f.name: _restore(arrays[f.name]) for f in dataclasses.fields(cls)})

    return _cached(kind, parameters, as_arrays, from_arrays)


def cached_arrays(kind: str, parameters: dict, compute) -> dict[str, np.ndarray]:
    """A dict of named numpy arrays for ``parameters``: from the disk cache, else
    ``compute()`` (returning such a dict) stored there."""
    def as_arrays():
        value = compute()
        return value, value

    return _cached(kind, parameters, as_arrays, dict)


def _cached(kind: str, parameters: dict, compute, from_arrays):
    """``compute()`` gives (value, its arrays); ``from_arrays(arrays)`` the value back."""
    folder = cache_dir()
    if folder is None:
        return compute()[0]
    key = cache_key(kind, parameters)
    path = folder / kind / f"{key}.npz"
    found = _load(path, from_arrays)
    if found is not None:
        return found
    with _lock(path):
        found = _load(path, from_arrays)  # another process may have written it while we waited
        if found is not None:
            return found
        value, arrays = compute()
        _store(path, arrays)
    return value


def _load(path: Path, from_arrays):
    """The entry at ``path``, or None when there is none or it is damaged (then removed,
    so it is rebuilt: a truncated ``.npz`` raises ``BadZipFile``, a damaged member
    ``zlib.error`` or ``EOFError``, whatever numpy meets first)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return from_arrays({name: data[name] for name in data.files})
    except Exception:  # noqa: BLE001 (any damage means: compute it again)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def _restore(a: np.ndarray):
    return a.item() if a.ndim == 0 else a


def _store(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def _lock(path: Path):
    """An exclusive lock on ``path``'s lock file (none if it cannot be made, or no fcntl)."""
    try:
        import fcntl
    except ImportError:  # not on a POSIX system: concurrent writers just both compute
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock (also if this process dies)
