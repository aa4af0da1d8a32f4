"""Figures logged to MLflow (matplotlib, Agg backend; no Kedro imports)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def advantage_histogram(adv: np.ndarray, stage: np.ndarray, cuts: list[np.ndarray], config) -> Figure:
    """Histogram of the advantage per stage with its threshold (binary) or bin
    boundaries (n_slices) as vertical lines."""
    n = len(cuts)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.5), squeeze=False, constrained_layout=True)
    lo, hi = (float(adv.min()), float(adv.max())) if len(adv) else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 60)
    for s, (ax, cut) in enumerate(zip(axes[0], cuts)):
        values = adv[stage == s]
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        for j, c in enumerate(cut):
            ax.axvline(c, color="tab:red", lw=1.5 if config.discretization == "binary" else 0.8, ls="-" if config.discretization == "binary" else "--", label="threshold" if j == 0 and config.discretization == "binary" else None)
        title = f"stage {s}: {values.size} frames"
        if config.discretization == "binary":
            title += f", top {config.threshold:g}% >= {cut[0]:.3g}"
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"advantage ({config.advantage_source})")
        ax.set_ylabel("frames")
    return fig
