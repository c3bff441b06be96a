"""Robustness across a parameter ensemble: does a comparison keep its sign in every
plausible model?

``plsim run SCENARIO --ensemble FILE`` runs every member of the ensemble (parameter sets
consistent with the calibration facts, ``plsim calibrate --ensemble``) on the same seeds
as the run itself (common random numbers: the same replicates, the same students, for
every member). Per member, the mean across replicates of each arm's growth and
proficiency and of its paired difference from the first arm (``member_means``; the
run's ``ensemble.csv``). Beside each paired difference of ``summary.csv``:

* ``ens_low``, ``ens_high`` (growth) and ``proficient_ens_low``, ``proficient_ens_high``:
  the interval across members of the member-mean difference — the 2.5th to 97.5th
  percentile with 20 members or more, the smallest to the largest with fewer;
* ``robust_share`` (growth) and ``proficient_robust_share``: the share of members whose
  difference has the sign of the run's own pooled difference (the row's
  ``diff_growth_sd``, pooled over replicates); empty for the baseline's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis.summaries import ALL, PAIRED, replicate_means

ENSEMBLE_FILE = "ensemble.csv"
PERCENTILE_MEMBERS = 20  # from this many members on, the interval is 2.5-97.5 percentiles
KEYS = ["member", "arm", "year", "start_band"]
# summary column prefix of each paired metric's ensemble columns (growth: the ranking's)
PREFIX = {"growth_sd": "", "proficient": "proficient_"}


def member_replicates(rows: pd.DataFrame, member: int) -> pd.DataFrame:
    """One member's replicate means of one arm x replicate (``replicate_means``) of the
    paired metrics, tagged with the member."""
    reps = replicate_means(rows, PAIRED)
    reps = reps[reps.arm.isin(rows.arm.unique())].copy()  # the part's own arm only
    reps.insert(0, "member", member)
    return reps[["member", "arm", "replicate", "year", "start_band", *PAIRED]]


def member_means(reps: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Per member x arm x year x band: the mean across replicates of each paired metric and
    of its paired difference from the first arm (``diff_<metric>``)."""
    reps = reps.copy()
    reps["arm"] = pd.Categorical(reps["arm"].astype(str), categories=arms)
    base = reps[reps.arm == arms[0]].set_index(["member", "replicate", "year", "start_band"])
    idx = pd.MultiIndex.from_frame(reps[["member", "replicate", "year", "start_band"]])
    for m in PAIRED:
        reps[f"diff_{m}"] = reps[m].to_numpy() - base[m].reindex(idx).to_numpy()
    cols = [*PAIRED, *(f"diff_{m}" for m in PAIRED)]
    out = reps.groupby(KEYS, observed=True)[cols].mean().reset_index()
    return out.sort_values(KEYS).reset_index(drop=True)


def ensemble_interval(values) -> tuple[float, float]:
    """The interval across members (see the module): percentiles or smallest-largest."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan
    if v.size >= PERCENTILE_MEMBERS:
        lo, hi = np.percentile(v, [2.5, 97.5])
        return float(lo), float(hi)
    return float(v.min()), float(v.max())


def interval_kind(members: int) -> str:
    """The interval's definition in words, for the report."""
    return ("2.5th to 97.5th percentile" if members >= PERCENTILE_MEMBERS
            else "smallest to largest")


def same_sign_share(values, reference: float) -> float:
    """Share of members whose value has the sign of ``reference`` (NaN when it has none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not np.isfinite(reference) or reference == 0:
        return np.nan
    return float(np.mean(np.sign(v) == np.sign(reference)))


def add_ensemble_columns(summary: pd.DataFrame, means: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with each paired difference's ensemble columns beside its interval."""
    out = summary.copy()
    groups = {(str(a), int(y), str(b)): g for (a, y, b), g in
              means.groupby(["arm", "year", "start_band"], observed=True)}
    for m in PAIRED:
        p = PREFIX[m]
        lows, highs, shares = [], [], []
        for r in out.itertuples():
            g = groups.get((str(r.arm), int(r.year), str(r.start_band)))
            vals = g[f"diff_{m}"] if g is not None else []
            lo, hi = ensemble_interval(vals)
            lows.append(lo)
            highs.append(hi)
            shares.append(same_sign_share(vals, getattr(r, f"diff_{m}")))
        at = out.columns.get_loc(f"diff_{m}_hi") + 1
        for name, col in zip(("ens_low", "ens_high", "robust_share"), (lows, highs, shares),
                             strict=True):
            out.insert(at, f"{p}{name}", col)
            at += 1
    return out


def robustness(means: pd.DataFrame, contrasts: pd.DataFrame, baseline: str, year: int,
               band: str = ALL) -> pd.DataFrame:
    """Each arm against ``baseline`` in ``year`` and ``band``: per paired metric, the run's
    own difference (``contrasts``, pooled over replicates), the interval across members of
    the member-mean difference and how many members keep its sign.

    Returns one row per arm: ``arm``, ``members`` and, per metric, ``<m>``,
    ``<m>_ens_low``, ``<m>_ens_high``, ``<m>_agree`` (members keeping the sign).
    """
    sel = means[(means.year == year) & (means.start_band.astype(str) == band)]
    wide = sel.pivot_table(index="member", columns="arm", values=list(PAIRED),
                           observed=True, dropna=False)
    c = contrasts[contrasts.start_band.astype(str) == band].set_index("arm")
    rows = []
    for arm in c.index:
        arm = str(arm)
        if arm == baseline:
            continue
        rec = {"arm": arm, "members": int(sel.member.nunique())}
        for m in PAIRED:
            if (m, arm) not in wide.columns or (m, baseline) not in wide.columns:
                continue
            d = (wide[(m, arm)] - wide[(m, baseline)]).to_numpy(float)
            ref = float(c.loc[arm, m])
            rec[m] = ref
            rec[f"{m}_ens_low"], rec[f"{m}_ens_high"] = ensemble_interval(d)
            share = same_sign_share(d, ref)
            finite = int(np.isfinite(d).sum())
            rec[f"{m}_agree"] = int(round(share * finite)) if np.isfinite(share) else None
            rec[f"{m}_members"] = finite
        rows.append(rec)
    return pd.DataFrame(rows)
