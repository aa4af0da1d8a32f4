"""Real-robot-shaped LeRobot v2.1 fixtures: what a user brings, not what our demo writes.

Like kai0's Agilex recordings: several tasks, 14-D ``observation.state`` / ``action``
(left arm 0..5 + gripper 6, right arm 7..12 + gripper 13), three cameras (``top_head``,
``hand_left``, ``hand_right``) in AV1, and no advantage columns. ``annotated=True`` adds
the annotation columns Stage 0 reads (``stage_progress_gt`` with two stages,
``progress``). Images are small by default so tests stay fast; pass ``size=(480, 640)``
for the real resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from adv_pipeline.lerobot import (
    LeRobotDatasetReader,
    NewDataset,
    VideoOptions,
    feature_spec,
    video_feature_spec,
)

CAMERAS = ("top_head", "hand_left", "hand_right")
TASKS = ("fold the cloth", "hang the shirt on the rack")
JOINTS = (
    [f"left_joint_{i}" for i in range(6)]
    + ["left_gripper"]
    + [f"right_joint_{i}" for i in range(6)]
    + ["right_gripper"]
)
AV1 = VideoOptions(codec="libsvtav1", pix_fmt="yuv420p", crf=35, gop=10, preset="12")

# the smallest Stage 1 and Stage 3 settings that train for real on these datasets (seconds)
TINY_ESTIMATOR = {
    "model": {"width": 16, "backbone_kwargs": {"depth": 1, "heads": 2, "channels": [8, 8]}},
    "data": {"image_size": 32, "samples_per_episode": 8, "num_workers": 0,
             "val_fraction": 0.25, "val_frame_stride": 6},
    "train": {"steps": 4, "batch_size": 4, "warmup_steps": 1, "save_interval": 4,
              "eval_interval": 4, "log_interval": 2},
}  # fmt: skip
TINY_POLICY = {
    "data": {"cameras": list(CAMERAS), "state_key": ["observation.state"], "image_size": 32,
             "horizon": 4, "val_fraction": 0.25},
    "model": {"conv_channels": [8], "image_features": 16, "text_dim": 16, "width": 32,
              "depth": 1, "flow_steps": 2},
    "train": {"steps": 4, "batch_size": 8, "warmup_steps": 1, "save_interval": 4,
              "log_interval": 2, "progress_bar": False},
    "eval": {"val_frame_stride": 3},
}  # fmt: skip


def with_cameras(config: dict, cameras: list[str]) -> dict:
    """``config`` with its ``data.cameras`` replaced."""
    return {**config, "data": {**config["data"], "cameras": list(cameras)}}


@dataclass(frozen=True)
class RobotEpisode:
    """One recorded episode: a smooth 14-D joint trajectory, its cameras, its task."""

    seed: int
    length: int
    task: str
    size: tuple[int, int]
    annotated: bool

    @property
    def columns(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        t = np.linspace(0.0, 1.0, self.length)[:, None]
        phase = rng.uniform(0, 2 * np.pi, 14)
        state = (
            0.5 * np.sin(2 * np.pi * t + phase) + 0.05 * rng.normal(size=(self.length, 14))
        ).astype(np.float32)
        action = np.roll(state, -1, axis=0)
        action[-1] = state[-1]
        cols = {"observation.state": state, "action": action.astype(np.float32)}
        if self.annotated:
            boundary = int(rng.integers(self.length // 3, 2 * self.length // 3))
            sp = np.where(
                np.arange(self.length) < boundary,
                0.5 * np.arange(self.length) / boundary,
                0.5
                + 0.5 * (np.arange(self.length) - boundary) / max(self.length - 1 - boundary, 1),
            )
            noise = np.cumsum(rng.normal(0, 0.01, self.length))
            cols["stage_progress_gt"] = np.clip(sp, 0, 1).astype(np.float32)
            cols["progress"] = np.clip(sp + noise - noise[0], 0, 1).astype(np.float32)
        return cols

    def iter_frames(self):
        h, w = self.size
        y, x = np.mgrid[0:h, 0:w]
        for t in range(self.length):
            frames = {}
            for k, cam in enumerate(CAMERAS):
                img = np.empty((h, w, 3), dtype=np.uint8)
                img[..., 0] = (x * 3 + 50 * k + 2 * t) % 256
                img[..., 1] = (y * 3 + 3 * t + self.seed) % 256
                img[..., 2] = 80 + 40 * k
                frames[cam] = img
            yield frames


def _episode(
    seed: int, length: int, task: str, size: tuple[int, int], annotated: bool
) -> RobotEpisode:
    return RobotEpisode(seed, length, task, size, annotated)


def robot_plan(
    n_episodes: int = 4,
    lengths: tuple[int, ...] = (36, 28, 44, 32),
    size: tuple[int, int] = (48, 64),
    annotated: bool = True,
    video: VideoOptions = AV1,
    fps: int = 30,
) -> NewDataset:
    """Write plan of a robot-shaped dataset; episodes alternate between the two tasks."""
    probe = RobotEpisode(0, 4, TASKS[0], size, annotated)
    features = {
        k: feature_spec(v, JOINTS if k in ("observation.state", "action") else None)
        for k, v in probe.columns.items()
    }
    for cam in CAMERAS:
        features[f"observation.images.{cam}"] = video_feature_spec(size[0], size[1], fps, video)
    episodes = [
        partial(_episode, i, lengths[i % len(lengths)], TASKS[i % len(TASKS)], size, annotated)
        for i in range(n_episodes)
    ]
    return NewDataset(
        fps=fps,
        features=features,
        episodes=episodes,
        robot_type="agilex_piper_bimanual",
        video=video,
    )


def robot_dataset(root: Path, **kwargs) -> LeRobotDatasetReader:
    """Write a robot-shaped dataset to ``root`` (see :func:`robot_plan`)."""
    return robot_plan(**kwargs).write(root)
