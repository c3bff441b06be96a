"""Watching a run from outside it: simulated days counted across worker processes, and a
stop request they obey within a day.

The web page (``plsim app``) shows progress within runs and stops a run on Cancel. A run's
arm-replicates go to forked worker processes (``experiments.runner``), where no callback
of the page can reach them; a ``RunMonitor`` lives in shared memory instead, made before
the workers fork and made active with ``watching``. Every ``District`` counts each
simulated day (burn-in included) into the active monitor, and raises ``RunStopped`` at its
next day once ``stop`` was called. Neither touches a random stream or a table, so results
do not depend on being watched. Without an active monitor (``plsim run``, sweeps, Dask
workers, spawned processes) the day loop only reads one module global a year.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_DAYS, _STOP = 0, 1  # the cells of the shared array


class RunStopped(Exception):
    """A watched run was asked to stop (raised inside a district's day loop)."""


class RunMonitor:
    """A shared count of simulated days (district-days, summed over every worker) and a
    stop flag."""

    def __init__(self) -> None:
        # the fork context on Linux: the runner's pool forks and inherits this memory
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        self._cells = ctx.Array("q", 2)  # int64 cells with a process-shared lock

    def day_done(self) -> None:
        """Count one simulated day; ``RunStopped`` if a stop was asked for."""
        with self._cells.get_lock():
            self._cells[_DAYS] += 1
            stop = self._cells[_STOP]
        if stop:
            raise RunStopped("the run was stopped before it finished")

    def check(self) -> None:
        """``RunStopped`` if a stop was asked for (a spin-up day: obeyed, not counted, as
        a replicate's spin-up runs once or comes from the cache)."""
        if self._cells[_STOP]:
            raise RunStopped("the run was stopped before it finished")

    def stop(self) -> None:
        """Ask every district of the watched run to stop at its next day."""
        self._cells[_STOP] = 1

    @property
    def stopped(self) -> bool:
        return bool(self._cells[_STOP])

    @property
    def days(self) -> int:
        """District-days simulated so far, over every worker."""
        return int(self._cells[_DAYS])


_active: RunMonitor | None = None
_one_at_a_time = threading.Lock()


@contextmanager
def watching(monitor: RunMonitor) -> Iterator[RunMonitor]:
    """Make ``monitor`` the active one for the runs started inside (their workers fork
    inside). One watched run at a time in a process: a second waits for the first, so a
    pool never inherits another run's monitor."""
    global _active
    with _one_at_a_time:
        _active = monitor
        try:
            yield monitor
        finally:
            _active = None


def active() -> RunMonitor | None:
    """The monitor of the run being watched in this process (inherited by its forked
    workers), or None."""
    return _active
