"""demo: simulator -> raw LeRobot dataset -> summary report."""

from kedro.pipeline import Node, Pipeline

from .nodes import make_demo_dataset, summarize_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                make_demo_dataset,
                ["params:demo", "raw_dataset_target"],
                "raw_dataset",
                name="make_demo_dataset",
            ),
            Node(
                summarize_dataset,
                "raw_dataset",
                ["demo_summary", "demo_metrics", "demo_overview_plot"],
                name="summarize_demo_dataset",
            ),
        ]
    )
