"""Nodes of the demo pipeline (thin: unpack parameters, call domain code)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.demo_dataset import demo_dataset_plan
from adv_pipeline.lerobot import LeRobotDatasetReader, NewDataset, VideoOptions
from adv_pipeline.reporting import dataset_overview_figure, dataset_summary, metrics_for_mlflow
from adv_pipeline.sim import DemoTaskConfig


def make_demo_dataset(params: dict[str, Any]) -> NewDataset:
    """Write plan of the demo dataset, from ``parameters_demo.yml``."""
    config = DemoTaskConfig(image_size=params["image_size"], fps=params["fps"], **params.get("task", {}))
    return demo_dataset_plan(
        config,
        n_episodes=params["n_episodes"],
        mix=params["mix"],
        seed=params["seed"],
        task=params["task_text"],
        video=VideoOptions(**params["video"]),
        workers=params["workers"],
    )


make_demo_dataset.preflight = make_demo_dataset  # the parameters are checked before any work


def summarize_dataset(dataset: LeRobotDatasetReader) -> tuple[dict, dict, Figure]:
    """Summary JSON, MLflow metrics and an overview figure of a dataset."""
    summary = dataset_summary(dataset)
    return summary, metrics_for_mlflow(summary), dataset_overview_figure(dataset)
