"""Dataset summaries and MLflow metric dicts (no Kedro imports)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import shown_path


def dataset_summary(dataset: LeRobotDatasetReader) -> dict:
    """Counts and lengths of a dataset, plus intervention fraction when present."""
    lengths = dataset.lengths
    columns = dataset.column_names()
    summary = {
        "path": shown_path(dataset.root),
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
        per_ep = (
            np.add.reduceat(flag.astype(np.int64), dataset.offsets[:-1])
            if len(flag)
            else np.zeros(0)
        )
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
