"""The spin-up: each replicate's population brought to the model's own steady state, once.

A run's population is drawn from a synthetic mastery profile (``engine.population``)
that the model's own dynamics do not keep. Before year 1, the district runs
``calendar.burn_in_years`` school years of business as usual: traditional pacing for
everyone, no program, no rooms, teachers of record (docs/model.md §5). Nothing in those
years depends on the arm (``District.start_state`` says why), so they are run once per
replicate, by a district with a plain traditional arm, and every arm starts from a copy
of the state they leave (``District(..., start=...)``).

The state is cached per process (the last replicate's) and on disk
(``sim.district.cache``), keyed by everything it depends on: the scenario without its
name, arms, years and replicates (so sweep samples that change only arms share it), the
replicate, the statewide reference's cut and fall SDs it measures the last year with,
and the engine's code version.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np

from sim.config.parameters import ArmSettings
from sim.district.cache import cached_arrays
from sim.district.model import District

SPIN_UP_ARM = ArmSettings(label="spin-up", pacing="traditional")  # business as usual
NOT_IN_KEY = ("name", "description", "arms", "years", "replicates")  # never read by it
KEPT_IN_PROCESS = 1  # starts held in memory (tasks run replicate by replicate; others: disk)

_recent: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()


def spinup_parameters(scenario, replicate: int, reference) -> dict:
    """Every value the spun-up state depends on (the cache key's parameters)."""
    key = scenario.model_dump(mode="json", exclude=set(NOT_IN_KEY))
    key["replicate"] = int(replicate)
    h = hashlib.sha256()
    for a in (reference.cut_by_grade, reference.fall_sd_by_grade):
        h.update(np.ascontiguousarray(a, np.float64).tobytes())
    key["reference"] = h.hexdigest()
    return key


def spun_up(scenario, replicate: int, reference) -> dict[str, np.ndarray] | None:
    """The replicate's state after the spin-up (read-only arrays; ``District`` copies
    them), or None when the scenario has no spin-up (``burn_in_years = 0``)."""
    if scenario.calendar.burn_in_years == 0:
        return None
    params = spinup_parameters(scenario, replicate, reference)
    key = json.dumps(params, sort_keys=True)
    state = _recent.pop(key, None)
    if state is None:
        state = cached_arrays("spin_up", params,
                              lambda: spin_up(scenario, replicate, reference))
        for a in state.values():
            a.setflags(write=False)
    _recent[key] = state
    while len(_recent) > KEPT_IN_PROCESS:
        _recent.popitem(last=False)
    return state


def spin_up(scenario, replicate: int, reference) -> dict[str, np.ndarray]:
    """Run the spin-up (uncached): a district with a plain traditional arm, its burn-in
    years, and the state they leave (``District.start_state``)."""
    district = District(scenario, SPIN_UP_ARM, replicate, reference=reference)
    district.burn_in()
    return district.start_state()


def forget() -> None:
    """Drop the starts held in this process (tests; the disk cache is untouched)."""
    _recent.clear()
