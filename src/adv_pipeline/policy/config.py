"""Frozen configurations of the AWBC policy: model, data, training, evaluation.

Every field comes from ``conf/base/parameters_awbc.yml`` (see :func:`configs_from_params`);
the defaults here are the same values, so code and tests can build configs directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from adv_pipeline.configs import check_choices, check_ema_decay, from_params
from adv_pipeline.distributed import LaunchConfig
from adv_pipeline.schema import ABSOLUTE_ADVANTAGE

# how the advantage trains the policy (awbc.method): in the prompt (AWBC), as a per-sample
# loss weight (advantage-weighted regression), or as a filter (the top label's frames only)
Method = Literal["prompt", "weighted", "filtered"]

GuidanceReference = Literal["negative", "unconditional"]


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance of the flow: ``v = v_ref + scale * (v_prompt - v_ref)``.

    Attributes:
        scale: the weight w; 1 is the plain conditional prompt (no guidance).
        reference: the prompt ``v_ref`` is predicted for (:meth:`Policy.reference_prompt`):
            ``negative`` (the prompt's task with the training tasks' worst advantage label)
            or ``unconditional`` (its plain task text).
    """

    scale: float = 1.0
    reference: GuidanceReference = "negative"

    @property
    def guided(self) -> bool:
        return self.scale != 1.0


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

    def __post_init__(self) -> None:
        check_choices(self, "awbc.model.")


@dataclass(frozen=True)
class DataConfig:
    """What the policy sees and predicts.

    Attributes:
        cameras: camera names or video keys (``top_head`` or ``observation.images.top_head``).
        image_size: side of the square images fed to the CNN (pixels); frames are
            area-downsampled from the dataset's resolution.
        horizon: action chunk length (frames).
        state_key: parquet column(s) of the state vector, concatenated in order (one
            name, or a list such as ``[observation.state, observation.environment_state]``
            for the demo's privileged variant); normalised to a tuple.
        action_key: parquet column of the action vector.
        prompt_from_task: prompt of a frame = ``tasks[task_index]``; False: the plain
            task text for every frame (plain behaviour cloning).
        prompt_dropout: probability that a training sample's prompt loses its advantage
            part (classifier-free guidance training); 0 disables.
        normalization: of the actions: ``quantile`` (q01/q99 -> [-1, 1], openpi's pi0.5
            default) or ``mean_std``; statistics from the training episodes.
        state_normalization: of the state, the same choices.
        val_fraction: share of episodes held out (split by episode, seeded by
            ``val_seed``) for the offline evaluation; 0 trains on every episode.
        episodes_per_chunk: episodes whose frames are shuffled together (the shuffle
            buffer: memory is about ``episodes_per_chunk * frames_per_episode`` samples per
            chunk in flight); each is decoded once per chunk.
        frames_per_episode: frames drawn from an episode per visit (without replacement);
            None: all of them (one visit per episode per epoch).
        keep_column: train only on the episodes whose first frame has a value of this
            integer column in ``keep_values`` (the curated-BC baseline: ``quality``, [0]);
            None: every training episode. The held-out episodes stay the same.
        keep_values: the values of ``keep_column`` kept.
        weight_column: float column of the advantage that weights each sample's loss
            (``awbc.method: weighted``): ``w = min(exp(z / weight_beta), weight_max)``,
            z the advantage standardised over the training frames; None: every sample 1.
        weight_beta: the temperature, in standard deviations of the advantage.
        weight_max: the clip of the weight (before the batch's weights are divided by
            their maximum, which leaves the loss unchanged).
        top_label_only: train only on the frames whose prompt carries the top advantage
            label (``awbc.method: filtered``; "positive" for binary labels).
    """

    cameras: tuple[str, ...] = ()
    image_size: int = 48
    horizon: int = 16
    state_key: str | tuple[str, ...] = ("observation.state", "observation.image_features")
    action_key: str = "action"
    prompt_from_task: bool = True
    prompt_dropout: float = 0.1
    normalization: Literal["quantile", "mean_std"] = "quantile"
    state_normalization: Literal["quantile", "mean_std"] = "mean_std"
    val_fraction: float = 0.1
    val_seed: int = 0
    episodes_per_chunk: int = 64
    frames_per_episode: int | None = 64
    keep_column: str | None = None
    keep_values: tuple[int, ...] = ()
    weight_column: str | None = None
    weight_beta: float = 1.0
    weight_max: float = 20.0
    top_label_only: bool = False

    def __post_init__(self) -> None:
        check_choices(self, "awbc.data.")
        if isinstance(self.state_key, str):
            object.__setattr__(self, "state_key", (self.state_key,))
        if not self.state_key:
            raise ValueError("awbc.data.state_key: name at least one state column")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"awbc.data.val_fraction={self.val_fraction} must be in [0, 1). Fix: e.g. 0.1"
            )
        if self.episodes_per_chunk < 1 or (
            self.frames_per_episode is not None and self.frames_per_episode < 1
        ):
            raise ValueError(
                "awbc.data.episodes_per_chunk and frames_per_episode must be >= 1 "
                "(frames_per_episode may be null: all frames)"
            )

    @property
    def method(self) -> str:
        """How the advantage trained a policy of this config: ``weighted``, ``filtered``,
        ``prompt`` (AWBC) or ``bc`` (plain prompts, unweighted)."""
        if self.weight_column is not None:
            return "weighted"
        if self.top_label_only:
            return "filtered"
        return "prompt" if self.prompt_from_task else "bc"


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
        seed: parameter init and data order (the stream of batches depends on the seed
            only, not on the number of workers or processes).
        num_workers: decoding processes of the loader (0: decode in the training process);
            prefetch_chunks: chunks in flight per worker. Neither changes the batches.
        ema_decay: exponential moving average of the parameters (openpi's ``ema_decay``):
            after each step ``ema = decay * ema + (1 - decay) * params``; checkpoints'
            ``model.safetensors`` (inference, evaluation) hold the average, the raw
            parameters ride with the optimizer state for resuming. None: no average.
    """

    steps: int = 15000
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
    num_workers: int = 1
    prefetch_chunks: int = 2
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        check_choices(self, "awbc.train.")
        check_ema_decay(self.ema_decay, "awbc.train.ema_decay")


@dataclass(frozen=True)
class CuratedConfig:
    """The curated-BC baseline: plain BC on the episodes a perfect curator would keep.

    Attributes:
        column: integer column naming each episode's quality (e.g. Meta-World's
            ``quality``, 0 = expert); None: no such run (the default).
        keep: the values of ``column`` kept.
    """

    column: str | None = None
    keep: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class WeightedConfig:
    """``awbc.method: weighted``: each sample's loss weighted by ``exp(z / beta)`` clipped
    at ``max_weight``, z the advantage column standardised over the training frames
    (advantage-weighted regression; LeRobot's RA-BC weights).

    Attributes:
        column: the float column of the advantage (Stage 2 writes ``absolute_advantage``).
        beta: temperature, in standard deviations of the advantage (> 0); lower weights
            the best frames more.
        max_weight: clip of ``exp(z / beta)`` (>= 1).
    """

    column: str = ABSOLUTE_ADVANTAGE
    beta: float = 1.0
    max_weight: float = 20.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"awbc.weighted.beta={self.beta} must be > 0. Fix: e.g. 1.0")
        if not self.max_weight >= 1:
            raise ValueError(
                f"awbc.weighted.max_weight={self.max_weight} must be >= 1. Fix: e.g. 20.0"
            )


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: closed-loop rollouts in a world (:mod:`adv_pipeline.worlds`), offline
    metrics on the held-out episodes of any dataset.

    Attributes:
        env: the world rolled out in: ``auto`` (the world that recorded the dataset, by
            its info.json robot_type), ``demo``, ``metaworld`` or a registered world.
        closed_loop: ``auto`` rolls out only when a world is known for the dataset (``env``
            named, or its robot_type recorded by one), ``true`` insists (refused when none
            is), ``false`` never rolls out.
        val_episodes_max: held-out episodes scored offline (the first ones of the split);
            val_frame_stride: every n-th frame of each is scored.
        n_episodes: rollouts per condition (seeds ``seed_offset + i``, disjoint from the
            demo dataset's seeds).
        replan_every: actions of each predicted chunk executed open-loop before re-planning.
        guidance_scale: classifier-free guidance weight of the guided condition (w > 1).
        guidance_reference: what the guided condition extrapolates away from:
            ``negative`` (the prompt's task with the worst advantage label) or
            ``unconditional`` (the plain task text, learnt through ``prompt_dropout``).
        max_steps: rollout time limit (steps); None = the world's default.
        image_size, fps, task: the demo world's render size, frequency and extra
            :class:`~adv_pipeline.sim.DemoTaskConfig` fields.
        sample_seed: seed of the flow's initial noise.
        expert: also roll out the scripted demonstrator on the same seeds (the row
            ``expert``: the ceiling the policies are read against).
    """

    n_episodes: int = 100
    replan_every: int = 8
    guidance_scale: float = 2.0
    guidance_reference: GuidanceReference = Guidance.reference
    seed_offset: int = 10_000
    max_steps: int | None = None
    image_size: int = 96
    fps: int = 30
    task: Mapping[str, Any] = field(default_factory=dict)
    sample_seed: int = 0
    closed_loop: bool | Literal["auto"] = "auto"
    env: str = "auto"
    val_episodes_max: int = 16
    val_frame_stride: int = 4
    expert: bool = True

    def __post_init__(self) -> None:
        check_choices(self, "awbc.eval.")

    @property
    def guidance(self) -> Guidance:
        """The guided condition's guidance."""
        return Guidance(self.guidance_scale, self.guidance_reference)


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that defines a trained policy besides its weights."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()


@dataclass(frozen=True)
class AwbcParams:
    """``parameters_awbc.yml``'s ``awbc`` namespace (built with
    :func:`adv_pipeline.configs.from_params`): what every run shares; ``method`` says
    how the advantage trains the main run (the BC baselines never see it)."""

    method: Method = "prompt"
    weighted: WeightedConfig = WeightedConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    curated: CuratedConfig = CuratedConfig()
    launch: LaunchConfig = LaunchConfig()  # hosts of a multi-host run (one process each)

    def __post_init__(self) -> None:
        check_choices(self, "awbc.")

    def policy(self, prompt_from_task: bool | None = None) -> PolicyConfig:
        """The policy config; ``prompt_from_task`` overrides ``data.prompt_from_task``
        (the BC baseline is the same run with it off)."""
        data = (
            self.data
            if prompt_from_task is None
            else dataclasses.replace(self.data, prompt_from_task=bool(prompt_from_task))
        )
        return PolicyConfig(self.model, data, self.tokenizer)

    def method_policy(self) -> PolicyConfig:
        """The main run's policy config under ``method``: ``prompt`` (AWBC: advantage
        prompts), ``weighted`` (plain prompts, loss weights from ``weighted``),
        ``filtered`` (plain prompts, the top label's frames only)."""
        if self.method == "prompt":
            return self.policy(prompt_from_task=True)
        data = dataclasses.replace(self.data, prompt_from_task=False)
        if self.method == "weighted":
            w = self.weighted
            data = dataclasses.replace(
                data, weight_column=w.column, weight_beta=w.beta, weight_max=w.max_weight
            )
        else:
            data = dataclasses.replace(data, top_label_only=True)
        return PolicyConfig(self.model, data, self.tokenizer)


def configs_from_params(
    params: Mapping[str, Any], prompt_from_task: bool | None = None
) -> tuple[PolicyConfig, TrainConfig]:
    """Policy and training configs from the ``awbc`` parameters (see :class:`AwbcParams`)."""
    awbc = from_params(AwbcParams, params, "awbc")
    return awbc.policy(prompt_from_task), awbc.train
