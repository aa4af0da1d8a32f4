"""Stage 2's input checks (light: no torch), run before any work."""

from __future__ import annotations

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.configs import from_params
from adv_pipeline.errors import InputError
from adv_pipeline.estimator.config import EstimatorConfig
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.schema import STAGE_PROGRESS

TOKENS_PER_IMAGE_MANY = frozenset({"paligemma"})  # backbones whose encode() gives a token per patch


def check_estimation_inputs(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    image_features: str | None = None,
    target: str = "progress",
) -> EstimatorConfig:
    """Every check of Stage 2's input, before anything is written: the checkpoint was
    trained on ``target`` (``estimation.target``), the estimator's cameras and state column
    exist in ``source``, every float column (copied into the output) is finite, and an
    ``image_features`` column can be written (a backbone with one token per image; not a
    column of ``source``). Returns the estimator's config."""
    est_config = from_params(
        EstimatorConfig, checkpoint.metadata["config"], f"estimator config of {checkpoint.path}"
    )
    trained = est_config.model.target
    if trained != target:
        raise InputError(
            f"the estimator {checkpoint.path} was trained on {trained} (its "
            f"estimator.model.target), but this Stage 2 run labels {target} "
            f"(estimation.target); its values would be read as the wrong kind. Fix: --params "
            f"advantage_target={trained} (both stages follow it), or label with an estimator "
            f"trained on {target}"
        )
    if trained == "returns" and "return_scales" not in checkpoint.metadata:
        raise InputError(
            f"the estimator {checkpoint.path} was trained on returns but its metadata.json "
            f"has no return_scales (the tasks' normalisers). Fix: retrain it with this version"
        )
    if image_features is not None:
        if est_config.model.backbone in TOKENS_PER_IMAGE_MANY:
            raise InputError(
                f"estimation.image_features={image_features}: the estimator {checkpoint.path} "
                f"(backbone {est_config.model.backbone!r}) encodes each image to many tokens, "
                f"too many to store per frame. Fix: set estimation.image_features: null, or "
                f"train with backbone small_cnn or siglip"
            )
        if image_features in source.features:
            raise InputError(
                f"estimation.image_features={image_features}: {source.root} already has that "
                f"column (an estimated dataset labelled again?). Fix: label the raw dataset, or "
                f"name another column"
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
