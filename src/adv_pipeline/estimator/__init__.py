"""Stage 1: the advantage estimator (torch): model, backbones, data loading, training."""

from .backbones import available_backbones, build_backbone, register_backbone
from .config import DataConfig, EstimatorConfig, ModelConfig, TrainConfig
from .launch import run_training
from .model import AdvantageEstimator

__all__ = [
    "AdvantageEstimator",
    "DataConfig",
    "EstimatorConfig",
    "ModelConfig",
    "TrainConfig",
    "available_backbones",
    "build_backbone",
    "register_backbone",
    "run_training",
]
