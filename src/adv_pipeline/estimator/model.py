"""The advantage estimator: backbone summary token -> value head (docs/semantics.md, Stage 1)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from adv_pipeline.errors import InputError

from .backbones import PRETRAINED_BACKBONES, backbone_factory, build_backbone, gives_image_tokens
from .config import DataConfig, ModelConfig

Text = tuple[torch.Tensor, torch.Tensor]  # token ids (B, L) long, mask (B, L) bool


def _mlp(width: int, out: int) -> nn.Sequential:
    """Linear(w, w) - SiLU - Linear(w, w) - SiLU - Linear(w, out)."""
    return nn.Sequential(
        nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
        nn.Linear(width, out),
    )  # fmt: skip


class ValueHead(nn.Module):
    """The seed's head: an MLP, then tanh: a value in (-1, 1), trained with MSE.

    ``forward(x)`` -> (B,) value; ``outputs(x)`` -> (value, spread) with spread None.
    """

    def __init__(self, width: int):
        super().__init__()
        self.net = _mlp(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x)).squeeze(-1)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self(x), None

    def loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return value_loss(self(x).float(), target)


class DistributionalValueHead(nn.Module):
    """An MLP to logits over ``bins`` values evenly spaced on [lo, hi] (the ``support``).

    The value is the distribution's mean and its spread the standard deviation; training
    minimises the cross-entropy to the two-hot encoding of the target (its mass split
    between the two nearest bins so that the encoding's mean is the target exactly).
    """

    def __init__(self, width: int, bins: int, lo: float, hi: float):
        super().__init__()
        self.net = _mlp(width, bins)
        self.register_buffer("support", torch.linspace(lo, hi, bins))

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) value and (B,) spread in the target's units."""
        p = torch.softmax(self.net(x).float(), dim=-1)
        mean = p @ self.support
        var = p @ self.support.square() - mean.square()
        return mean, var.clamp_min(0).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[0]

    def loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.net(x).float(), dim=-1)
        return -(two_hot(target, self.support) * logp).sum(-1).mean()


def two_hot(target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """(B,) targets -> (B, bins) distributions on the evenly spaced ``support``: weight
    on the two bins around each target (clamped into the support), mean = the target."""
    n = len(support)
    lo, hi = support[0], support[-1]
    pos = (target.float().clamp(lo, hi) - lo) / (hi - lo) * (n - 1)
    left = pos.floor().clamp(max=n - 2)
    w = pos - left
    out = torch.zeros(len(target), n, device=target.device)
    out.scatter_(1, left.long()[:, None], (1 - w)[:, None])
    out.scatter_add_(1, left.long()[:, None] + 1, w[:, None])
    return out


class StateEncoder(nn.Module):
    """(N, S) state -> (N, w) token: normalised with the training data's mean and std
    (buffers, saved with the weights), then Linear - SiLU - Linear."""

    def __init__(self, state_dim: int, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(state_dim))
        self.register_buffer("std", torch.ones(state_dim))
        self.net = nn.Sequential(nn.Linear(state_dim, width), nn.SiLU(), nn.Linear(width, width))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net((state - self.mean) / self.std)


class ActionHead(nn.Module):
    """The auxiliary action head: the current frame's L tokens (B, L, w), flattened, ->
    (B, A) normalised action; :meth:`loss` is the MSE to the action normalised by the
    training data's mean and std (buffers, saved with the weights)."""

    def __init__(self, tokens: int, width: int, action_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(action_dim))
        self.register_buffer("std", torch.ones(action_dim))
        self.net = nn.Sequential(
            nn.Linear(tokens * width, width), nn.SiLU(), nn.Linear(width, action_dim)
        )

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def loss(
        self, tokens: torch.Tensor, action: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean squared error over the batch and action dimensions; ``weight`` (B,)
        scales each sample's terms (the mean still divides by B)."""
        err = (self.net(tokens.flatten(1)).float() - (action - self.mean) / self.std) ** 2
        return err.mean() if weight is None else (err * weight[:, None]).mean()


class AdvantageEstimator(nn.Module):
    """``forward(images, state=None, target=None, text=None) -> (B,) value``.

    ``images``: (B, T, K, 3, H, W) float in [-1, 1], T = 2 for KAI0 (comparison frame,
    current frame) and 1 for PI06, K cameras in ``DataConfig.cameras`` order.
    ``state``: (B, T, S) float, the state at the same frames (when ``state_dim`` > 0; it
    joins the camera tokens as one more token per timestep).
    ``text``: the tokenised task of each sample (:meth:`tokenize`), for backbones that
    take text (:attr:`takes_text`); others ignore it.
    KAI0 predicts the progress made from the comparison frame to the current one;
    PI06 the value (stage progress) of the current frame.
    ``assets``: a trained checkpoint's assets folder, from which a pretrained backbone is
    rebuilt (its weights then come from the checkpoint, not ``model.pretrained``).
    """

    def __init__(self, model: ModelConfig, data: DataConfig, assets: str | Path | None = None):
        super().__init__()
        self.config = model
        extra = {}
        if model.backbone in PRETRAINED_BACKBONES:
            extra = dict(
                pretrained=model.pretrained,
                tokenizer=model.tokenizer,
                freeze=model.freeze,
                gradient_checkpointing=model.gradient_checkpointing,
                max_text_tokens=model.max_text_tokens,
                assets=assets,
            )
        elif model.pretrained is not None:
            raise InputError(
                f"estimator.model.pretrained={model.pretrained} but backbone {model.backbone!r} "
                f"trains from scratch. Fix: set estimator.model.backbone to one of "
                f"{sorted(PRETRAINED_BACKBONES)}, or pretrained: null"
            )
        if model.action_dim and not gives_image_tokens(backbone_factory(model.backbone)):
            raise InputError(
                f"estimator.data.action: the action loss reads the current frame's tokens, "
                f"one per camera; backbone {model.backbone!r} has no such encoder. Fix: set "
                f"estimator.data.action: null and train.loss_action_weight: 0 (conf/pi05 "
                f"does: kedro run --env pi05)"
            )
        self.backbone = build_backbone(
            model.backbone,
            width=model.width,
            timesteps=model.timesteps,
            num_cameras=len(data.cameras) + (1 if model.state_dim else 0),
            image_size=tuple(data.image_size),
            **extra,
            **dict(model.backbone_kwargs),
        )
        token_width = getattr(self.backbone, "token_width", model.width)
        self.token_width = token_width
        self.state_encoder = StateEncoder(model.state_dim, token_width) if model.state_dim else None
        if self.state_encoder is not None and not self.factorized:
            raise ValueError(
                f"backbone {model.backbone!r} has no encode/fuse split, so it cannot take the "
                f"state as a token. Fix: set estimator.data.state: null"
            )
        self.action_head = None
        if model.action_dim:
            tokens = len(data.cameras) + (1 if model.state_dim else 0)
            self.action_head = ActionHead(tokens, token_width, model.action_dim)
        self.value_head = (
            DistributionalValueHead(model.width, model.value_bins, *model.target_range)
            if model.value_head == "distributional"
            else ValueHead(model.width)
        )

    def summary(
        self, images: torch.Tensor, state: torch.Tensor | None = None, text: Text | None = None
    ) -> torch.Tensor:
        """(B, w) summary the value head reads (arguments as :meth:`forward`)."""
        if not self.factorized:
            return self.backbone(images)
        return self._fuse(self._frame_tokens(images, state), text)

    def _frame_tokens(self, images: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """(B, T, K, 3, H, W) images and (B, T, S) state -> (B, T, L, w) tokens of every
        frame (:meth:`encode`; factorized backbones)."""
        b, t = images.shape[:2]
        tokens = self.encode(images.flatten(0, 1), None if state is None else state.flatten(0, 1))
        return tokens.view(b, t, *tokens.shape[1:])

    def outputs(
        self, images: torch.Tensor, state: torch.Tensor | None = None, text: Text | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B,) value and (B,) spread (None for the tanh head)."""
        return self.value_head.outputs(self.summary(images, state, text))

    def forward(
        self,
        images: torch.Tensor,
        state: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        text: Text | None = None,
        action: torch.Tensor | None = None,
        weights: tuple[float, float] = (1.0, 0.0),
        action_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B,) value; with ``target`` (B,), the training loss instead (one call, so that
        DistributedDataParallel sees the whole computation): ``weights[0]`` x the value
        head's loss, plus ``weights[1]`` x the action head's on ``action`` (B, A) at the
        current frame, when the model has one (``action_weight`` (B,): each sample's
        weight in it, None: 1)."""
        if target is None:
            return self.value_head(self.summary(images, state, text))
        if self.action_head is None or action is None:
            return weights[0] * self.value_head.loss(self.summary(images, state, text), target)
        tokens = self._frame_tokens(images, state)
        value = self.value_head.loss(self._fuse(tokens, text), target)
        action_loss = self.action_head.loss(tokens[:, -1], action, action_weight)
        return weights[0] * value + weights[1] * action_loss

    @property
    def factorized(self) -> bool:
        """Whether the backbone can encode frames once and fuse token pairs later."""
        return hasattr(self.backbone, "encode") and hasattr(self.backbone, "fuse")

    @property
    def image_tokens(self) -> bool:
        """Whether :meth:`encode` gives one token per camera image (small_cnn, siglip):
        then those tokens can serve as a frame's image features (Stage 2)."""
        return gives_image_tokens(self.backbone)

    @property
    def takes_text(self) -> bool:
        """Whether the backbone reads the task text (else ``text`` is ignored)."""
        return bool(getattr(self.backbone, "takes_text", False))

    def tokenize(self, texts: list[str]) -> Text:
        """Task texts -> the backbone's ``(ids, mask)`` (text-taking backbones only)."""
        return self.backbone.tokenize(texts)

    def save_assets(self, directory: Path) -> None:
        """Write what rebuilding the backbone needs besides the weights (if anything)."""
        if hasattr(self.backbone, "save_assets"):
            self.backbone.save_assets(Path(directory))

    def _fuse(self, tokens: torch.Tensor, text: Text | None) -> torch.Tensor:
        if self.takes_text:
            return self.backbone.fuse(tokens, text)
        return self.backbone.fuse(tokens)

    def encode(self, frames: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(N, K, 3, H, W) frames and (N, S) state -> (N, L (+1), w) per-frame tokens
        (factorized backbones: L = K for small_cnn, K * 256 for paligemma; the state
        token comes last)."""
        tokens = self.backbone.encode(frames)
        if self.state_encoder is None:
            return tokens
        if state is None:
            raise ValueError(
                "this estimator was trained with the state as input; pass the state of every frame"
            )
        return torch.cat([tokens, self.state_encoder(state)[:, None]], dim=1)

    def outputs_from_tokens(
        self, tokens: torch.Tensor, text: Text | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, L, w) per-frame tokens (:meth:`encode`) -> (B,) value and (B,) spread
        (None for the tanh head)."""
        return self.value_head.outputs(self._fuse(tokens, text))


class TaskPrompts:
    """Tokenised task texts, gathered per sample by ``task_index``.

    ``tasks``: ``{task_index: text}`` (e.g. ``dict(enumerate(dataset.tasks))``). Calling
    with (B,) task indices gives the model's ``text`` argument (None when the model does
    not take text, so callers need no branch).
    """

    def __init__(self, model: AdvantageEstimator, tasks: dict[int, str], device="cpu"):
        self.device = device
        self.ids = self.mask = None
        if model.takes_text and tasks:
            keys = sorted(tasks)
            self.row = torch.full((max(keys) + 1,), -1, dtype=torch.long)
            self.row[keys] = torch.arange(len(keys))
            ids, mask = model.tokenize([tasks[k] for k in keys])
            self.ids, self.mask = ids.to(device), mask.to(device)

    def __call__(self, task_index) -> Text | None:
        if self.ids is None:
            return None
        rows = self.row[torch.as_tensor(task_index, dtype=torch.long)].to(self.device)
        return self.ids[rows], self.mask[rows]


def to_model_input(frames_uint8: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    x = frames_uint8.to(torch.float32).movedim(-1, -3)
    return x / 127.5 - 1.0


def value_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE on the value (the seed's loss_value_weight term)."""
    return torch.mean((pred - target) ** 2)


def random_shift(
    images: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Translate every image by up to ``pad`` pixels (edge padding, then a random crop):
    the DrQ augmentation, which keeps a small vision model from memorising the few
    training episodes. ``images``: (..., 3, H, W) float; same shape out."""
    if pad <= 0:
        return images
    shape = images.shape
    x = images.reshape(-1, *shape[-3:])
    n, _, h, w = x.shape
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, :, None]  # (n, h, 1)
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, :]  # (n, 1, w)
    out = x[torch.arange(n)[:, None, None], :, rows, cols]  # (n, h, w, 3)
    return out.permute(0, 3, 1, 2).reshape(shape)
