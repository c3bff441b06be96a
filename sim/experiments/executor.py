"""The one executor of runs, sweeps and optimisations: serial, a local process pool, or Dask.

``Executor(workers, scheduler).map_unordered(fn, tasks)`` yields ``fn(task)`` for
every task as each finishes (in any order), with at most twice as many tasks
in flight as workers, so memory holds a bounded number of results whatever
the number of tasks.

Local pool workers are forked (they start at once and inherit the imported
package and the per-process caches the parent filled, e.g. the statewide
reference). Each worker ignores Ctrl-C (the parent stops the run and ends
them, so one line is printed, not one traceback per worker) and watches its
parent: when the parent dies (``kill -9``) the worker exits within a second
instead of waiting forever on a queue nobody writes to.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from sim.config.scenario import ScenarioError

WATCH_SECONDS = 0.5  # how often a pool worker checks that its parent is alive
_INHERITED_FDS: set[int] = set()  # descriptors a worker must close (the --out lock)
_WARNED: set[int] = set()  # --workers values already capped with a message


def cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | None, warn: bool = True) -> int:
    """``None`` or 1: serial; 0: all cores; otherwise that many processes, at most the
    cores (more only queue for them, each holding a district in memory): a request
    above the cores is capped, with a one-line message on stderr when ``warn``."""
    n = cores()
    if workers is None:
        return 1
    if workers == 0:
        return n
    if workers > n:
        if warn and workers not in _WARNED:
            _WARNED.add(workers)
            print(f"plsim: --workers {workers} is more than the {n} cores here; using {n}",
                  file=sys.stderr)
        return n
    return max(1, workers)


def pool_context():
    """Fork worker processes on Linux: they start at once and inherit the imported
    package and the cached statewide reference. (Importing mesa switches Python's
    default to "spawn", which re-imports everything in every worker.)"""
    return multiprocessing.get_context("fork") if sys.platform == "linux" else None


def close_in_workers(fd: int) -> None:
    """Have pool workers forked from now on close ``fd`` (e.g. a lock they must not keep)."""
    _INHERITED_FDS.add(fd)


def forget_in_workers(fd: int) -> None:
    _INHERITED_FDS.discard(fd)


def _worker_start(parent: int) -> None:
    """In each pool worker: ignore Ctrl-C, drop the parent's lock, exit if the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in list(_INHERITED_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)

    def watch():
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)  # the parent is gone: nobody will read what this worker computes

    threading.Thread(target=watch, name="plsim-parent-watch", daemon=True).start()


class Executor:
    """Runs tasks serially, on a local process pool, or on a Dask cluster; reusable
    across calls of ``map_unordered`` (the pool or the client is made once); close it
    (or use it as a context manager) when done."""

    def __init__(self, workers: int | None = 1, scheduler: str | None = None,
                 what: str = "finished runs"):
        self.pool, self.client, self.workers = None, None, 1
        if scheduler:
            self.client = _dask_client(scheduler, what)
            self.workers = max(1, sum(self.client.nthreads().values()))
        else:
            self.workers = resolve_workers(workers)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close(failed=exc[0] is not None)

    def _local_pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=pool_context(),
                                            initializer=_worker_start,
                                            initargs=(os.getpid(),))
        return self.pool

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator:
        """``fn(task)`` for every task, yielded as each finishes (in any order)."""
        if self.client is not None:
            yield from self._dask_map(fn, tasks)
        elif self.workers <= 1:
            for task in tasks:
                yield fn(task)
        else:
            yield from self._pool_map(fn, tasks)

    def _pool_map(self, fn, tasks) -> Iterator:
        pool, in_flight = self._local_pool(), set()
        try:
            for task in tasks:
                in_flight.add(pool.submit(fn, task))
                if len(in_flight) >= 2 * self.workers:
                    yield from _finished(in_flight)
            while in_flight:
                yield from _finished(in_flight)
        except BaseException:  # stopped early (Ctrl-C, an error, closed): end the workers
            self.close(failed=True)
            raise

    def _dask_map(self, fn, tasks) -> Iterator:
        from distributed import as_completed

        limit = 2 * self.workers
        pending = as_completed()
        for task in tasks:
            pending.add(self.client.submit(fn, task, pure=False))
            if pending.count() >= limit:
                yield from _drain(pending, keep=limit - 1)
        yield from _drain(pending, keep=0)

    def close(self, failed: bool = False) -> None:
        """Let go of the pool or the client; after a failure, end the workers at once
        (their tasks' results are not wanted) instead of waiting for them."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.pool is not None:
            pool, self.pool = self.pool, None
            if failed:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
            pool.shutdown(wait=not failed, cancel_futures=True)


def map_unordered(fn, tasks, workers: int | None = 1, scheduler: str | None = None,
                  what: str = "finished runs") -> Iterator:
    """``fn(task)`` for every task, as each finishes, on a one-off ``Executor``."""
    with Executor(workers, scheduler, what) as ex:
        yield from ex.map_unordered(fn, tasks)


def _dask_client(address: str, what: str):
    from distributed import Client

    try:
        return Client(address, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise ScenarioError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                            f"({exc}); {what} are kept, use --resume") from None


def _finished(in_flight: set) -> Iterator:
    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
    for fut in done:
        in_flight.discard(fut)
        yield fut.result()


def _drain(pending, keep: int) -> Iterator:
    while pending.count() > keep:
        yield next(pending).result()
