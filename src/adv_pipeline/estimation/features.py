"""A trained estimator's image encoder as a feature extractor: the cameras of a frame ->
the image tokens Stage 2 writes as its ``image_features`` column. A policy trained on
that column computes the same tokens from live camera images with it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from adv_pipeline.checkpoints import load_checkpoint
from adv_pipeline.estimator.evaluate import load_estimator
from adv_pipeline.estimator.model import to_model_input
from adv_pipeline.lerobot import camera_name, resize_with_pad


class ImageFeatures:
    """The frozen encoder of an estimator checkpoint: its step folder (as
    ``meta/encoders/<column>/<step>/``).

    Attributes:
        cameras: the camera names it reads, in order.
        dim: feature length (cameras x token width).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.model, self.config = load_estimator(
            load_checkpoint(self.path.parent, int(self.path.name))
        )
        if not self.model.image_tokens:
            raise ValueError(
                f"{self.path}: backbone {self.config.model.backbone!r} has no one-token-per-"
                f"image encoder, so it cannot compute image features"
            )
        self.cameras = tuple(camera_name(c) for c in self.config.data.cameras)
        self.size = tuple(self.config.data.image_size)
        self.dim = len(self.cameras) * self.model.token_width

    def __call__(self, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """``{camera name or video key: uint8 (B, H, W, 3)}`` -> float32 (B, dim), the
        images resized with padding to the encoder's size as Stage 2's decoder does."""
        frames = []
        for cam in self.cameras:
            img = images.get(cam)
            if img is None:
                img = next((v for k, v in images.items() if camera_name(k) == cam), None)
            if img is None:
                raise KeyError(
                    f"the image features of {self.path} need camera {cam!r}; the observation "
                    f"has {sorted(images)}"
                )
            frames.append(resize_with_pad(np.asarray(img, np.uint8), self.size))
        x = to_model_input(torch.from_numpy(np.stack(frames, axis=1)))  # (B, K, 3, H, W)
        with torch.inference_mode():
            tokens = self.model.backbone.encode(x)  # (B, K, w)
        return tokens.flatten(1).float().numpy()
