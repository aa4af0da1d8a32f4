"""Every figure the pipelines log to MLflow, in one place (matplotlib, Agg backend; no
Kedro imports)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from adv_pipeline.lerobot import LeRobotDatasetReader  # noqa: E402
from adv_pipeline.schema import PROGRESS, STAGE_PROGRESS  # noqa: E402

PROGRESS_COLUMNS = (PROGRESS, "progress_gt", STAGE_PROGRESS)  # plotted when present


def advantage_histogram(adv: np.ndarray, groups, cuts: list[np.ndarray], config) -> Figure:
    """Histogram of the advantage per threshold group (stage, or task and stage) with its
    threshold (binary) or bin boundaries (n_slices) as vertical lines."""
    n = len(cuts)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False, constrained_layout=True
    )
    lo, hi = (float(adv.min()), float(adv.max())) if len(adv) else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 60)
    for g, (ax, cut) in enumerate(zip(axes.flat, cuts)):
        values = adv[groups.index == g]
        # counted on numpy's equal-width path (the same counts as ax.hist(values, bins),
        # without sorting millions of frames), then drawn as the same bars
        counts, _ = np.histogram(values, bins=len(bins) - 1, range=(bins[0], bins[-1]))
        ax.hist(bins[:-1], bins=bins, weights=counts, color="tab:blue", alpha=0.8)
        binary = config.discretization == "binary"
        for j, c in enumerate(cut):
            ax.axvline(
                c,
                color="tab:red",
                lw=1.5 if binary else 0.8,
                ls="-" if binary else "--",
                label="threshold" if j == 0 and binary else None,
            )
        title = f"{groups.name(g)}: {values.size} frames"
        if binary:
            title += f", top {config.threshold:g}% >= {cut[0]:.3g}"
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"advantage ({config.advantage_source})")
        ax.set_ylabel("frames")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig


def predicted_vs_true(report: dict, max_episodes: int = 4) -> Figure:
    """Predicted absolute value vs true stage progress along a few validation episodes."""
    n = max(1, min(max_episodes, len(report["episodes"])))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False, constrained_layout=True)
    for ax, ep, frames, pred, true in zip(
        axes[0], report["episodes"], report["frames"], report["predicted"], report["true"]
    ):
        ax.plot(frames, true, label="true progress", color="black")
        ax.plot(frames, pred, label="predicted", color="tab:orange")
        ax.set_title(f"episode {ep}", fontsize=9)
        ax.set_xlabel("frame")
    m = report["metrics"]
    axes[0][0].legend(fontsize=8)
    fig.suptitle(
        f"{m.get('variant', '')} step {m.get('step', '')}: Spearman {m['val_spearman']:.3f}, MSE "
        f"{m['val_mse']:.4f}",
        fontsize=10,
    )
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
        ax.fill_between(
            t,
            lo,
            hi,
            where=np.asarray(ep["label"]) > 0,
            color="tab:green",
            alpha=0.12,
            label="estimated positive",
        )
        ax.set_ylim(lo, hi)
        ax.set_title(f"episode {ep['episode']}", fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def dataset_overview_figure(dataset: LeRobotDatasetReader, n_episodes: int = 4) -> Figure:
    """Progress columns of a few episodes (top) and first/middle/last frames of the
    first episode for every camera (bottom)."""
    cols = [c for c in PROGRESS_COLUMNS if c in dataset.column_names()]
    cams = dataset.video_keys
    n_show = min(n_episodes, dataset.num_episodes)
    fig = plt.figure(figsize=(3.2 * max(n_show, 3), 3.0 + 2.2 * len(cams)), constrained_layout=True)
    grid = fig.add_gridspec(1 + len(cams), max(n_show, 3))
    picks = np.linspace(0, dataset.num_episodes - 1, n_show).round().astype(int) if n_show else []
    for j, pos in enumerate(picks):
        ep = dataset.episodes[pos].episode_index
        ax = fig.add_subplot(grid[0, j])
        if cols:
            data = dataset.read_episode(ep, cols)
            for c in cols:
                ax.plot(np.asarray(data[c]).reshape(len(data[c]), -1)[:, 0], label=c)
        ax.set_title(f"episode {ep}")
        ax.set_xlabel("frame")
        ax.set_ylim(-0.05, 1.05)
        if j == 0 and cols:
            ax.legend(fontsize=7)
    if cams and dataset.num_episodes:
        ep = dataset.episodes[0]
        idx = sorted({0, ep.length // 2, ep.length - 1})
        frames = dataset.get_frames(ep.episode_index, idx)
        for i, cam in enumerate(cams):
            for j, t in enumerate(idx):
                ax = fig.add_subplot(grid[1 + i, j])
                ax.imshow(frames[cam][j])
                ax.set_title(f"{cam.rsplit('.', 1)[-1]} t={t}", fontsize=8)
                ax.axis("off")
    return fig


def results_figure(table: pd.DataFrame) -> Figure:
    """Success rate with 95% Wilson intervals, and mean final progress (mean steps where
    the world gives no progress), per task and condition; a condition keeps its colour
    across tasks, the scripted expert (the ceiling) is grey."""
    several = "task" in table and table["task"].nunique() > 1
    fig = Figure(figsize=(max(9.0, 0.9 * len(table)) if several else 9, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(len(table))
    rate = table["success_rate"].to_numpy()
    err = np.stack(
        [rate - table["success_ci_low"].to_numpy(), table["success_ci_high"].to_numpy() - rate]
    )
    order = list(dict.fromkeys(table["condition"]))
    colors = ["0.6" if c == "expert" else f"C{order.index(c)}" for c in table["condition"]]
    ax1.bar(x, rate, yerr=err, capsize=4, color=colors)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("success rate (95% Wilson CI)")
    progress = table["mean_final_progress"].to_numpy(dtype=float)
    if len(table) and np.isnan(progress).all():
        ax2.bar(x, table["mean_steps"].to_numpy(), color=colors)
        ax2.set_ylabel("mean steps (success ends a rollout)")
    else:
        ax2.bar(x, progress, color=colors)
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("mean final progress")
    per_task = table[table["task"] != "all"] if "task" in table else table
    n = int(per_task["n_episodes"].max()) if len(per_task) else 0
    labels = table["condition"].tolist()
    if several:  # say which task (all: the tasks pooled)
        labels = [f"{t}: {c}" for t, c in zip(table["task"], labels)]
    for ax in (ax1, ax2):
        ax.set_xticks(x, labels, rotation=35 if several else 20, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"closed-loop evaluation, {n} seeded rollouts per condition"
        + (" and task" if several else "")
    )
    return fig


def seed_sweep_figure(
    per_seed: pd.DataFrame, summary: pd.DataFrame, differences: pd.DataFrame, metric: str
) -> Figure:
    """Left: each condition's mean over the training seeds with its interval, each seed's
    value a dot. Right: the paired differences the same way, against 0. One row of panels
    per task (``all``, the pooled row, only where the world has several tasks)."""
    tasks = list(dict.fromkeys(summary["task"]))
    fig = Figure(figsize=(11, 3.6 * len(tasks)), layout="constrained")
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    n_seeds = per_seed["seed"].nunique()
    for (ax1, ax2), task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        order = rows["condition"].tolist()
        x = np.arange(len(rows))
        colors = ["0.6" if c == "expert" else f"C{i}" for i, c in enumerate(order)]
        for ax, frame, key, xs in (
            (ax1, rows, "condition", x),
            (ax2, differences[differences["task"] == task], "difference", None),
        ):
            xs = np.arange(len(frame)) if xs is None else xs
            mean = frame["mean"].to_numpy(dtype=float)
            err = np.stack([mean - frame["ci_low"], frame["ci_high"] - mean]).astype(float)
            ax.bar(xs, mean, yerr=np.nan_to_num(err), capsize=4, color=colors[: len(frame)]
                   if ax is ax1 else "0.75")  # fmt: skip
            for i, values in enumerate(frame["per_seed"]):
                dots = [float(v) for v in str(values).split(" / ") if v]
                ax.plot(np.full(len(dots), xs[i]), dots, "k.", ms=5)
            ax.set_xticks(xs, frame[key].tolist(), rotation=20, ha="right", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
        ax2.axhline(0, color="k", lw=0.8)
        ax1.set_ylabel(f"{metric}: mean, 95% interval" + (f" ({task})" if len(tasks) > 1 else ""))
        ax2.set_ylabel("paired difference")
    fig.suptitle(f"{n_seeds} training seeds (dots), same rollout seeds for every condition")
    return fig


def skipped_figure(reason: str) -> Figure:
    """A figure that says why an evaluation did not run (MLflow shows it in its place)."""
    fig = Figure(figsize=(8, 1.6), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def offline_figure(table: pd.DataFrame, subtitle: str) -> Figure:
    """Offline metrics per action dimension: normalised squared error of each condition
    (left) and how far the positive and negative prompts move the chunk (right)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    per_dim = table[table["dimension"] != "all"]
    err = per_dim[per_dim["metric"] == "mse_normalized"]
    conditions = list(dict.fromkeys(err["condition"]))
    dims = sorted({int(d) for d in err["dimension"]})
    width = 0.8 / max(len(conditions), 1)
    for i, c in enumerate(conditions):
        v = err[err["condition"] == c].sort_values("dimension", key=lambda d: d.astype(int))
        ax1.bar(np.arange(len(dims)) + i * width, v["value"].to_numpy(), width, label=c)
    ax1.set_xticks(np.arange(len(dims)) + 0.4 - width / 2, [str(d) for d in dims])
    ax1.set_xlabel("action dimension")
    ax1.set_ylabel("held-out MSE (normalised units)")
    ax1.legend(fontsize=8)
    shift = per_dim[per_dim["metric"] == "mean_abs_shift_normalized"]
    shift = shift.sort_values("dimension", key=lambda d: d.astype(int))
    if shift.empty:  # awbc.method weighted or filtered: no advantage in the prompt
        ax2.text(0.5, 0.5, "no advantage prompts\n(awbc.method: weighted or filtered)",
                 ha="center", va="center", transform=ax2.transAxes)  # fmt: skip
    ax2.bar(np.arange(len(shift)), shift["value"].to_numpy(), color="C4")
    ax2.set_xticks(np.arange(len(shift)), shift["dimension"].tolist())
    ax2.set_xlabel("action dimension")
    ax2.set_ylabel("|positive - negative| (normalised)")
    for ax in (ax1, ax2):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"offline evaluation: {subtitle}")
    return fig
