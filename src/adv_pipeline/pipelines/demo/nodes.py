"""Nodes of the demo pipeline (thin: unpack parameters, call domain code)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.annotation import EpisodeAnnotation
from adv_pipeline.figures import dataset_overview_figure
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import OutputTarget
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.reporting import dataset_summary, metrics_for_mlflow
from adv_pipeline.sim.dataset import demo_annotations, demo_dataset_plan


def _check(params: dict[str, Any], target: OutputTarget) -> None:
    demo_dataset_plan(parse("demo", params))  # the parameters, before any work


@checked_by(_check)
def make_demo_dataset(params: dict[str, Any], target: OutputTarget) -> LeRobotDatasetReader:
    """Simulate the demo episodes (``parameters_demo.yml``) and write them to ``target``."""
    return demo_dataset_plan(parse("demo", params)).write(target.path, target.overwrite)


def demo_annotation_file(
    params: dict[str, Any], dataset: LeRobotDatasetReader
) -> list[EpisodeAnnotation]:
    """The boundary file of the demo episodes (``dataset`` only orders this node after
    the dataset is written): what the ``annotation`` pipeline turns back into the demo's
    ``stage_progress_gt``."""
    return demo_annotations(parse("demo", params))


def summarize_dataset(dataset: LeRobotDatasetReader) -> tuple[dict, dict, Figure]:
    """Summary JSON, MLflow metrics and an overview figure of a dataset."""
    summary = dataset_summary(dataset)
    return summary, metrics_for_mlflow(summary), dataset_overview_figure(dataset)
