"""Nodes of the estimator pipeline (thin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.estimator import EstimatorConfig, LaunchConfig, run_training
from adv_pipeline.estimator.evaluate import evaluate_checkpoint
from adv_pipeline.estimator.train import read_metrics
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.plots import predicted_vs_true

LAUNCH_KEYS = ("nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port")


def train_estimator(dataset: LeRobotDatasetReader, run_dir: Path, params: dict[str, Any]) -> tuple[Checkpoint, dict]:
    """Train (or resume) in ``run_dir``; the final checkpoint and the metric histories."""
    config = EstimatorConfig.from_dict({k: params[k] for k in ("model", "data", "train")})
    launch = LaunchConfig(**{k: params[k] for k in LAUNCH_KEYS if k in params})
    checkpoint = run_training(dataset, run_dir, config, launch)
    history = {name: [{"step": s, "value": v} for s, v in points] for name, points in read_metrics(run_dir).items()}
    return checkpoint, history


def evaluate_estimator(checkpoint: Checkpoint, dataset: LeRobotDatasetReader) -> tuple[dict, Figure]:
    """Held-out Spearman/MSE report and the predicted-vs-true progress plot."""
    report = evaluate_checkpoint(checkpoint, dataset)
    return report, predicted_vs_true(report)
