"""seeds: the closed-loop tables of the training seeds of ``kedro sweep`` -> their means
with intervals, the paired differences, metrics and a plot."""

from kedro.pipeline import Node, Pipeline

from .nodes import summarize_seed_sweep


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                summarize_seed_sweep,
                ["seed_eval_tables", "params:sweep"],
                [
                    "seed_sweep_summary",
                    "seed_sweep_differences",
                    "seed_sweep_metrics",
                    "seed_sweep_plot",
                ],
                name="summarize_seed_sweep",
            )
        ]
    )
