"""Nodes of the estimator pipeline (thin). torch loads when a node runs, not when the
pipelines are registered (a Stage 0 run never imports it)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint, Runs
from adv_pipeline.estimator.data import check_training_inputs
from adv_pipeline.figures import predicted_vs_true
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by


def _check(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> None:
    check_training_inputs(dataset, parse("estimator", params))


@checked_by(_check)
def train_estimator(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint, dict]:
    """Train in a new run of ``runs`` (or continue one, ``train.resume``); the final
    checkpoint and the run's metric histories."""
    from adv_pipeline.estimator.launch import run_training
    from adv_pipeline.estimator.train import read_metrics

    checkpoint = run_training(dataset, runs, parse("estimator", params), overwrite)
    history = {
        name: [{"step": s, "value": v} for s, v in points]
        for name, points in read_metrics(checkpoint.run_dir).items()
    }
    return checkpoint, history


def evaluate_estimator(
    checkpoint: Checkpoint, dataset: LeRobotDatasetReader
) -> tuple[dict, Figure]:
    """Held-out Spearman/MSE report and the predicted-vs-true progress plot."""
    from adv_pipeline.estimator.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(checkpoint, dataset)
    return report, predicted_vs_true(report)
