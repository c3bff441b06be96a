"""``plsim sweep SWEEP.toml --ensemble FILE``: every sweep run also run under each member of
a parameter ensemble, on the run's own seeds.

Member ``m``'s base scenario is the sweep's base read over the member's parameter values
(standing in for the fitted set's where they name a parameter: the base file's own
values, the sweep's overrides and the varied fields still win). Each run (design sample
x replicate) under member ``m`` uses the run's stream key: the same students and random
streams as the fitted set's run (common random numbers), so members differ by their
parameters only. Output, beside the sweep's own::

    ensemble/run-NNNNNN-mMMMM.parquet   run NNNNNN's outcomes under member MMMM (a part,
                                        sealed in .seals/ like the sweep's own)
    ensemble.parquet                    per sample x member x arm x year x band: the
                                        member means (``robustness.member_means``)
    sample_summary.csv                  per sample x arm x year x band: the fitted set's
                                        paired differences from the first arm with their
                                        95% intervals across replicates, and beside each
                                        ``ens_low``, ``ens_high``, ``robust_share``
                                        (``robustness.add_ensemble_columns``)

Both tables are written once every part is finished. A part's key names its member, and
the ensemble's values are part of the sweep's fingerprint (``sweeps.sweep_fingerprint``),
so ``--resume`` skips finished member parts and refuses another ensemble.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.analysis.robustness import add_ensemble_columns, member_means
from sim.analysis.summaries import ALL, PAIRED, mean_interval
from sim.config.ensemble import Ensemble, read_ensemble
from sim.config.scenario import ScenarioError, shorten
from sim.engine.outcomes import BANDS
from sim.experiments.executor import map_unordered
from sim.experiments.runner import progress_bar
from sim.experiments.storage import atomic_write

FOLDER = "ensemble"
MEANS_FILE = "ensemble.parquet"
SUMMARY_FILE = "sample_summary.csv"
KEYS = ["arm", "year", "start_band"]


def member_part(out: Path, run_id: int, member: int) -> Path:
    return out / FOLDER / f"run-{run_id:06d}-m{member:04d}.parquet"


@dataclass
class SweepEnsemble:
    """An ensemble checked against a sweep: each member's base scenario data.

    Args:
        ensemble: the members (``sim.config.ensemble``).
        bases: member ``m``'s base scenario as data (``sweeps.base_data``).
    """

    ensemble: Ensemble
    bases: list[dict]

    def record(self) -> dict:
        """The manifest's ``ensemble``: file, member count and the members' values."""
        return {"file": self.ensemble.source, "members": self.ensemble.size,
                "parameters": self.ensemble.values}

    def run(self, sweep, exp: pd.DataFrame, out: Path, fingerprint: str,
            workers: int | None, scheduler: str | None, progress: bool) -> dict:
        """Run the member parts not yet finished, then write the tables; returns counts."""
        from sim.experiments import sweeps

        check = sweeps.seals(out, fingerprint)
        keys = [(int(i), m) for i in exp.run_id for m in range(self.ensemble.size)]
        done = {k for k in keys if check.check(member_part(out, *k).stem,
                                               [member_part(out, *k)])}
        (out / FOLDER).mkdir(exist_ok=True)
        todo = _tasks(sweep, self.bases, exp, done)
        bar = progress_bar(len(keys), progress, "ensemble member runs", initial=len(done))
        ran = 0
        try:
            for run_id, member, frame in map_unordered(_member_task, todo, workers or 0,
                                                       scheduler):
                path = member_part(out, run_id, member)
                atomic_write(path, lambda p, f=frame: f.to_parquet(p, index=False))
                check.seal(path.stem, [path])
                bar.update()
                ran += 1
        finally:
            bar.close()
        arms = [a["label"] for a in self.bases[0]["arms"]]
        write_tables(out, sweep, exp, self.ensemble.size, arms)
        return {"member_runs": len(keys), "member_skipped": len(done), "member_ran": ran}


def load_members(sweep, sweep_path: str | Path, ensemble_path: str | Path) -> SweepEnsemble:
    """Read the ensemble file and check every member's design points (ScenarioError names
    the file, the member and the field), before anything runs."""
    from sim.experiments.sweeps import base_data, design_matrix, scenario_for, unique_rows

    missing = [m for m in PAIRED if m not in sweep.outcomes]
    if missing:
        raise ScenarioError(f"{sweep_path}: outcomes: --ensemble compares the paired "
                            f"differences of {' and '.join(PAIRED)}; add "
                            f"{', '.join(missing)} to the sweep's outcomes")
    ens = read_ensemble(ensemble_path)
    rows = list(unique_rows(design_matrix(sweep)))
    bases = []
    for i in range(ens.size):
        source = (f"{ens.source} (member {i + 1} of {ens.size}, with "
                  f"{shorten(str(sweep_path))})")
        base = base_data(sweep, Path(sweep_path), ens.member_tables(i), source)
        for row in rows:
            scenario_for(sweep, base, row, source)
        bases.append(base)
    return SweepEnsemble(ens, bases)


def _tasks(sweep, bases: list[dict], exp: pd.DataFrame, skip: set):
    """(scenario, stream key, run id, outcomes, member) of every member part to run."""
    from sim.experiments.sweeps import scenario_for

    coords = exp[[f"x:{p.path}" for p in sweep.parameters]].to_numpy(float)
    for row, run_id, key in zip(coords, exp.run_id, exp.stream_key, strict=True):
        for m, base in enumerate(bases):
            if (int(run_id), m) not in skip:
                yield (scenario_for(sweep, base, row), int(key), int(run_id),
                       list(sweep.outcomes), m)


def _member_task(task) -> tuple[int, int, pd.DataFrame]:
    """One run under one member (module level: pool and Dask workers run it)."""
    from sim.experiments.sweeps import run_one

    scenario, stream_key, run_id, outcomes, member = task
    frame = run_one(scenario, stream_key, run_id, outcomes)
    gc.collect()  # the district's arrays sit in reference cycles: free them now
    return run_id, member, frame


# --- the tables ----------------------------------------------------------------------
def write_tables(out: Path, sweep, exp: pd.DataFrame, members: int, arms: list[str]) -> None:
    """``ensemble.parquet`` and ``sample_summary.csv`` (see the module), atomically;
    ``arms``: the labels in the scenario's order (the first is the baseline)."""
    from sim.experiments.sweeps import read_outcomes

    fitted = read_outcomes(out)
    parts = [pd.read_parquet(member_part(out, int(i), m)).assign(member=m)
             for i in exp.run_id for m in range(members)]
    runs = exp[["run_id", "sample", "replicate"]]
    member_rows = pd.concat(parts, ignore_index=True).merge(runs, on="run_id")
    summaries, means = [], []
    for sample, f in fitted.groupby("sample", sort=True):
        mm = member_means(member_rows[member_rows["sample"] == sample], arms)
        summary = add_ensemble_columns(paired_summary(f, arms), mm)
        summaries.append(summary.assign(sample=sample))
        means.append(mm.assign(sample=sample))
    values = exp.groupby("sample")[[p.path for p in sweep.parameters]].first()
    table = pd.concat(summaries, ignore_index=True).join(values, on="sample")
    first = ["sample", *values.columns]
    table = table[first + [c for c in table.columns if c not in first]]
    ens = pd.concat(means, ignore_index=True)
    ens = ens[["sample", *[c for c in ens.columns if c != "sample"]]]
    ens["arm"], ens["start_band"] = ens["arm"].astype(str), ens["start_band"].astype(str)
    atomic_write(out / MEANS_FILE, lambda p: ens.to_parquet(p, index=False))
    atomic_write(out / SUMMARY_FILE,
                 lambda p: table.to_csv(p, index=False, float_format="%.6g"))


def paired_summary(rows: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """One design sample's runs (the sweep's outcomes, one row per replicate x arm x year
    x band) as arm x year x band: replicates, each paired metric's mean and its paired
    difference from the first arm, ``diff_<m>`` with its 95% interval across replicates
    (``diff_<m>_lo``, ``_hi``; as ``summary.csv``). Units: the metric's (growth in SD,
    proficiency a share 0-1)."""
    index = ["replicate", "year", "start_band"]
    base = rows[rows["arm"] == arms[0]].set_index(index)
    records = []
    for (arm, year, band), g in rows.groupby(KEYS, sort=False):
        rec = {"arm": arm, "year": int(year), "start_band": band,
               "replicates": int(g["replicate"].nunique())}
        idx = pd.MultiIndex.from_frame(g[index])
        for m in PAIRED:
            rec[m] = float(g[m].mean())
        for m in PAIRED:
            diff = pd.Series(g[m].to_numpy(float) - base[m].reindex(idx).to_numpy(float))
            rec[f"diff_{m}"], rec[f"diff_{m}_lo"], rec[f"diff_{m}_hi"] = mean_interval(diff)
        records.append(rec)
    out = pd.DataFrame.from_records(records)
    out["arm"] = pd.Categorical(out["arm"], categories=arms)
    out["start_band"] = pd.Categorical(out["start_band"], categories=[ALL, *BANDS])
    out = out.sort_values(["year", "start_band", "arm"]).reset_index(drop=True)
    return out.astype({"arm": str, "start_band": str})
