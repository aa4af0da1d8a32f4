"""demo: the recording of ``world`` (the demo simulator or Meta-World) -> raw LeRobot
dataset, its boundary file -> summary report."""

from kedro.pipeline import Node, Pipeline

from .nodes import demo_annotation_file, make_demo_dataset, summarize_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                make_demo_dataset,
                ["params:world", "params:demo", "params:metaworld", "raw_dataset_target"],
                "raw_dataset",
                name="make_demo_dataset",
            ),
            Node(
                demo_annotation_file,
                ["params:world", "params:demo", "params:metaworld", "raw_dataset"],
                "annotations",
                name="write_demo_annotations",
            ),
            Node(
                summarize_dataset,
                "raw_dataset",
                ["demo_summary", "demo_metrics", "demo_overview_plot"],
                name="summarize_demo_dataset",
            ),
        ]
    )
