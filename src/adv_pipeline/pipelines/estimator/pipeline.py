"""estimator: GT-labelled dataset -> trained advantage estimator checkpoint (Stage 1)."""

from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_estimator, train_estimator


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_estimator,
                ["gt_labeled_dataset", "estimator_runs", "params:estimator", "params:overwrite"],
                ["estimator_checkpoint", "estimator_metrics"],
                name="train_estimator",
            ),
            Node(
                evaluate_estimator,
                ["estimator_checkpoint", "gt_labeled_dataset"],
                ["estimator_report", "estimator_progress_plot"],
                name="evaluate_estimator",
            ),
        ]
    )
