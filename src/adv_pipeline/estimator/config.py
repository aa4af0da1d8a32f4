"""Frozen configuration of the advantage estimator: model, data and training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from adv_pipeline.configs import check_choices, check_ema_decay
from adv_pipeline.distributed import LaunchConfig

FREEZE = ("none", "vision", "backbone")  # what of a pretrained backbone is not trained


@dataclass(frozen=True)
class ModelConfig:
    """The estimator network.

    Attributes:
        variant: ``KAI0`` (two timesteps: comparison frame t' and current frame t; predicts
            the progress made from t' to t) or ``PI06`` (one timestep; predicts the value of t).
        backbone: a name in the backbone registry (see ``backbones.py``).
        width: width w of the backbone's summary token and of the value head.
        backbone_kwargs: extra arguments of the backbone constructor.
        state_dim: size of the state vector fed as one more token per timestep (0: images
            only). Set by the trainer from ``DataConfig.state``'s feature shape.
        action_dim: size of the action the auxiliary head predicts from the current
            frame's tokens (0: no such head). Set by the trainer from ``DataConfig.action``.
        value_head: ``tanh`` (one output squashed to (-1, 1), MSE loss: the seed's) or
            ``distributional`` (``value_bins`` logits over the target's range, cross-entropy
            to a two-hot target; the value is the distribution's mean, as pi*0.6 and
            Evo-RL do).
        value_bins: bins of the distributional head, evenly spaced over the target's
            range: [-1, 1] (KAI0's progress difference), [0, 1] (PI06's value) or [-1, 0]
            (returns).
        pretrained: local directory of the weights the ``paligemma`` / ``siglip`` backbones
            start from: a Hugging Face PaliGemma directory or a pi0.5 PyTorch checkpoint
            (the seed's ``pytorch_weight_path``); nothing is downloaded.
        tokenizer: directory of the PaliGemma tokenizer files (default: ``pretrained``;
            pi0.5 checkpoints ship none).
        freeze: ``none`` | ``vision`` (the vision tower and projector) | ``backbone`` (all
            pretrained weights) are not trained.
        gradient_checkpointing: recompute the pretrained backbone's activations in the
            backward pass (less GPU memory, ~30% more time).
        max_text_tokens: the task text fed to text-taking backbones is cut to this many
            tokens.
        target: what the value predicts: ``progress`` (stage progress, the seed) or
            ``returns`` (RECAP: the normalised Monte Carlo return in [-1, 0], -1 per frame
            and ``failure_penalty`` more at a failed episode's end; PI06 only). Saved with
            the checkpoint; Stage 2 refuses a checkpoint of the other kind.
        failure_penalty: returns: C_fail, the extra cost of a failed episode's last frame,
            in frames.
    """

    variant: Literal["KAI0", "PI06"] = "KAI0"
    backbone: str = "small_cnn"
    width: int = 128
    backbone_kwargs: Mapping = field(default_factory=dict)
    state_dim: int = 0
    action_dim: int = 0
    value_head: Literal["tanh", "distributional"] = "tanh"
    value_bins: int = 201
    pretrained: str | None = None
    tokenizer: str | None = None
    freeze: Literal["none", "vision", "backbone"] = "none"
    gradient_checkpointing: bool = False
    max_text_tokens: int = 48
    target: Literal["progress", "returns"] = "progress"
    failure_penalty: float = 50.0

    def __post_init__(self) -> None:
        check_choices(self, "estimator.model.")
        if self.target == "returns" and self.variant != "PI06":
            raise ValueError(
                f"estimator.model.target=returns trains a value of one frame, which the "
                f"{self.variant} variant does not predict. Fix: --params "
                f"estimator_variant=PI06 (or advantage_target=progress)"
            )
        if self.value_bins < 2:
            raise ValueError(
                f"estimator.model.value_bins={self.value_bins}: the distributional head needs "
                f"at least 2 bins"
            )

    @property
    def target_range(self) -> tuple[float, float]:
        """The range of the training target: KAI0 ``clip(sp[t] - sp[t'], -1, 1)``, PI06
        ``sp[t]`` in [0, 1], returns in [-1, 0]."""
        if self.target == "returns":
            return (-1.0, 0.0)
        return (-1.0, 1.0) if self.variant == "KAI0" else (0.0, 1.0)

    @property
    def timesteps(self) -> int:
        return 2 if self.variant == "KAI0" else 1


@dataclass(frozen=True)
class DataConfig:
    """What the training data loader reads and how it samples.

    Attributes:
        cameras: camera names or video keys (e.g. ``top_head``) fed to the model, in order.
        state: parquet column(s) of the state fed with the images (docs/semantics.md:
            "+ state"), concatenated in order: e.g. ``observation.state`` (what the robot
            records of itself), or ``[observation.state, observation.environment_state]``
            (the simulator's privileged block and goal poses too); None: images only.
            Normalised to a tuple.
        action: the action column an auxiliary head predicts from the current frame's
            image and state tokens, with weight ``train.loss_action_weight`` (it makes the
            image tokens carry what acting needs, for a policy reading them through
            Stage 2's ``image_features``); None: no action loss (the seed).
        image_size: (height, width) the frames are resized to (with padding), in pixels;
            one number n means (n, n) (so that ``--params estimator.data.image_size=224``
            works on the command line).
        samples_per_episode: training samples drawn from one episode per visit; their
            frames are collected in one in-order decode of that episode.
        first_frame_fraction: share of KAI0 samples whose comparison frame is frame 0
            (the pair V(0 -> n) that Stage 2's absolute value uses; uniform pairs alone
            rarely span the whole episode). 0 reproduces the seed's sampling.
        end_frame_fraction: share of the samples that train Stage 2's absolute value
            (KAI0: the pairs compared with frame 0; PI06: all) whose current frame is drawn
            from the episode's last ``end_frames`` frames, where Stage 2's
            ``absolute_advantage`` multiplies value differences by I / (fut - n) (up to I
            on the second-to-last frame). The auxiliary action loss leaves these samples
            out. 0 reproduces the seed's sampling.
        end_frames: how many of an episode's last frames ``end_frame_fraction`` draws from.
            Few: the last frame's value enters the advantage of every one of the last I
            frames (fut = the last frame), so it needs the most precision.
        episodes_per_chunk: episodes decoded together and shuffled across (shuffle buffer
            of ``episodes_per_chunk * samples_per_episode`` samples).
        num_workers: decoding processes (0 decodes in the training process).
        prefetch_chunks: decoded chunks kept ready ahead of training, per worker.
        augment_shift: random translation in pixels applied to training images (0: off).
        val_fraction: share of episodes held out for validation (split by episode).
        val_episodes_max: validation episodes evaluated (at most).
        val_frame_stride: evaluate every n-th frame of a validation episode.
    """

    cameras: tuple[str, ...] = ("top_head", "hand_left", "hand_right")
    state: str | tuple[str, ...] | None = ("observation.state",)
    action: str | None = "action"
    image_size: tuple[int, int] | int = (64, 64)
    samples_per_episode: int = 128
    first_frame_fraction: float = 0.5
    end_frame_fraction: float = 0.2
    end_frames: int = 3
    episodes_per_chunk: int = 4
    num_workers: int = 1
    prefetch_chunks: int = 2
    augment_shift: int = 0
    val_fraction: float = 0.15
    val_episodes_max: int = 8
    val_frame_stride: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.state, str):
            object.__setattr__(self, "state", (self.state,))
        elif self.state is not None and not self.state:
            object.__setattr__(self, "state", None)
        if isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", (self.image_size, self.image_size))
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(
                f"estimator.data.image_size={self.image_size}: (height, width) or one size"
            )
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("first_frame_fraction", "end_frame_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(
                    f"estimator.data.{name}={getattr(self, name)}: a share is in [0, 1]"
                )
        if self.end_frames < 1:
            raise ValueError(f"estimator.data.end_frames={self.end_frames}: must be >= 1")
        if self.samples_per_episode < 1 or self.episodes_per_chunk < 1:
            raise ValueError("samples_per_episode and episodes_per_chunk must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop.

    Attributes:
        steps: optimisation steps.
        batch_size: samples per step per process (per GPU under torchrun).
        lr, weight_decay, warmup_steps, min_lr_ratio: AdamW with linear warmup then
            cosine decay to ``lr * min_lr_ratio``.
        grad_clip: max global gradient norm.
        ema_decay: exponential moving average of the weights (openpi's ``ema_decay``):
            after each step ``ema = decay * ema + (1 - decay) * weights``; checkpoints,
            validation and Stage 2 use the average (the raw weights, for resuming, are kept
            in ``optimizer.pt``). None: no average (the seed's).
        loss_value_weight, loss_action_weight: weights of the value loss and of the
            auxiliary action loss (``data.action``; the seed's action loss is 0 and its
            column unused).
        bf16: autocast to bfloat16 on GPU (ignored on CPU).
        save_interval: checkpoint every n steps (and at the end).
        keep_period: keep checkpoints whose step is a multiple of this (and the latest);
            None keeps all.
        eval_interval: validate every n steps (and at the end).
        log_interval: log the training loss every n steps.
        resume: ``false`` starts a new run (earlier runs are never touched); ``true``
            continues the named or latest run, refused (saying what changed) if it trained
            on other data or settings; ``auto`` continues the latest run when it matches,
            else starts a new one.
        seed: seeds model init, the episode split and the sample stream.
        threads: torch intra-op threads (0: torch's default).
    """

    steps: int = 1200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float | None = None
    loss_value_weight: float = 1.0
    loss_action_weight: float = 0.5
    bf16: bool = True
    save_interval: int = 200
    keep_period: int | None = None
    eval_interval: int = 100
    log_interval: int = 10
    resume: bool | Literal["auto"] = False
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        check_choices(self, "estimator.train.")
        check_ema_decay(self.ema_decay, "estimator.train.ema_decay")


@dataclass(frozen=True)
class EstimatorConfig:
    """Everything that defines a training of the estimator (``parameters_estimator.yml``'s
    ``estimator``; built with :func:`adv_pipeline.configs.from_params`). ``launch`` is the
    torchrun layout (see :mod:`adv_pipeline.distributed`)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)

    def __post_init__(self) -> None:
        d = self.data
        if self.model.variant == "KAI0" and d.end_frame_fraction > 0 and not d.first_frame_fraction:
            raise ValueError(
                f"estimator.data.end_frame_fraction={d.end_frame_fraction} with "
                f"first_frame_fraction=0: for KAI0 it draws the end frames of the pairs "
                f"compared with frame 0, and there are none. Fix: set first_frame_fraction "
                f"> 0 (e.g. 0.5), or end_frame_fraction: 0"
            )
        if (self.data.action is None) != (self.train.loss_action_weight == 0):
            raise ValueError(
                f"estimator.data.action={self.data.action} with estimator.train."
                f"loss_action_weight={self.train.loss_action_weight}: the action loss needs "
                f"both (an action column and a weight > 0) or neither. Fix: set both, or "
                f"data.action: null and loss_action_weight: 0"
            )
