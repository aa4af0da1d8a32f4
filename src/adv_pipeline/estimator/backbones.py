"""Backbone registry of the advantage estimator.

A backbone maps images ``(B, T, K, 3, H, W)`` in [-1, 1] (T timesteps: comparison
frame then current frame; K cameras) to one summary token ``(B, width)``. A backbone may
also offer ``encode(frames (N, K, 3, H, W)) -> (N, K, w)`` and ``fuse(tokens (B, T, K, w))
-> (B, w)`` so that inference encodes each frame once. Backbones are
chosen by name in parameters (``estimator.model.backbone``). A backbone that takes the
task text has ``takes_text = True``, a ``tokenize(texts) -> (ids, mask)`` method and
``fuse(tokens, text=(ids, mask))``. Pretrained backbones (``paligemma``, ``siglip``, in
:mod:`.paligemma`, loaded only when chosen: they import ``transformers``) also receive
the ``pretrained`` options of :class:`~.config.ModelConfig`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

BackboneFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, BackboneFactory] = {}
# registered on first use: their modules import transformers
_LAZY = {
    "paligemma": "adv_pipeline.estimator.paligemma",
    "siglip": "adv_pipeline.estimator.paligemma",
}
PRETRAINED_BACKBONES = frozenset(_LAZY)


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator: make ``factory(width=, timesteps=, num_cameras=, image_size=, **kw)``
    available as ``backbone: <name>``."""

    def wrap(factory: BackboneFactory) -> BackboneFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_backbones() -> list[str]:
    return sorted({*_REGISTRY, *_LAZY})


def backbone_factory(name: str) -> BackboneFactory:
    """The registered factory (usually the class) of backbone ``name``."""
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown estimator backbone {name!r}; available: {available_backbones()}. Fix: set "
            f"estimator.model.backbone"
        )
    return _REGISTRY[name]


def gives_image_tokens(backbone: nn.Module | BackboneFactory) -> bool:
    """Whether a backbone (or its class) encodes each camera image into one token
    (``encode``/``fuse`` and ``tokens_per_image == 1``: small_cnn, siglip, not paligemma)."""
    return (
        hasattr(backbone, "encode")
        and hasattr(backbone, "fuse")
        and getattr(backbone, "tokens_per_image", None) == 1
    )


def build_backbone(
    name: str,
    *,
    width: int,
    timesteps: int,
    num_cameras: int,
    image_size: tuple[int, int],
    **kwargs,
) -> nn.Module:
    """Instantiate a registered backbone."""
    return backbone_factory(name)(
        width=width,
        timesteps=timesteps,
        num_cameras=num_cameras,
        image_size=tuple(image_size),
        **kwargs,
    )


class SpatialSoftmax(nn.Module):
    """Keypoints of a feature map: a 1x1 convolution to ``keypoints`` maps, each turned
    into the expected (x, y) of its softmax over positions, in [-1, 1] image coordinates.
    (N, C, h, w) -> (N, 2 * keypoints)."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.maps(x)
        n, k, h, w = logits.shape
        attn = torch.softmax(logits.flatten(2), dim=-1)  # (N, K, h*w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=attn.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=attn.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(h * w, 2)
        return (attn @ grid).flatten(1)


class ConvEncoder(nn.Module):
    """Shared image encoder: stride-2 convolutions, then either the (H/2^n, W/2^n) feature
    map flattened (keeps where things are, unlike pooling) or, with ``keypoints`` > 0,
    its spatial-softmax keypoints (where each learned feature peaks), projected to ``width``."""

    def __init__(
        self,
        width: int,
        image_size: tuple[int, int],
        channels: tuple[int, ...],
        keypoints: int,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, 3, stride=2, padding=1),
                nn.GroupNorm(8 if c % 8 == 0 else 1, c),
                nn.SiLU(),
            ]
            c_in = c
        if keypoints:
            layers.append(SpatialSoftmax(c_in, keypoints))
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.conv(torch.zeros(1, 3, *image_size)).flatten(1).shape[1]
        self.proj = nn.Sequential(
            nn.Flatten(), nn.Linear(n, width), nn.SiLU(), nn.Linear(width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, width)."""
        return self.proj(self.conv(x))


class TokenFusion(nn.Module):
    """Fuses per-(timestep, camera) tokens ``(B, T, K, w)`` into one summary ``(B, w)``:
    a role embedding (comparison vs current frame) and a camera embedding are added, and
    a learned summary token attends over them in ``depth`` pre-norm transformer layers.
    Subclasses provide ``encode(frames (N, K, 3, H, W)) -> (N, K, w)`` and call
    :meth:`_build_fusion` in their constructor, after their encoder (the order of the
    random draws: a given seed initialises the same weights as before the split)."""

    takes_text = False
    tokens_per_image = 1

    def _build_fusion(
        self, width: int, timesteps: int, num_cameras: int, depth: int, heads: int
    ) -> None:
        self.role = nn.Parameter(torch.randn(timesteps, 1, width) * 0.02)
        self.camera = nn.Parameter(torch.randn(1, num_cameras, width) * 0.02)
        self.summary = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=2 * width,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.fusion = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def fuse(self, tokens: torch.Tensor, text=None) -> torch.Tensor:
        """(B, T, K, w) tokens -> (B, w) summary (``text`` is ignored)."""
        b = tokens.shape[0]
        x = (tokens + self.role + self.camera).flatten(1, 2)  # (B, T*K, w)
        x = torch.cat([self.summary.expand(b, -1, -1), x], dim=1)
        return self.norm(self.fusion(x)[:, 0])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, t = images.shape[:2]
        return self.fuse(self.encode(images.flatten(0, 1)).view(b, t, *images.shape[2:3], -1))


@register_backbone("small_cnn")
class SmallCNNBackbone(TokenFusion):
    """The default backbone, small enough to train on 2 CPU cores in minutes: one shared
    :class:`ConvEncoder` token per (timestep, camera), fused by :class:`TokenFusion`.

    By default two stride-2 convolutions and 32 spatial-softmax keypoints on the (H/4, W/4)
    map: on the demo they place the block and the goal within ~2 cm on held-out episodes
    (the flattened 4-convolution map ``channels=(32, 48, 64, 64), keypoints=0``: 3-9 cm),
    which is what a policy reading the tokens (Stage 2's image features) needs to grasp."""

    def __init__(
        self,
        width: int,
        timesteps: int,
        num_cameras: int,
        image_size: tuple[int, int],
        depth: int = 2,
        heads: int = 4,
        channels: tuple[int, ...] = (32, 48),
        keypoints: int = 32,
    ):
        super().__init__()
        self.encoder = ConvEncoder(width, image_size, tuple(channels), keypoints)
        self._build_fusion(width, timesteps, num_cameras, depth, heads)

    # encode/fuse split: inference encodes each frame once and reuses its tokens in
    # every pair it belongs to (see inference.py)
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, H, W) -> per-camera tokens (N, K, w); K = 0 (a state-only estimator,
        the state token alone): (N, 0, w)."""
        n, k = frames.shape[:2]
        if k == 0:
            return frames.new_zeros((n, 0, self.summary.shape[-1]), dtype=torch.float32)
        return self.encoder(frames.flatten(0, 1)).view(n, k, -1)
