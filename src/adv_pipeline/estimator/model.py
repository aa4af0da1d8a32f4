"""The advantage estimator: backbone summary token -> value head (SEMANTICS.md, Stage 1)."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import build_backbone
from .config import DataConfig, ModelConfig


class ValueHead(nn.Module):
    """Linear(w, w) - SiLU - Linear(w, w) - SiLU - Linear(w, 1) - tanh: a value in (-1, 1)."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x)).squeeze(-1)


class AdvantageEstimator(nn.Module):
    """``forward(images) -> (B,) value``.

    ``images``: (B, T, K, 3, H, W) float in [-1, 1], T = 2 for KAI0 (comparison frame,
    current frame) and 1 for PI06, K cameras in ``DataConfig.cameras`` order.
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
            num_cameras=len(data.cameras),
            image_size=tuple(data.image_size),
            **dict(model.backbone_kwargs),
        )
        self.value_head = ValueHead(model.width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.value_head(self.backbone(images))

    @property
    def factorized(self) -> bool:
        """Whether the backbone can encode frames once and fuse token pairs later."""
        return hasattr(self.backbone, "encode") and hasattr(self.backbone, "fuse")

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, H, W) -> (N, K, w) per-frame tokens (factorized backbones)."""
        return self.backbone.encode(frames)

    def value_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, K, w) tokens -> (B,) value (factorized backbones)."""
        return self.value_head(self.backbone.fuse(tokens))


def to_model_input(frames_uint8: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    x = frames_uint8.to(torch.float32).movedim(-1, -3)
    return x / 127.5 - 1.0


def value_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE on the value (the seed's loss_value_weight term)."""
    return torch.mean((pred - target) ** 2)


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
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
