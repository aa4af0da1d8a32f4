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


def label_frames(inputs: lab.LabelInputs, params: dict[str, Any]) -> lab.FrameLabels:
    return lab.label_frames(inputs, _config(params))


def summarize(
    inputs: lab.LabelInputs, result: lab.FrameLabels, params: dict[str, Any]
) -> tuple[dict, dict, Figure]:
    config = _config(params)
    advantage, groups, cuts = result.advantage, result.groups, result.cuts
    stats = lab.label_statistics(advantage, groups, cuts, result.labels, config, inputs)
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
    result: lab.FrameLabels,
    params: dict[str, Any],
    target: OutputTarget,
) -> LeRobotDatasetReader:
    plan = lab.labeled_dataset(dataset, inputs, result.labels, _config(params))
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
                label_frames,
                ["label_inputs", "params:labeling"],
                "frame_labels",
                name="label_frames",
            ),
            Node(
                summarize,
                ["label_inputs", "frame_labels", "params:labeling"],
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
