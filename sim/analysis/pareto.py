"""Pareto dominance: which points no other point beats on every objective."""

from __future__ import annotations

import numpy as np


def non_dominated(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Mask of the rows of ``values`` (points x objectives) that no other row dominates.

    A row dominates another when it is at least as good on every objective and better
    on one ("good" per ``maximize``). Rows with a NaN are never in the set; of rows
    with identical values only the first is kept.
    """
    v = np.asarray(values, float)
    if v.ndim != 2 or v.shape[1] != len(maximize):
        raise ValueError(f"values must be points x {len(maximize)} objectives")
    signs = np.where(np.asarray(maximize, bool), 1.0, -1.0)
    g = v * signs  # larger is better everywhere
    ok = ~np.isnan(g).any(axis=1)
    keep = np.zeros(len(g), bool)
    for i in np.flatnonzero(ok):
        others = g[ok]
        ge = (others >= g[i]).all(axis=1)
        gt = (others > g[i]).any(axis=1)
        if (ge & gt).any():
            continue
        same = np.flatnonzero(ok)[(others == g[i]).all(axis=1)]
        keep[i] = same[0] == i
    return keep


def dominated_by(point: np.ndarray, front: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Mask of the rows of ``front`` that dominate ``point``."""
    signs = np.where(np.asarray(maximize, bool), 1.0, -1.0)
    p, f = np.asarray(point, float) * signs, np.asarray(front, float) * signs
    return (f >= p).all(axis=1) & (f > p).any(axis=1)
