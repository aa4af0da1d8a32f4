"""Image preprocessing shared by training (decoded video) and inference (rendered frames)."""

from __future__ import annotations

import numpy as np

from adv_pipeline.lerobot import resize_with_pad


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (..., H, W, 3) -> uint8 (..., size, size, 3).

    An integer factor uses exact block averaging (identical for video frames and
    simulator renders); other sizes fall back to the project's padded area resize.
    """
    images = np.asarray(images, dtype=np.uint8)
    h, w = images.shape[-3:-1]
    if (h, w) == (size, size):
        return images
    if h == w and h % size == 0:
        f = h // size
        lead = images.shape[:-3]
        blocks = images.reshape(*lead, size, f, size, f, 3).astype(np.float32).mean(axis=(-4, -2))
        return np.round(blocks).astype(np.uint8)
    flat = images.reshape(-1, h, w, 3)
    return resize_with_pad(flat, (size, size)).reshape(*images.shape[:-3], size, size, 3)
