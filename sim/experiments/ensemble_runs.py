"""``plsim run SCENARIO --ensemble FILE``: every member of a parameter ensemble run on the
run's own seeds.

Member ``i``'s scenario is the scenario file read over the member's parameter values
(which stand in for the fitted parameters file where they name a parameter: a scenario
file's own values still win, ``--set`` overrides still apply), with the run's seed and
replicates: every member sees the same replicates — the same students and random
streams (common random numbers), so members differ by their parameters only. Every
member x arm x replicate is one task on the one executor; a task keeps only its
replicate means of the paired metrics (``analysis.robustness.member_replicates``), so
memory holds the runs in flight and a small table.
"""

from __future__ import annotations

import gc

import pandas as pd

from sim.analysis.robustness import member_means, member_replicates
from sim.config.ensemble import Ensemble
from sim.config.scenario import (
    FITTED_PARAMETERS,
    Scenario,
    apply_override,
    merge_under,
    parse_override,
    read_parameters,
    read_toml,
    shorten,
    validate_scenario,
)
from sim.experiments.executor import Executor
from sim.experiments.runner import progress_bar, run_arm


def member_scenarios(path: str, ens: Ensemble, overrides: list[str], seed: int,
                     replicates: int) -> list:
    """Every member's validated scenario (bad input names the ensemble file and member)."""
    fitted = read_parameters(FITTED_PARAMETERS)
    own = read_toml(path)
    out = []
    for i in range(ens.size):
        source = f"{ens.source} (member {i + 1} of {ens.size}, with {shorten(str(path))})"
        data = merge_under(merge_under(fitted, ens.member_tables(i)), own)
        for text in overrides:
            apply_override(data, *parse_override(text, source), f"{source} (--set)")
        data["seed"], data["replicates"] = seed, replicates
        out.append(validate_scenario(data, source))
    return out


def members_of(scenario, ens: Ensemble, source: str = "<scenario>") -> list:
    """Every member's scenario for an already validated ``scenario`` (the web page's, whose
    form starts from the fitted values): each parameter the ensemble names takes the
    member's value where the scenario holds its fitted value (the fitted file's, else the
    model's default), as it would read from a scenario file that does not set it; a value
    the scenario sets otherwise wins, as a scenario file's own does for
    :func:`member_scenarios`. Seed and replicates are the scenario's (common random
    numbers)."""
    data = scenario.model_dump(mode="json")
    fitted = read_parameters(FITTED_PARAMETERS)
    own = {name for name in ens.values if _value(data, name) != fitted_value(fitted, name)}
    out = []
    for i in range(ens.size):
        tables = ens.member_tables(i)
        for name in own:
            section, key = name.split(".")
            del tables[section][key]
        member = f"{ens.source} (member {i + 1} of {ens.size}, with {source})"
        out.append(validate_scenario(merge_under(data, tables), member))
    return out


def _value(data: dict, name: str):
    section, key = name.split(".")
    return data.get(section, {}).get(key)


def fitted_value(fitted: dict, name: str):
    """Parameter ``name``'s (``section.key``) value in the fitted file's tables
    (``fitted``), else the model's default."""
    section, key = name.split(".")
    if key in fitted.get(section, {}):
        return fitted[section][key]
    return getattr(Scenario.model_fields[section].annotation(), key)


def member_task(task) -> pd.DataFrame:
    """One member x arm x replicate: its replicate means (a module-level function, so pool
    and Dask workers can run it)."""
    member, scenario, arm_index, replicate = task
    rows = run_arm(scenario, arm_index, replicate)["student_years"]
    gc.collect()  # the district's arrays sit in reference cycles: free them now
    rows["arm"] = pd.Categorical(rows["arm"], categories=[a.label for a in scenario.arms])
    return member_replicates(rows, member)


def run_members(scenarios: list, workers: int | None = 1, scheduler: str | None = None,
                progress: bool = False) -> pd.DataFrame:
    """Every member's means (``analysis.robustness.member_means``: member x arm x year x
    band)."""
    tasks = [(i, sc, a, r) for i, sc in enumerate(scenarios) for r in range(sc.replicates)
             for a in range(len(sc.arms))]
    bar = progress_bar(len(tasks), progress, desc="ensemble member runs")
    parts = []
    try:
        with Executor(workers, scheduler) as executor:
            executor.workers = min(executor.workers, max(len(tasks), 1))
            for frame in executor.map_unordered(member_task, tasks):
                parts.append(frame)
                bar.update()
    finally:
        bar.close()
    reps = pd.concat(parts, ignore_index=True)
    return member_means(reps, [a.label for a in scenarios[0].arms])
