"""Nodes of the demo pipeline (thin: unpack parameters, call domain code)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.lerobot import LeRobotDatasetReader, NewDataset
from adv_pipeline.figures import dataset_overview_figure
from adv_pipeline.reporting import dataset_summary, metrics_for_mlflow
from adv_pipeline.pipelines.params import parse
from adv_pipeline.sim.dataset import demo_dataset_plan


def make_demo_dataset(params: dict[str, Any]) -> NewDataset:
    """Write plan of the demo dataset, from ``parameters_demo.yml``."""
    return demo_dataset_plan(parse("demo", params))


make_demo_dataset.preflight = make_demo_dataset  # the parameters are checked before any work


def summarize_dataset(dataset: LeRobotDatasetReader) -> tuple[dict, dict, Figure]:
    """Summary JSON, MLflow metrics and an overview figure of a dataset."""
    summary = dataset_summary(dataset)
    return summary, metrics_for_mlflow(summary), dataset_overview_figure(dataset)
