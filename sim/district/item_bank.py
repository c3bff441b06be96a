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

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.district.cache import cached_dataclass
from sim.engine import assessment
from sim.engine.assessment import ItemBank


@dataclass
class StoredBank:
    """An ``ItemBank`` as flat arrays (its stages concatenated, with their sizes)."""

    skill: np.ndarray
    difficulty: np.ndarray
    a: np.ndarray
    b: np.ndarray
    guess: float
    grid: np.ndarray
    log_q: np.ndarray
    log_odds: np.ndarray
    weights: np.ndarray
    stage_flat: np.ndarray
    stage_sizes: np.ndarray
    prior_sd: np.ndarray

    @classmethod
    def of(cls, bank: ItemBank) -> StoredBank:
        fields = {k: v for k, v in vars(bank).items() if k != "stage_items"}
        return cls(**fields, stage_flat=np.concatenate(bank.stage_items),
                   stage_sizes=np.array([s.size for s in bank.stage_items], np.int64))

    def bank(self) -> ItemBank:
        fields = {k: v for k, v in vars(self).items() if k not in ("stage_flat", "stage_sizes")}
        bounds = np.cumsum(self.stage_sizes)[:-1]
        return ItemBank(**fields, stage_items=tuple(np.split(self.stage_flat, bounds)))


def item_bank(scenario) -> ItemBank:
    """The scenario's item bank (cached in process and on disk)."""
    return _bank_from_key(assessment.bank_key(scenario))


@lru_cache(maxsize=8)
def _bank_from_key(key: str) -> ItemBank:
    stored = cached_dataclass("item_bank", json.loads(key), StoredBank,
                              lambda: StoredBank.of(assessment._bank(key)))
    return stored.bank()
