"""The advantage-discretisation template, used twice as a namespaced modular pipeline:
``gt_labeling`` (advantage from annotated ``progress``) and, after Stage 2, the AWBC
labels (from ``absolute_advantage``). Its free inputs and outputs are

- ``source_dataset`` (LeRobot dataset) and ``params:labeling`` (a LabelingConfig dict);
- ``labeled_dataset``, ``label_stats`` (JSON), ``label_metrics`` (MLflow),
  ``label_histogram`` (figure).

Map them to catalog entries with :func:`labeling_pipeline`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kedro.pipeline import Node, Pipeline
from matplotlib.figure import Figure

from adv_pipeline import labeling as lab
from adv_pipeline.configs import from_params
from adv_pipeline.figures import advantage_histogram
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import OutputTarget
from adv_pipeline.reporting import metrics_for_mlflow


def _config(params: dict[str, Any]) -> lab.LabelingConfig:
    return from_params(lab.LabelingConfig, params, "labeling")


def read_inputs(dataset: LeRobotDatasetReader, params: dict[str, Any]) -> lab.LabelInputs:
    return lab.read_label_inputs(dataset, _config(params))


read_inputs.preflight = read_inputs  # every check of the labelling's input (its reads are memoised)


def compute_advantage(inputs: lab.LabelInputs, params: dict[str, Any]) -> np.ndarray:
    return lab.frame_advantage(inputs, _config(params))


def compute_thresholds(
    inputs: lab.LabelInputs, advantage: np.ndarray, params: dict[str, Any]
) -> tuple[lab.LabelGroups, list[np.ndarray]]:
    config = _config(params)
    stage = lab.stage_index(inputs.stage_progress, config.stage_nums, len(advantage))
    groups = lab.label_groups(inputs, stage, config)
    return groups, lab.group_cuts(advantage, groups, config)


def assign_labels(
    inputs: lab.LabelInputs,
    advantage: np.ndarray,
    groups: lab.LabelGroups,
    cuts: list[np.ndarray],
    params: dict[str, Any],
) -> np.ndarray:
    return lab.assign_labels(advantage, groups, cuts, _config(params), inputs.intervention)


def summarize(
    inputs: lab.LabelInputs,
    advantage: np.ndarray,
    groups: lab.LabelGroups,
    cuts: list[np.ndarray],
    labels: np.ndarray,
    params: dict[str, Any],
) -> tuple[dict, dict, Figure]:
    config = _config(params)
    stats = lab.label_statistics(advantage, groups, cuts, labels, config, inputs)
    keep = ("frames", "mean", "std", "positive_fraction", "threshold", "forced_frames")
    per_group = {
        _metric_key(entry, inputs): {k: v for k, v in entry.items() if k in keep}
        for entry in stats["stages"]
    }
    metrics = metrics_for_mlflow(
        {"stages": per_group, "positive_fraction": stats["positive_fraction"]}
    )
    return stats, metrics, advantage_histogram(advantage, groups, cuts, config)


def _metric_key(entry: dict, inputs: lab.LabelInputs) -> str:
    """``<stage>`` or ``task<k>_stage<s>``: MLflow metric names take no commas."""
    if "task" not in entry:
        return str(entry["stage"])
    return f"task{inputs.tasks.index(entry['task'])}_stage{entry['stage']}"


def write_labeled(
    dataset: LeRobotDatasetReader,
    inputs: lab.LabelInputs,
    labels: np.ndarray,
    params: dict[str, Any],
    target: OutputTarget,
) -> LeRobotDatasetReader:
    plan = lab.labeled_dataset(dataset, inputs, labels, _config(params))
    return plan.write(target.path, target.overwrite, target.format)


def labeling_template() -> Pipeline:
    """The un-namespaced template (free names as in the module docstring)."""
    return Pipeline(
        [
            Node(
                read_inputs,
                ["source_dataset", "params:labeling"],
                "label_inputs",
                name="read_label_inputs",
            ),
            Node(
                compute_advantage,
                ["label_inputs", "params:labeling"],
                "frame_advantage",
                name="compute_advantage",
            ),
            Node(
                compute_thresholds,
                ["label_inputs", "frame_advantage", "params:labeling"],
                ["label_groups", "label_cuts"],
                name="compute_thresholds",
            ),
            Node(
                assign_labels,
                [
                    "label_inputs",
                    "frame_advantage",
                    "label_groups",
                    "label_cuts",
                    "params:labeling",
                ],
                "frame_labels",
                name="assign_labels",
            ),
            Node(
                summarize,
                [
                    "label_inputs",
                    "frame_advantage",
                    "label_groups",
                    "label_cuts",
                    "frame_labels",
                    "params:labeling",
                ],
                ["label_stats", "label_metrics", "label_histogram"],
                name="summarize_labels",
            ),
            Node(
                write_labeled,
                [
                    "source_dataset",
                    "label_inputs",
                    "frame_labels",
                    "params:labeling",
                    "labeled_target",
                ],
                "labeled_dataset",
                name="write_labeled_dataset",
            ),
        ]
    )


def labeling_pipeline(
    namespace: str, source: str, output: str, stats: str, metrics: str, histogram: str
) -> Pipeline:
    """The template under ``namespace``, reading ``params:<namespace>`` and mapping the
    free datasets to catalog names (the output's target is ``<output>_target``)."""
    return Pipeline(
        labeling_template(),
        namespace=namespace,
        inputs={"source_dataset": source, "labeled_target": f"{output}_target"},
        outputs={
            "labeled_dataset": output,
            "label_stats": stats,
            "label_metrics": metrics,
            "label_histogram": histogram,
        },
        parameters={"params:labeling": f"params:{namespace}"},
    )
