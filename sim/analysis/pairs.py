"""The pairs plot of a parameter ensemble (PNG, matplotlib's Agg backend): every pair of
parameters as a scatter of the not-ruled-out sample (grey) and the ensemble's members
(dark), each parameter's histogram on the diagonal, axes over the search ranges.
Parameter names are data, drawn as plain text (``figures.plain_text``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sim.analysis.figures import plain_text

PANEL_INCHES = 1.1  # each panel's side
MAX_BACKGROUND = 1500  # NROY points drawn (a sample): enough to show the shape


@plain_text
def pairs_plot(names: list[str], bounds: np.ndarray, members: np.ndarray,
               background: np.ndarray | None, path: Path) -> Path:
    """Draw and save the pairs plot; returns ``path``."""
    d = len(names)
    fig, axes = plt.subplots(d, d, figsize=(PANEL_INCHES * d + 1, PANEL_INCHES * d + 1),
                             squeeze=False)
    if background is not None and len(background) > MAX_BACKGROUND:
        pick = np.random.default_rng(0).choice(len(background), MAX_BACKGROUND, replace=False)
        background = background[pick]
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            ax.tick_params(labelsize=5, length=2)
            if j > i:
                ax.set_axis_off()
                continue
            ax.set_xlim(*bounds[j])
            if i == j:
                ax.hist(members[:, j], bins=12, range=tuple(bounds[j]), color="0.25")
                ax.set_yticks([])
            else:
                ax.set_ylim(*bounds[i])
                if background is not None and len(background):
                    ax.scatter(background[:, j], background[:, i], s=1, color="0.8",
                               rasterized=True)
                ax.scatter(members[:, j], members[:, i], s=4, color="0.1")
            if i == d - 1:
                ax.set_xlabel(names[j], fontsize=6, rotation=30, ha="right")
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=6, rotation=0, ha="right", va="center")
            elif j > 0:
                ax.set_yticklabels([])
    fig.suptitle(f"Plausible parameter sets: {len(members)} members (dark) among the space "
                 "not ruled out (grey); axes span the search ranges", fontsize=9)
    fig.subplots_adjust(left=0.16, bottom=0.12, right=0.99, top=0.96, wspace=0.08,
                        hspace=0.08)
    fig.savefig(path, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path
