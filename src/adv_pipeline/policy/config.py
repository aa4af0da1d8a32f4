"""Frozen configurations of the AWBC policy: model, data, training, evaluation.

Every field comes from ``conf/base/parameters_awbc.yml`` (see :func:`configs_from_params`);
the defaults here are the same values, so code and tests can build configs directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from adv_pipeline.configs import check_resume, from_params
from adv_pipeline.distributed import LaunchConfig


@dataclass(frozen=True)
class TokenizerConfig:
    """Hashed word-level tokenizer: ``vocab_size`` ids (0 = padding), ``max_len`` tokens."""

    vocab_size: int = 4096
    max_len: int = 24


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the policy network (see :mod:`adv_pipeline.policy.model`).

    Attributes:
        head: ``"flow"`` (pi0-style flow matching) or ``"mse"`` (direct chunk regression).
        conv_channels: channels of the stride-2 3x3 convolutions of each camera's CNN.
        image_features: per-camera feature size after the CNN.
        text_dim: token embedding / text feature size.
        text_heads: attention heads of the one-block text transformer.
        width: hidden size of the action head's residual MLP.
        depth: residual blocks of the action head (each FiLM-modulated by the prompt).
        flow_steps: Euler integration steps of the flow at inference.
    """

    head: Literal["flow", "mse"] = "flow"
    conv_channels: tuple[int, ...] = (16, 32, 32)
    image_features: int = 64
    text_dim: int = 64
    text_heads: int = 2
    width: int = 256
    depth: int = 3
    flow_steps: int = 10


@dataclass(frozen=True)
class DataConfig:
    """What the policy sees and predicts.

    Attributes:
        cameras: camera names or video keys (``top_head`` or ``observation.images.top_head``).
        image_size: side of the square images fed to the CNN (pixels); frames are
            area-downsampled from the dataset's resolution.
        horizon: action chunk length (frames).
        state_key / action_key: parquet columns of the state and action vectors.
        prompt_from_task: prompt of a frame = ``tasks[task_index]``; False: the plain
            task text for every frame (plain behaviour cloning).
        prompt_dropout: probability that a training sample's prompt loses its advantage
            part (classifier-free guidance training); 0 disables.
    """

    cameras: tuple[str, ...] = ()
    image_size: int = 48
    horizon: int = 16
    state_key: str = "observation.state"
    action_key: str = "action"
    prompt_from_task: bool = True
    prompt_dropout: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and checkpointing.

    Attributes:
        steps: total optimizer steps; batch_size: global batch (divisible by the device count).
        lr: peak learning rate; warmup_steps: linear warm-up; end_lr_ratio: final lr / peak
            (cosine).
        weight_decay: AdamW decoupled weight decay; grad_clip: global-norm clipping.
        save_interval: steps between checkpoints (the last step is always saved).
        keep_period: checkpoints kept besides the latest (multiples of it); None keeps all.
        log_interval: steps between logged metrics (mean over the interval).
        resume: ``auto`` continues the latest run when it trained on the same data and
            settings, else starts a new run; ``true`` continues the named or latest run
            (refused, saying what changed, if data or settings differ); ``false`` always
            starts a new run. Earlier runs are never deleted.
        seed: parameter init and data order (batch of step s depends on (seed, s) only).
    """

    steps: int = 5000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    end_lr_ratio: float = 0.05
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    save_interval: int = 1000
    keep_period: int | None = None
    log_interval: int = 50
    resume: bool | Literal["auto"] = "auto"
    seed: int = 0
    progress_bar: bool = True

    def __post_init__(self) -> None:
        check_resume(self.resume, "awbc.train.resume")


@dataclass(frozen=True)
class EvalConfig:
    """Closed-loop evaluation in the demo simulator.

    Attributes:
        n_episodes: rollouts per condition (seeds ``seed_offset + i``, disjoint from the
            demo dataset's seeds).
        replan_every: actions of each predicted chunk executed open-loop before re-planning.
        guidance_scale: classifier-free guidance weight of the guided condition (w > 1).
        max_steps: rollout time limit (steps); None = the task's default.
        task: extra :class:`~adv_pipeline.sim.DemoTaskConfig` fields.
        sample_seed: seed of the flow's initial noise.
    """

    n_episodes: int = 100
    replan_every: int = 8
    guidance_scale: float = 2.0
    seed_offset: int = 10_000
    max_steps: int | None = None
    image_size: int = 96
    fps: int = 30
    task: Mapping[str, Any] = field(default_factory=dict)
    sample_seed: int = 0


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that defines a trained policy besides its weights."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()


@dataclass(frozen=True)
class AwbcParams:
    """``parameters_awbc.yml``'s ``awbc`` namespace (built with
    :func:`adv_pipeline.configs.from_params`): what both runs share."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    launch: LaunchConfig = LaunchConfig()  # hosts of a multi-host run (one process each)

    def policy(self, prompt_from_task: bool | None = None) -> PolicyConfig:
        """The policy config; ``prompt_from_task`` overrides ``data.prompt_from_task``
        (the BC baseline is the same run with it off)."""
        data = (
            self.data
            if prompt_from_task is None
            else dataclasses.replace(self.data, prompt_from_task=bool(prompt_from_task))
        )
        return PolicyConfig(self.model, data, self.tokenizer)


def configs_from_params(
    params: Mapping[str, Any], prompt_from_task: bool | None = None
) -> tuple[PolicyConfig, TrainConfig]:
    """Policy and training configs from the ``awbc`` parameters (see :class:`AwbcParams`)."""
    awbc = from_params(AwbcParams, params, "awbc")
    return awbc.policy(prompt_from_task), awbc.train
