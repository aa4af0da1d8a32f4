"""Nodes of the estimation pipeline (thin)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.estimator import LaunchConfig
from adv_pipeline.estimator.agreement import estimation_report
from adv_pipeline.estimator.estimation import EstimatedDataset, EstimationConfig
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.plots import estimated_vs_gt_advantage
from adv_pipeline.reporting import metrics_for_mlflow


def estimate_advantages(target: LeRobotDatasetReader, checkpoint: Checkpoint, params: dict[str, Any]) -> EstimatedDataset:
    """Write plan of the estimated dataset (labelled when the catalog saves it)."""
    launch = LaunchConfig(**params.get("launch", {}))
    config = EstimationConfig(**{k: v for k, v in params.items() if k != "launch"}, launch=launch)
    return EstimatedDataset(target, checkpoint, config)


def report_estimation(
    estimated: LeRobotDatasetReader, labeled: LeRobotDatasetReader, checkpoint: Checkpoint, label_params: dict[str, Any], params: dict[str, Any]
) -> tuple[dict, dict, Figure]:
    """Throughput and agreement with ground truth; metrics for MLflow; the plot. The GT
    labels use the AWBC labels' options with the true ``progress`` as the source (look-ahead
    = the estimation interval), so both label sets answer the same question."""
    gt_params = {**label_params, "advantage_source": "progress", "chunk_size": params["interval"]}
    report, episodes = estimation_report(estimated, labeled, checkpoint, gt_params)
    held = report.get("held_out_episodes", {})
    title = f"held-out ROC AUC {held['roc_auc']:.3f}, label accuracy {held['label_accuracy']:.3f}" if held else ""
    metrics = metrics_for_mlflow({k: report[k] for k in ("all_episodes", "held_out_episodes") if k in report})
    run = report.get("estimation", {})
    metrics.update(metrics_for_mlflow({k: run[k] for k in ("frames_computed", "frames_per_s", "seconds") if run.get(k) is not None}))
    return report, metrics, estimated_vs_gt_advantage(episodes, title)
