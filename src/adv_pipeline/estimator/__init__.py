"""Stage 1: the advantage estimator (torch): model, data loading, training, inference."""

from .backbones import available_backbones, build_backbone, register_backbone
from .config import DataConfig, EstimatorConfig, ModelConfig, TrainConfig
from .launch import LaunchConfig, run_training
from .model import AdvantageEstimator

__all__ = [
    "AdvantageEstimator",
    "DataConfig",
    "EstimatorConfig",
    "LaunchConfig",
    "ModelConfig",
    "TrainConfig",
    "available_backbones",
    "build_backbone",
    "register_backbone",
    "run_training",
]
