"""Advantage-conditioned imitation learning (AWBC, Stage 3) in JAX: a small pi0-style
flow-matching policy conditioned on camera images, state and a prompt.

* :func:`train_policy` trains (or resumes) on a LeRobot dataset, prompts from task_index;
* :func:`load_policy` -> :class:`Policy` (``act`` / ``act_batch``) for inference;
* :func:`evaluate_conditions` rolls policies (and the scripted expert, the ceiling) out in
  the demo simulator.

Its names load JAX only when first used (see :mod:`adv_pipeline.lazy`).
"""

from adv_pipeline.lazy import lazy_exports

_CONFIG = ("AwbcParams", "DataConfig", "EvalConfig", "ModelConfig", "PolicyConfig")
_EVALUATE = (
    "EvalCondition",
    "RolloutBatch",
    "awbc_conditions",
    "batched_rollouts",
    "evaluate_conditions",
    "expert_rollouts",
    "results_metrics",
    "results_table",
    "wilson_interval",
)
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            _CONFIG + ("TokenizerConfig", "TrainConfig", "configs_from_params"), ".config"
        ),
        **dict.fromkeys(
            ("PolicyData", "PolicyLoader", "prepare_policy_data", "training_batch"), ".data"
        ),
        **dict.fromkeys(_EVALUATE, ".evaluate"),
        **dict.fromkeys(("Policy", "load_policy"), ".inference"),
        "HashTokenizer": ".tokenizer",
        **dict.fromkeys(("TrainResult", "train_policy", "train_policy_run"), ".train"),
    },
)
