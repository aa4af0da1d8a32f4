"""Nodes of the annotation pipeline (thin: unpack parameters, call domain code)."""

from __future__ import annotations

from typing import Any

from adv_pipeline.annotation import AnnotationFile, annotated_dataset
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import OutputTarget
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.reporting import metrics_for_mlflow


def _check(
    dataset: LeRobotDatasetReader,
    annotations: AnnotationFile,
    params: dict[str, Any],
    target: OutputTarget,
) -> None:
    annotated_dataset(dataset, annotations, parse("annotation", params))  # refuses bad records


@checked_by(_check)
def annotate(
    dataset: LeRobotDatasetReader,
    annotations: AnnotationFile,
    params: dict[str, Any],
    target: OutputTarget,
) -> tuple[LeRobotDatasetReader, dict, dict]:
    """Write ``dataset`` with the columns of ``annotations`` to ``target``; the report
    (episodes, skipped episodes, frames outside the annotation, replaced columns) and its
    numbers for MLflow."""
    plan, report = annotated_dataset(dataset, annotations, parse("annotation", params))
    written = plan.write(target.path, target.overwrite, target.format)
    return written, report, metrics_for_mlflow(report)
