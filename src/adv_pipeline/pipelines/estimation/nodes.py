"""Nodes of the estimation pipeline (thin)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.estimation.agreement import estimation_report
from adv_pipeline.estimation.checks import check_estimation_inputs
from adv_pipeline.figures import estimated_vs_gt_advantage
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import OutputTarget
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.reporting import metrics_for_mlflow


def _check(
    source: LeRobotDatasetReader, checkpoint: Checkpoint, params: dict[str, Any], out: OutputTarget
) -> None:
    config = parse("estimation", params)
    check_estimation_inputs(source, checkpoint, config.image_features, config.target)


@checked_by(_check)
def estimate_advantages(
    source: LeRobotDatasetReader, checkpoint: Checkpoint, params: dict[str, Any], out: OutputTarget
) -> LeRobotDatasetReader:
    """Label ``source`` with the estimator into ``out`` (resuming an interrupted run)."""
    from adv_pipeline.estimation.estimate import estimate  # torch loads when the node runs

    return estimate(
        source, checkpoint, out.path, parse("estimation", params), out.overwrite, out.format
    )


def report_estimation(
    estimated: LeRobotDatasetReader,
    labeled: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    stage0_params: dict[str, Any],
    label_params: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict, dict, Figure]:
    """Throughput and agreement with ground truth; metrics for MLflow; the plot. GT
    labels come from the true ``progress``: with Stage 0's options, and with the AWBC
    labels' options (look-ahead = the estimation interval)."""
    awbc_gt = {**label_params, "chunk_size": params["interval"]}
    report, episodes = estimation_report(
        estimated, labeled, checkpoint, stage0_params, awbc_gt, interval=params["interval"]
    )
    held = report.get("held_out_episodes", {})
    title = (
        f"held-out: ROC AUC {held['vs_stage0_labels']['roc_auc']:.3f} vs Stage 0 GT labels, "
        f"AWBC label accuracy {held['vs_awbc_options']['label_accuracy']:.3f}"
        if held
        else ""
    )
    metrics = metrics_for_mlflow(
        {
            k: {kk: vv for kk, vv in report[k].items() if kk != "episodes"}
            for k in ("all_episodes", "held_out_episodes")
            if k in report
        }
    )
    run = report.get("estimation", {})
    metrics.update(
        metrics_for_mlflow(
            {
                k: run[k]
                for k in ("frames_computed", "frames_per_s", "seconds")
                if run.get(k) is not None
            }
        )
    )
    return report, metrics, estimated_vs_gt_advantage(episodes, title)
