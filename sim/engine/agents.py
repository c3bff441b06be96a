"""The base of plsim's Mesa agents: Mesa's ``Agent`` with its id counters held weakly.

Mesa 3.3 numbers each model's agents from a class-level
``defaultdict`` keyed by the model (``mesa.Agent._ids``), so every model that
ever made an agent stays alive for the life of the process: a worker running
one arm x replicate after another, or a bench timing one district after
another, kept every finished district's arrays (about 1 KB a student). Here the
counters live in a dictionary that holds the model weakly; the numbering is
Mesa's (one counter per model, shared by every agent class, from 1).
"""

from __future__ import annotations

import itertools
import weakref

from mesa import Agent as MesaAgent


class IdsByModel(weakref.WeakKeyDictionary):
    """Per-model unique-id counters (``itertools.count(1)``), made on first use and
    dropped with the model."""

    def __getitem__(self, model):
        try:
            return super().__getitem__(model)
        except KeyError:
            counter = itertools.count(1)
            self[model] = counter
            return counter


class Agent(MesaAgent):
    """A Mesa agent whose model is freed when nothing else holds it."""

    _ids = IdsByModel()
