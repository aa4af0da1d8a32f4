"""estimation: target dataset + estimator checkpoint -> estimated dataset (Stage 2),
then the AWBC dataset: Stage 0's discretisation reused (namespace ``awbc_labeling``)
on ``absolute_advantage``."""

from kedro.pipeline import Node, Pipeline

from adv_pipeline.pipelines.advantage_labels import labeling_pipeline

from .nodes import estimate_advantages, report_estimation


def create_pipeline(**kwargs) -> Pipeline:
    estimate = Pipeline(
        [
            Node(
                estimate_advantages,
                [
                    "target_dataset",
                    "estimator_checkpoint",
                    "params:estimation",
                    "estimated_dataset_target",
                ],
                "estimated_dataset",
                name="estimate_advantages",
            )
        ]
    )
    awbc_labels = labeling_pipeline(
        namespace="awbc_labeling",
        source="estimated_dataset",
        output="awbc_dataset",
        stats="awbc_label_stats",
        metrics="awbc_label_metrics",
        histogram="awbc_label_histogram",
    )
    report = Pipeline(
        [
            Node(
                report_estimation,
                [
                    "estimated_dataset",
                    "awbc_dataset",
                    "estimator_checkpoint",
                    "params:gt_labeling",
                    "params:awbc_labeling",
                    "params:estimation",
                ],
                ["estimation_report", "estimation_metrics", "estimation_plot"],
                name="report_estimation",
            )
        ]
    )
    return estimate + awbc_labels + report
