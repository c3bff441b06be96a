"""The NSGA-II search of ``plsim optimize`` (Optuna), a generation at a time.

Seeded and run with one job, the sampler proposes the same candidates
whatever order their runs finish in; finished candidates are replayed (told
their stored objectives), not evaluated again, so a resumed study proposes
the same candidates as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from sim.config.scenario import ScenarioError

Evaluate = Callable[[list[tuple[int, dict]]], Iterable[tuple[int, list[float] | None, dict]]]


def search(levers: dict[str, Any], maximize: list[bool], evaluate: Evaluate, *,
           population: int, generations: int, seed: int,
           finished: dict[int, dict] | None = None,
           on_result: Callable[[int, dict, list[float] | None, dict], None] | None = None
           ) -> list[dict]:
    """NSGA-II over ``levers`` (name -> Optuna distribution), a generation at a time.

    Args:
        maximize: per objective, whether larger is better.
        evaluate: takes [(trial number, params)] of one generation, yields
            (number, objective values or None for a failed candidate, extra record
            fields) in any order.
        population, generations: candidates per generation, and generations.
        seed: the sampler's seed (with one job the study is reproducible).
        finished: candidates already evaluated, by trial number: records with
            ``params`` and ``values`` (None if failed). They are replayed, not
            evaluated; their params must be what the sampler asks for again.
        on_result: called once per newly evaluated candidate (number, params, values,
            extra), as soon as it is known, e.g. to write it to disk.

    Returns:
        One record per candidate in trial order: number, generation, params, values, and
        the fields ``evaluate`` added.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finished = dict(finished or {})
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=["maximize" if m else "minimize" for m in maximize],
                                sampler=sampler)
    records: list[dict] = []
    for gen in range(generations):
        batch = [study.ask(levers) for _ in range(population)]
        todo = []
        for t in batch:
            old = finished.get(t.number)
            if old is not None and old["params"] != t.params:
                raise ScenarioError(f"stored candidate {t.number} has levers {old['params']} "
                                    f"but the search asks for {t.params} (stored by another "
                                    "version?); cannot resume")
            if old is None:
                todo.append((t.number, dict(t.params)))
        results = {n: (old["values"], {k: v for k, v in old.items()
                                       if k not in ("params", "values")})
                   for n, old in finished.items() if n in {t.number for t in batch}}
        for number, values, extra in evaluate(todo):
            results[number] = (values, extra)
            if on_result is not None:
                on_result(number, dict(batch[number - batch[0].number].params), values, extra)
        for t in batch:  # tell in trial order: the study does not depend on run order
            values, extra = results[t.number]
            if values is None or any(math.isnan(v) for v in values):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, values)
            records.append({"number": t.number, "generation": gen, "params": dict(t.params),
                            "values": values, **extra})
    return records
