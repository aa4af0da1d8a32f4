"""awbc (Stage 3): awbc_dataset -> AWBC, BC (and curated-BC) policies -> offline metrics
on held-out episodes, and closed-loop rollouts in the world that recorded the dataset.

Evaluate existing checkpoints only (the catalog loads the latest of each run)::

    kedro run --pipelines awbc --nodes evaluate_awbc,evaluate_awbc_offline
"""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_awbc,
    evaluate_awbc_offline,
    train_awbc_policy,
    train_bc_policy,
    train_curated_bc_policy,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_awbc_policy,
                ["awbc_dataset", "awbc_runs", "params:awbc", "params:overwrite"],
                ["awbc_policy", "awbc_train_metrics"],
                name="train_awbc_policy",
            ),
            Node(
                train_bc_policy,
                ["awbc_dataset", "bc_runs", "params:awbc", "params:overwrite"],
                ["bc_policy", "bc_train_metrics"],
                name="train_bc_policy",
            ),
            Node(
                train_curated_bc_policy,
                ["awbc_dataset", "curated_bc_runs", "params:awbc", "params:overwrite"],
                ["curated_bc_policy", "curated_bc_train_metrics"],
                name="train_curated_bc_policy",
            ),
            Node(
                evaluate_awbc_offline,
                ["awbc_policy", "bc_policy", "awbc_dataset", "params:awbc"],
                ["awbc_offline_table", "awbc_offline_metrics", "awbc_offline_plot"],
                name="evaluate_awbc_offline",
            ),
            Node(
                evaluate_awbc,
                [
                    "awbc_policy",
                    "bc_policy",
                    "curated_bc_policy",
                    "awbc_dataset",
                    "params:awbc",
                    "params:metaworld",
                ],
                ["awbc_eval_table", "awbc_eval_metrics", "awbc_eval_plot"],
                name="evaluate_awbc",
            ),
        ]
    )
