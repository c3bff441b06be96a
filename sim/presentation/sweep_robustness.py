"""The sweep report's robustness section: do each design sample's comparisons keep their
direction across a parameter ensemble's plausible models (``plsim sweep --ensemble``)?

Read from the sweep folder's ``sample_summary.csv`` (:mod:`sim.experiments.sweep_ensemble`:
per design sample x arm x year x band, each arm's paired difference from the first arm
with its 95% interval across replicates, ``ens_low``/``ens_high`` across members and
``robust_share``, the share of members keeping the difference's sign) and the manifest's
``ensemble`` entry (``{"file", "members", "parameters"}``). Shown for the report's year
and all students: the counts of comparisons robust in every, most or too few plausible
models, and a table of the least robust ``SHOWN`` comparisons (all of them when fewer).
A sweep without an ensemble has no such section. Plain text and a table of display
strings only: the report escapes and lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.robustness import interval_kind
from sim.analysis.summaries import ALL
from sim.config.scenario import ScenarioError
from sim.experiments.sweep_ensemble import SUMMARY_FILE
from sim.presentation.narrative import (
    across_models,
    format_ci,
    in_models,
    robust_level,
)

SHOWN = 10  # comparisons in the table; the rest are counted
METRICS = (("growth_sd", "", "growth", "SD", 1.0, 2),  # metric, column prefix, words, unit,
           ("proficient", "proficient_", "proficient", "points", 100.0, 1))  # scale, digits
NEEDED = ("sample", "arm", "year", "start_band", "diff_growth_sd", "diff_growth_sd_lo",
          "diff_growth_sd_hi", "ens_low", "ens_high", "robust_share", "diff_proficient",
          "diff_proficient_lo", "diff_proficient_hi", "proficient_ens_low",
          "proficient_ens_high", "proficient_robust_share")


@dataclass
class SweepRobustness:
    """The section's content: paragraphs (plain text) and the table (display strings)."""

    lead: str
    notes: list[str]
    table: pd.DataFrame | None


def members_of(manifest: dict, where: Path) -> int | None:
    """The ensemble's member count from the manifest (None: the sweep had no ensemble)."""
    entry = manifest.get("ensemble")
    if entry is None:
        return None
    k = entry.get("members") if isinstance(entry, dict) else None
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ScenarioError(f"{where / 'manifest.json'}: ensemble.members: {k!r}; a count "
                            "of plausible models (1 or more) is allowed")
    return k


def read_sample_summary(path: Path) -> pd.DataFrame:
    """``sample_summary.csv``; ScenarioError naming the file and a missing column."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ScenarioError(f"{path}: unreadable ({type(err).__name__})") from None
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise ScenarioError(f"{path}: column {missing[0]} is missing; rerun the sweep with "
                            "--resume and the same --ensemble to rewrite it")
    return table.astype({"arm": str, "start_band": str})


def kept(share: float, members: int) -> int | None:
    """Members keeping the sign, from their share (None: no difference to keep)."""
    return int(round(share * members)) if np.isfinite(share) else None


def comparisons(summary: pd.DataFrame, year: int, baseline: str) -> pd.DataFrame:
    """Each design sample's arms against ``baseline`` in ``year``, all students, least
    robust first: growth's share of members keeping the sign, then proficiency's (a
    comparison with no difference, hence no sign, last); the sweep's order otherwise."""
    rows = summary[(summary["year"] == year) & (summary["start_band"] == ALL)
                   & (summary["arm"] != baseline)]
    return rows.sort_values(["robust_share", "proficient_robust_share"], kind="stable",
                            na_position="last").reset_index(drop=True)


def _row_cells(r: dict, members: int, parameters: list[str]) -> dict[str, str]:
    cells = {"sample": str(int(r["sample"]))}
    cells.update({p: f"{r[p]:.3g}" for p in parameters if p in r})
    cells["arm"] = r["arm"]
    for metric, p, words, unit, f, digits in METRICS:
        agree = kept(r[f"{p}robust_share"], members)
        counts = {f"{metric}_agree": agree, f"{metric}_members": members}
        cells[f"{words} vs baseline ({unit})"] = format_ci(
            r[f"diff_{metric}"], r[f"diff_{metric}_lo"], r[f"diff_{metric}_hi"], f, digits,
            signed=True)
        cells[f"{words} across plausible models ({unit})"] = across_models(
            metric, r[f"{p}ens_low"], r[f"{p}ens_high"], unit=False)
        cells[f"{words}: kept its sign"] = (in_models(counts, metric) if agree is not None
                                            else "no change to keep")
    return cells


def _levels(rows: pd.DataFrame, prefix: str, members: int) -> dict[str, int]:
    """Comparisons per robustness level ('every', 'most', 'not'; 'none': no change)."""
    out = {"every": 0, "most": 0, "not": 0, "none": 0}
    for share in rows[f"{prefix}robust_share"]:
        agree = kept(share, members)
        out["none" if agree is None else robust_level(agree, members)] += 1
    return out


def _count_words(levels: dict[str, int], verb: str = "") -> str:
    words = (f"{levels['every']}{verb} in every plausible model, {levels['most']} in most "
             f"(90% or more of them) and {levels['not']} in fewer")
    return words + (f" ({levels['none']} showed no change)" if levels["none"] else "")


def section(run_dir: str | Path, manifest: dict, year: int, baseline: str,
            parameters: list[str]) -> SweepRobustness | None:
    """The section of a finished sweep's report, or None when it had no ensemble.

    Args:
        run_dir: the sweep's folder (``sample_summary.csv`` and the manifest).
        manifest: its manifest as data.
        year: the report's year; the comparisons of all students that year are shown.
        baseline: the first arm (``sample_summary.csv``'s differences are from it).
        parameters: the sweep's varied parameters' paths (their values label the rows).
    """
    d = Path(run_dir)
    members = members_of(manifest, d)
    if members is None:
        return None
    source = (manifest.get("ensemble") or {}).get("file") or ""
    ensemble = f" (the ensemble {Path(str(source)).name})" if source else ""
    lead = (f"Every design sample was also run under each of {members} plausible models "
            f"— parameter sets consistent with every calibration fact{ensemble} — on the "
            "same students and random events.")
    path = d / SUMMARY_FILE
    if not path.is_file():
        return SweepRobustness(lead, [f"{SUMMARY_FILE} is missing, so how robust each "
                                      "comparison is cannot be shown: rerun the sweep with "
                                      "--resume and the same --ensemble to write it."], None)
    rows = comparisons(read_sample_summary(path), year, baseline)
    if rows.empty:
        return SweepRobustness(lead, [f"{SUMMARY_FILE} has no comparison with {baseline} "
                                      f"in year {year}."], None)
    n = len(rows)
    growth, prof = _levels(rows, "", members), _levels(rows, "proficient_", members)
    lead += (f" In year {year}, for all students of the program grades, there are {n} "
             f"comparisons with {baseline} (one per design sample and arm). Change in "
             f"growth: {_count_words(growth, ' kept their direction')}. Change in "
             f"proficiency: {_count_words(prof)}. A comparison is robust when it keeps its "
             "direction in every plausible model.")
    shown = rows.head(SHOWN)
    rest = rows.iloc[SHOWN:]
    what = ("every comparison" if rest.empty else
            f"the {len(shown)} least robust of the {n} comparisons (by growth, then "
            "proficiency)")
    notes = [f"The table shows {what}: each arm's change against {baseline} with its 95% "
             "interval across replicates, its change across the plausible models ("
             f"{interval_kind(members)}) and in how many of them the change kept its sign. "
             "Growth in SD of the state's fall scores; proficiency in percentage points."]
    if not rest.empty:
        notes.append(f"The other {len(rest)} comparisons are in {SUMMARY_FILE}; "
                     f"{_levels(rest, '', members)['every']} of them kept the sign of their "
                     "change in growth in every plausible model.")
    table = pd.DataFrame([_row_cells(r, members, parameters)
                          for r in shown.to_dict("records")])
    return SweepRobustness(lead, notes, table)
