"""Pretrained backbones on ``transformers``' PaliGemma: the seed's pi0.5 estimator.

``backbone: paligemma``: every camera image of both KAI0 timesteps goes through SigLIP
and PaliGemma's projector (256 tokens per 224x224 image), the state (one projected token
per timestep) and the tokenised task text follow, then a learned summary token; Gemma
runs over the whole prefix with full (bidirectional) attention, as PaliGemma's prefix,
and the summary token's last hidden state, projected to ``width``, is what the value
head reads. ``backbone: siglip``: the vision tower alone, one mean-pooled token per image,
fused as ``small_cnn``'s tokens are; it ignores the text.

Both load their weights from ``estimator.model.pretrained`` (see :mod:`.pretrained`);
a trained checkpoint carries the architecture and the tokenizer in its ``assets/`` so
that Stage 2 needs nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from adv_pipeline.errors import InputError

from .backbones import TokenFusion, register_backbone
from .config import FREEZE
from .pretrained import (
    BACKBONE_CONFIG_FILE,
    TOKENIZER_DIR,
    check_pretrained_dir,
    load_paligemma_weights,
    load_tokenizer,
    paligemma_config,
)


def _architecture(pretrained, assets, overrides: Mapping | None, random_init: bool = False):
    """The PaliGemmaConfig: from a trained checkpoint's assets, else from the pretrained
    directory; and the directory to load weights from (None: built from assets, or
    ``random_init``)."""
    from transformers import PaliGemmaConfig

    if assets is not None:
        raw = json.loads((Path(assets) / BACKBONE_CONFIG_FILE).read_text())
        return PaliGemmaConfig(**raw), None
    if random_init:
        return paligemma_config(None if pretrained is None else Path(pretrained), overrides), None
    path = check_pretrained_dir(pretrained)
    return paligemma_config(path, overrides), path


def _resolve(pretrained, assets, overrides, image_size, freeze: str, random_init: bool = False):
    """The checked architecture and weights directory of a pretrained backbone (see
    :func:`_architecture`): ``freeze`` is known and the images fit the vision tower."""
    if freeze not in FREEZE:
        raise InputError(f"estimator.model.freeze={freeze!r}: one of {FREEZE}")
    config, path = _architecture(pretrained, assets, overrides, random_init)
    _check_image_size(image_size, config)
    return config, path


def _check_image_size(image_size: Sequence[int], config) -> None:
    side = int(config.vision_config.image_size)
    if tuple(image_size) != (side, side):
        raise InputError(
            f"estimator.data.image_size={list(image_size)} but the checkpoint's vision tower "
            f"takes {side}x{side} images. Fix: set estimator.data.image_size: {side}"
        )


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


@register_backbone("paligemma")
class PaliGemmaBackbone(nn.Module):
    """PaliGemma (SigLIP + Gemma) over the cameras of all timesteps, the state and the
    task text; one summary token out.

    Args:
        width: output width w (the value head's).
        timesteps, num_cameras: T and K (+1 when the estimator adds a state token).
        image_size: (H, W); must equal the vision tower's (224 for pi0.5).
        pretrained: checkpoint directory (see :mod:`.pretrained`); unused with ``assets``.
        tokenizer: directory of the tokenizer files (default: ``pretrained``).
        freeze: ``none``, ``vision`` (SigLIP and the projector) or ``backbone`` (all of
            PaliGemma: only the summary token, projections and the head learn).
        gradient_checkpointing: recompute activations in the backward pass.
        max_text_tokens: the task text is cut to this many tokens.
        assets: a trained checkpoint's ``assets/``: rebuild the same model (weights come
            from the checkpoint).
        paligemma_config: nested overrides of the architecture (e.g. a smaller model).
        random_init: random weights of the architecture (``pretrained``'s config.json if
            given, else pi0.5's); nothing is loaded. For benchmarks.
    """

    takes_text = True

    def __init__(
        self,
        width: int,
        timesteps: int,
        num_cameras: int,
        image_size: tuple[int, int],
        pretrained: str | None = None,
        tokenizer: str | None = None,
        freeze: str = "none",
        gradient_checkpointing: bool = False,
        max_text_tokens: int = 48,
        assets: str | Path | None = None,
        paligemma_config: Mapping | None = None,
        random_init: bool = False,
    ):
        from transformers import PaliGemmaModel

        super().__init__()
        config, path = _resolve(
            pretrained, assets, paligemma_config, image_size, freeze, random_init
        )
        self.tokenizer = load_tokenizer(
            Path(assets) / TOKENIZER_DIR if assets is not None else None, tokenizer, path
        )
        self.max_text_tokens = int(max_text_tokens)
        self.vlm = PaliGemmaModel(config)
        if path is not None:
            load_paligemma_weights(self.vlm, path)
        d = config.text_config.hidden_size
        self.token_width = d
        self.summary = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.out = nn.Linear(d, width)
        if freeze == "vision":
            _freeze(self.vlm.vision_tower)
            _freeze(self.vlm.multi_modal_projector)
        elif freeze == "backbone":
            _freeze(self.vlm)
        if gradient_checkpointing:
            self.vlm.activation_checkpointing_enable({"use_reentrant": False})

    def save_assets(self, directory: Path) -> None:
        """What rebuilding this model needs besides its weights: architecture, tokenizer."""
        (directory / BACKBONE_CONFIG_FILE).write_text(self.vlm.config.to_json_string())
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Task texts -> ``(ids (n, L) long, mask (n, L) bool)``, PaliGemma's prompt form
        (``<bos>text\\n``), cut to ``max_text_tokens``."""
        enc = self.tokenizer(
            [f"{t.strip()}\n" for t in texts],
            padding="longest",
            truncation=True,
            max_length=self.max_text_tokens,
            return_tensors="pt",
        )
        return enc["input_ids"], enc["attention_mask"].bool()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, H, W) in [-1, 1] -> (N, K*P, D) image tokens (P per image)."""
        n = frames.shape[0]
        feats = self.vlm.get_image_features(frames.flatten(0, 1)).pooler_output
        return feats.reshape(n, -1, feats.shape[-1])

    def fuse(self, tokens: torch.Tensor, text=None) -> torch.Tensor:
        """(B, T, L, D) per-frame tokens and ``text = (ids (B, Lt), mask (B, Lt))`` ->
        (B, width)."""
        b = tokens.shape[0]
        x = tokens.flatten(1, 2)
        keep = torch.ones(b, x.shape[1] + 1, dtype=torch.bool, device=x.device)
        parts = [x]
        if text is not None:
            ids, mask = text
            parts.append(self.vlm.get_input_embeddings()(ids).to(x.dtype))
            keep = torch.cat([keep[:, :-1], mask.to(x.device), keep[:, -1:]], dim=1)
        parts.append(self.summary.to(x.dtype).expand(b, -1, -1))
        x = torch.cat(parts, dim=1)
        # additive mask (B, 1, 1, S): every token sees every non-padding token; positions
        # count non-padding tokens only (as openpi), so padding changes nothing
        bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
        bias = bias.masked_fill(~keep, torch.finfo(x.dtype).min)[:, None, None, :]
        positions = keep.long().cumsum(dim=1) - 1
        h = self.vlm.language_model(
            inputs_embeds=x, attention_mask=bias, position_ids=positions
        ).last_hidden_state
        return self.out(h[:, -1])


@register_backbone("siglip")
class SiglipBackbone(TokenFusion):
    """The vision tower of a PaliGemma / pi0.5 checkpoint, one mean-pooled token per
    image projected to ``width``, fused by :class:`TokenFusion` (the text is ignored).
    ``freeze``: ``vision`` or ``backbone`` freezes the tower."""

    def __init__(
        self,
        width: int,
        timesteps: int,
        num_cameras: int,
        image_size: tuple[int, int],
        pretrained: str | None = None,
        tokenizer: str | None = None,
        freeze: str = "none",
        gradient_checkpointing: bool = False,
        max_text_tokens: int = 48,
        assets: str | Path | None = None,
        paligemma_config: Mapping | None = None,
        depth: int = 2,
        heads: int = 4,
    ):
        from transformers import SiglipVisionModel

        super().__init__()
        config, path = _resolve(pretrained, assets, paligemma_config, image_size, freeze)
        self.vision_config = config
        self.tower = SiglipVisionModel(config.vision_config)
        if path is not None:
            load_paligemma_weights(self.tower, path, part="vision_tower.")
        self.proj = nn.Linear(config.vision_config.hidden_size, width)
        self._build_fusion(width, timesteps, num_cameras, depth, heads)
        if freeze != "none":
            _freeze(self.tower)
        if gradient_checkpointing:
            self.tower.activation_checkpointing_enable({"use_reentrant": False})

    def save_assets(self, directory: Path) -> None:
        (directory / BACKBONE_CONFIG_FILE).write_text(self.vision_config.to_json_string())

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, H, W) in [-1, 1] -> (N, K, w)."""
        n, k = frames.shape[:2]
        h = self.tower(pixel_values=frames.flatten(0, 1)).last_hidden_state.mean(dim=1)
        return self.proj(h).view(n, k, -1)
