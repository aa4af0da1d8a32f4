"""Dataset summaries, MLflow metric dicts and overview figures (no Kedro imports)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from adv_pipeline.lerobot import LeRobotDatasetReader  # noqa: E402

PROGRESS_COLUMNS = ("progress", "progress_gt", "stage_progress_gt")


def dataset_summary(dataset: LeRobotDatasetReader) -> dict:
    """Counts and lengths of a dataset, plus intervention fraction when present."""
    lengths = dataset.lengths
    columns = dataset.column_names()
    summary = {
        "path": str(dataset.root),
        "episodes": dataset.num_episodes,
        "frames": dataset.num_frames,
        "fps": dataset.fps,
        "tasks": list(dataset.tasks),
        "cameras": list(dataset.video_keys),
        "columns": columns,
        "episode_length": {
            "mean": float(lengths.mean()) if len(lengths) else 0.0,
            "min": int(lengths.min()) if len(lengths) else 0,
            "max": int(lengths.max()) if len(lengths) else 0,
        },
        "duration_s": float(dataset.num_frames / dataset.fps),
    }
    if "intervention" in columns:
        flag = dataset.read_columns(["intervention"])["intervention"]
        flag = flag[:, 0] if flag.ndim > 1 else flag
        per_ep = np.add.reduceat(flag.astype(np.int64), dataset.offsets[:-1]) if len(flag) else np.zeros(0)
        summary["intervention"] = {
            "frame_fraction": float(flag.mean()) if len(flag) else 0.0,
            "episodes_with_intervention": int((per_ep > 0).sum()),
        }
    return summary


def metrics_for_mlflow(summary: Mapping, prefix: str = "") -> dict[str, dict]:
    """Flatten the numeric leaves of a summary into kedro-mlflow's metrics format
    (``{"a.b": {"value": v, "step": 0}}``; kedro-mlflow prefixes the dataset name)."""
    out: dict[str, dict] = {}

    def walk(obj, name):
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(obj, (int, float, np.integer, np.floating)) and not isinstance(obj, bool):
            out[name] = {"value": float(obj), "step": 0}

    walk(summary, prefix)
    return out


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
        if j == 0:
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
