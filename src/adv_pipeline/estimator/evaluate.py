"""Load a trained estimator and evaluate it on held-out episodes."""

from __future__ import annotations

import numpy as np
import torch

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.configs import from_params
from adv_pipeline.lerobot import LeRobotDatasetReader

from .config import EstimatorConfig
from .data import episode_progress, load_validation
from .model import AdvantageEstimator, TaskPrompts
from .train import validate


def load_estimator(
    checkpoint: Checkpoint, device: str | torch.device = "cpu"
) -> tuple[AdvantageEstimator, EstimatorConfig]:
    """The model of a checkpoint (eval mode) and its configuration."""
    config = from_params(
        EstimatorConfig, checkpoint.metadata["config"], f"estimator config of {checkpoint.path}"
    )
    model = AdvantageEstimator(config.model, config.data, assets=checkpoint.path / "assets")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in checkpoint.load_weights().items()})
    return model.to(device).eval(), config


def evaluate_checkpoint(checkpoint: Checkpoint, dataset: LeRobotDatasetReader) -> dict:
    """Validation metrics and per-episode predictions on the checkpoint's validation
    episodes: ``{"metrics", "episodes", "frames", "predicted", "true"}``."""
    model, config = load_estimator(checkpoint)
    progress = episode_progress(dataset)
    val_eps = [e for e in checkpoint.metadata.get("val_episodes", []) if e in progress]
    val = load_validation(dataset, progress, val_eps, config.data)
    prompts = TaskPrompts(model, dict(enumerate(dataset.tasks)))
    metrics, preds = validate(
        model, val, config.model.timesteps == 2, torch.device("cpu"), prompts=prompts
    )
    true = [sp - sp[0] if config.model.timesteps == 2 else sp for sp in val.progress]
    return {
        "metrics": {**metrics, "step": checkpoint.step, "variant": config.model.variant},
        "episodes": val.episodes,
        "frames": [f.tolist() for f in val.frames],
        "predicted": [np.asarray(p).tolist() for p in preds],
        "true": [np.asarray(t).tolist() for t in true],
    }
