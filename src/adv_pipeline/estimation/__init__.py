"""Stage 2: label a dataset with a trained estimator (streaming, resumable, torchrun),
and score the labels against ground truth when the data has it."""

from .agreement import estimation_report, roc_auc
from .estimate import EstimationConfig, check_estimation_inputs, estimate
from .inference import EpisodeValues, advantage_columns, predict_episode

__all__ = [
    "EpisodeValues",
    "EstimationConfig",
    "advantage_columns",
    "check_estimation_inputs",
    "estimate",
    "estimation_report",
    "predict_episode",
    "roc_auc",
]
