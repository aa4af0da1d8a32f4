"""Options of Stage 2 (light: no torch), built from ``parameters_estimation.yml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adv_pipeline.configs import check_choices
from adv_pipeline.distributed import LaunchConfig


@dataclass(frozen=True)
class EstimationConfig:
    """Options of Stage 2.

    Attributes:
        interval: look-ahead I in frames (the seed's 50).
        batch_size: frames per model call.
        prefetch: batches prepared ahead by the decoding thread.
        decode_threads: FFmpeg (dav1d) threads per camera stream: 1 decodes in the
            prefetch thread only (best for small videos), 0 lets FFmpeg choose (faster on
            480x640 and larger).
        overwrite: recompute episodes whose output already exists.
        threads: torch threads (0: torch's default).
        image_features: name of a column to write each frame's image tokens into (the
            trained encoder's, float32 (cameras x width,), one token per camera of the
            current frame), with the encoder itself under ``meta/encoders/<column>/``: a
            policy can read the cameras through them (``awbc.data.state_key``); None: no
            such column. Needs a backbone with one token per image (small_cnn, siglip).
        launch: torchrun layout; more than one process labels episodes in parallel.
        target: the kind of estimator this run labels with: ``progress`` (absolute
            advantage from value differences, the seed) or ``returns`` (RECAP's n-step
            advantage: the rewards over I frames plus the value difference); a checkpoint
            trained on the other kind (its ``estimator.model.target``) is refused.
    """

    interval: int = 50
    batch_size: int = 64
    prefetch: int = 2
    decode_threads: int = 1
    overwrite: bool = False
    threads: int = 0
    image_features: str | None = "observation.image_features"
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    target: Literal["progress", "returns"] = "progress"

    def __post_init__(self) -> None:
        check_choices(self, "estimation.")
        if self.interval < 1 or self.batch_size < 1:
            raise ValueError("estimation interval and batch_size must be >= 1")
