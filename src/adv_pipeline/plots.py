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


def predicted_vs_true(report: dict, max_episodes: int = 4) -> Figure:
    """Predicted absolute value vs true stage progress along a few validation episodes."""
    n = max(1, min(max_episodes, len(report["episodes"])))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False, constrained_layout=True)
    for ax, ep, frames, pred, true in zip(axes[0], report["episodes"], report["frames"], report["predicted"], report["true"]):
        ax.plot(frames, true, label="true progress", color="black")
        ax.plot(frames, pred, label="predicted", color="tab:orange")
        ax.set_title(f"episode {ep}", fontsize=9)
        ax.set_xlabel("frame")
    m = report["metrics"]
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{m.get('variant', '')} step {m.get('step', '')}: Spearman {m['val_spearman']:.3f}, MSE {m['val_mse']:.4f}", fontsize=10)
    return fig


def estimated_vs_gt_advantage(episodes: list[dict], title: str = "") -> Figure:
    """Estimated ``absolute_advantage`` vs the ground-truth advantage along a few
    episodes; shaded where the estimated binary label is positive.

    Each item: ``{"episode", "estimated", "gt", "label"}`` with (n,) arrays.
    """
    n = max(1, len(episodes))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False, constrained_layout=True)
    for ax, ep in zip(axes[0], episodes):
        t = np.arange(len(ep["estimated"]))
        ax.plot(t, ep["gt"], color="black", label="GT advantage (progress)")
        ax.plot(t, ep["estimated"], color="tab:orange", label="estimated absolute_advantage")
        lo, hi = ax.get_ylim()
        ax.fill_between(t, lo, hi, where=np.asarray(ep["label"]) > 0, color="tab:green", alpha=0.12, label="estimated positive")
        ax.set_ylim(lo, hi)
        ax.set_title(f"episode {ep['episode']}", fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
