"""awbc (Stage 3): awbc_dataset -> AWBC and BC policies -> closed-loop evaluation.

Evaluate existing checkpoints only (the catalog loads the latest of each run)::

    kedro run --pipelines awbc --nodes evaluate_awbc
"""

from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_awbc, train_awbc_policy, train_bc_policy


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
                evaluate_awbc,
                ["awbc_policy", "bc_policy", "params:awbc"],
                ["awbc_eval_table", "awbc_eval_metrics", "awbc_eval_plot"],
                name="evaluate_awbc",
            ),
        ]
    )
