"""Intervals for shares (proportions, 0-1) that never leave 0-1.

A t-interval of replicate shares (mean ± t x SE) is symmetric, so with few
replicates or a share near 0 or 1 it runs outside the possible range (a share of
schools "between -0.7 and 1.7"). Two proper intervals, both 95%:

* :func:`logit_interval` — for a share measured on many units per replicate
  (proficiency over thousands of students), where the spread across replicates is
  the uncertainty: the t-interval of the replicate mean is built on the logit scale
  (delta method, SE / (p (1 - p))) and mapped back. Near 0.5 it is the t-interval;
  near 0 or 1 it shrinks on the near side and stays inside (0, 1).
* :func:`wilson_interval` — for a share of few units (schools of a district): the
  Wilson score interval (Wilson 1927; Agresti & Coull 1998) of the pooled count,
  with the number of units divided by the design effect when replicates disagree
  more than independent units would (Kish 1965): the effective number of units is
  ``units / max(1, observed variance / binomial variance)``. With 0 of 4 schools it
  gives [0, 0.49] where a t-interval gives [0, 0].
"""

from __future__ import annotations

import numpy as np

# scipy.stats.norm.ppf(0.975), written out: importing scipy.stats costs a command that
# never needs a t quantile (a sweep's runs) a third of a second; tests/test_shares.py
# checks the digits
Z95 = 1.959963984540054


def _clean(values) -> np.ndarray:
    x = np.asarray(values, float)
    return x[~np.isnan(x)]


def logit_interval(values) -> tuple[float, float, float]:
    """Mean of per-replicate shares (0-1) and its 95% interval on the logit scale.

    Returns ``(mean, low, high)``; low and high are NaN with fewer than two values.
    A mean of exactly 0 or 1 (every replicate at the bound) gets the degenerate
    interval at that bound, as the t-interval would.
    """
    x = _clean(values)
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, np.nan, np.nan
    se = float(x.std(ddof=1) / np.sqrt(x.size))
    if mean <= 0.0 or mean >= 1.0 or se == 0.0:
        return mean, mean, mean
    from scipy import stats  # here: the commands that need no interval never load it

    t = float(stats.t.ppf(0.975, x.size - 1))
    centre = np.log(mean / (1.0 - mean))
    half = t * se / (mean * (1.0 - mean))
    lo, hi = centre - half, centre + half
    return mean, float(1.0 / (1.0 + np.exp(-lo))), float(1.0 / (1.0 + np.exp(-hi)))


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``successes`` out of ``n`` (``n`` may be fractional:
    an effective size). NaN, NaN when ``n`` is 0."""
    if n <= 0:
        return np.nan, np.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def wilson_interval(values, units) -> tuple[float, float, float, float]:
    """Mean share across replicates and its 95% Wilson interval, design-effect adjusted.

    Args:
        values: per replicate, the share of its units (0-1), e.g. schools with a window.
        units: per replicate, the number of units the share is over (a number for all).

    Returns:
        ``(mean, low, high, effective_units)``: the pooled share (units-weighted), its
        interval and the effective number of units after the design effect.
    """
    x = np.asarray(values, float)
    m = np.broadcast_to(np.asarray(units, float), x.shape)
    keep = ~np.isnan(x) & (m > 0)
    x, m = x[keep], m[keep]
    if x.size == 0:
        return np.nan, np.nan, np.nan, 0.0
    n = float(m.sum())
    p = float((x * m).sum() / n)
    deff = 1.0
    if x.size >= 2 and 0.0 < p < 1.0:
        # the variance of one replicate's share were its units independent
        binomial = p * (1 - p) / m.mean()
        deff = max(1.0, float(x.var(ddof=1)) / binomial)
    n_eff = n / deff
    lo, hi = wilson(p * n_eff, n_eff)
    return p, lo, hi, n_eff
