"""The advantage estimator: backbone summary token -> value head (docs/semantics.md, Stage 1)."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import build_backbone
from .config import DataConfig, ModelConfig


class ValueHead(nn.Module):
    """Linear(w, w) - SiLU - Linear(w, w) - SiLU - Linear(w, 1) - tanh: a value in (-1, 1)."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x)).squeeze(-1)


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


class AdvantageEstimator(nn.Module):
    """``forward(images, state=None) -> (B,) value``.

    ``images``: (B, T, K, 3, H, W) float in [-1, 1], T = 2 for KAI0 (comparison frame,
    current frame) and 1 for PI06, K cameras in ``DataConfig.cameras`` order.
    ``state``: (B, T, S) float, the state at the same frames (when ``state_dim`` > 0; it
    joins the camera tokens as one more token per timestep).
    KAI0 predicts the progress made from the comparison frame to the current one;
    PI06 the value (stage progress) of the current frame.
    """

    def __init__(self, model: ModelConfig, data: DataConfig):
        super().__init__()
        self.config = model
        self.backbone = build_backbone(
            model.backbone,
            width=model.width,
            timesteps=model.timesteps,
            num_cameras=len(data.cameras) + (1 if model.state_dim else 0),
            image_size=tuple(data.image_size),
            **dict(model.backbone_kwargs),
        )
        self.state_encoder = StateEncoder(model.state_dim, model.width) if model.state_dim else None
        if self.state_encoder is not None and not self.factorized:
            raise ValueError(
                f"backbone {model.backbone!r} has no encode/fuse split, so it cannot take the "
                f"state as a token. Fix: set estimator.data.state: null"
            )
        self.value_head = ValueHead(model.width)

    def forward(self, images: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        if self.state_encoder is None:
            return self.value_head(self.backbone(images))
        b, t = images.shape[:2]
        tokens = self.encode(images.flatten(0, 1), state.flatten(0, 1))
        return self.value_from_tokens(tokens.view(b, t, *tokens.shape[1:]))

    @property
    def factorized(self) -> bool:
        """Whether the backbone can encode frames once and fuse token pairs later."""
        return hasattr(self.backbone, "encode") and hasattr(self.backbone, "fuse")

    def encode(self, frames: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(N, K, 3, H, W) frames and (N, S) state -> (N, K (+1), w) per-frame tokens
        (factorized backbones; the state token comes last)."""
        tokens = self.backbone.encode(frames)
        if self.state_encoder is None:
            return tokens
        if state is None:
            raise ValueError(
                "this estimator was trained with the state as input; pass the state of every frame"
            )
        return torch.cat([tokens, self.state_encoder(state)[:, None]], dim=1)

    def value_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, K (+1), w) tokens -> (B,) value (factorized backbones)."""
        return self.value_head(self.backbone.fuse(tokens))


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
