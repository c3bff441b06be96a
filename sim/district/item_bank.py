"""The item bank of a scenario, cached on disk like the statewide reference.

Drawing and calibrating the bank (``sim.engine.assessment.build_item_bank``)
takes seconds in every process that scores a test; it depends only on the
curriculum, assessment and population parameters (and the code), so it is
stored once per distinct parameter set with ``sim.district.cache`` (same
folder, keys, atomic writes and locks as the statewide reference) and read
back by every later process, sample and worker. The arrays are stored as
they were computed, so a bank read from disk is identical to a computed one.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache

import numpy as np

from sim.district.cache import cached_dataclass
from sim.engine import assessment
from sim.engine.assessment import ItemBank

# An ``ItemBank`` as flat arrays for the cache: its fields, with the stages' items
# concatenated (``stage_flat``) and their sizes (``stage_sizes``) for ``stage_items``.
StoredBank = dataclasses.make_dataclass(
    "StoredBank", [(f.name, f.type) for f in dataclasses.fields(ItemBank)
                   if f.name != "stage_items"]
    + [("stage_flat", "np.ndarray"), ("stage_sizes", "np.ndarray")])


def stored(bank: ItemBank) -> StoredBank:
    """The bank as the cache stores it."""
    fields = {k: v for k, v in vars(bank).items() if k != "stage_items"}
    return StoredBank(**fields, stage_flat=np.concatenate(bank.stage_items),
                      stage_sizes=np.array([s.size for s in bank.stage_items], np.int64))


def restored(flat) -> ItemBank:
    """The bank from its stored form."""
    fields = {k: v for k, v in vars(flat).items() if k not in ("stage_flat", "stage_sizes")}
    bounds = np.cumsum(flat.stage_sizes)[:-1]
    return ItemBank(**fields, stage_items=tuple(np.split(flat.stage_flat, bounds)))


def item_bank(scenario) -> ItemBank:
    """The scenario's item bank (cached in process and on disk)."""
    return _bank_from_key(assessment.bank_key(scenario))


@lru_cache(maxsize=8)
def _bank_from_key(key: str) -> ItemBank:
    flat = cached_dataclass("item_bank", json.loads(key), StoredBank,
                            lambda: stored(assessment.bank_from_key(key)))
    return restored(flat)
