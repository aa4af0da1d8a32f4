"""Stage 2's input checks (light: no torch), run before any work."""

from __future__ import annotations

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.configs import from_params
from adv_pipeline.estimator.config import EstimatorConfig
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.schema import STAGE_PROGRESS


def check_estimation_inputs(
    source: LeRobotDatasetReader, checkpoint: Checkpoint
) -> EstimatorConfig:
    """Every check of Stage 2's input, before anything is written: the estimator's cameras
    and state column exist in ``source``, and every float column (copied into the
    output) is finite. Returns the estimator's config."""
    est_config = from_params(
        EstimatorConfig, checkpoint.metadata["config"], f"estimator config of {checkpoint.path}"
    )
    state = est_config.data.state or ()
    for column in state:
        source.require_column(
            column,
            f", needed because the estimator {checkpoint.path} takes the state "
            f"({', '.join(state)}) as input",
            "label a dataset with that column, or train an estimator with estimator.data.state: "
            "null",
        )
    source.resolve_cameras(est_config.data.cameras)
    why = {c: ", copied into the estimated dataset" for c in source.float_columns()}
    for column in state:
        why[column] = ", read by the estimator and copied into the estimated dataset"
    ranges = {}
    if STAGE_PROGRESS in source.features:  # the AWBC labels split stages by it
        why[STAGE_PROGRESS] = (
            ", copied into the estimated dataset, whose AWBC labels split stages by it"
        )
        ranges[STAGE_PROGRESS] = (0.0, 1.0)
    source.check_values(list(why), why, ranges)
    return est_config
