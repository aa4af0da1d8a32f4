"""Advantage-conditioned imitation learning (AWBC, Stage 3) in JAX: a small pi0-style
flow-matching policy conditioned on camera images, state and a prompt.

* :func:`train_policy` trains (or resumes) on a LeRobot dataset, prompts from task_index;
* :func:`load_policy` -> :class:`Policy` (``act`` / ``act_batch``) for inference;
* :func:`evaluate_conditions` rolls policies out in the demo simulator.
"""

from .config import (
    AwbcParams,
    DataConfig,
    EvalConfig,
    ModelConfig,
    PolicyConfig,
    TokenizerConfig,
    TrainConfig,
    configs_from_params,
)
from .data import TrainingData, load_training_data, sample_batch
from .evaluate import (
    EvalCondition,
    RolloutBatch,
    awbc_conditions,
    batched_rollouts,
    evaluate_conditions,
    results_metrics,
    results_table,
    wilson_interval,
)
from .inference import Policy, load_policy
from .tokenizer import HashTokenizer
from .train import TrainResult, train_policy

__all__ = [
    "AwbcParams",
    "DataConfig",
    "EvalCondition",
    "EvalConfig",
    "HashTokenizer",
    "ModelConfig",
    "Policy",
    "PolicyConfig",
    "RolloutBatch",
    "TokenizerConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "awbc_conditions",
    "batched_rollouts",
    "configs_from_params",
    "evaluate_conditions",
    "load_policy",
    "load_training_data",
    "results_metrics",
    "results_table",
    "sample_batch",
    "train_policy",
    "wilson_interval",
]
