"""annotation: a raw dataset + its boundary file -> a dataset with stage_progress_gt,
overall progress and each frame's stage (run it before ``gt_labeling``)::

    kedro run --pipelines annotation \\
        --params "raw_dataset_path=<in>,annotations_path=<file>,annotated_dataset_path=<out>"
"""

from kedro.pipeline import Node, Pipeline

from .nodes import annotate


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                annotate,
                ["raw_dataset", "annotations", "params:annotation", "annotated_dataset_target"],
                ["annotated_dataset", "annotation_report", "annotation_metrics"],
                name="annotate_dataset",
            ),
        ]
    )
