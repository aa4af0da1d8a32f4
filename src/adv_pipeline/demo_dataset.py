"""The demo dataset: episodes of the demo simulator as a LeRobot v2.1 write plan."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from adv_pipeline.lerobot import NewDataset, VideoOptions, feature_spec, video_feature_spec
from adv_pipeline.lerobot.writer import IMAGE_KEY_PREFIX
from adv_pipeline.sim import (
    ACTION_NAMES,
    CAMERA_KEYS,
    STATE_NAMES,
    DemoEpisode,
    DemoTaskConfig,
    generate_episode,
    generate_mix,
)

COLUMN_NAMES = {"observation.state": STATE_NAMES, "action": ACTION_NAMES}


@dataclass(frozen=True)
class _TaskEpisode:
    """A simulated episode with its task text, as the LeRobot writer wants it."""

    episode: DemoEpisode
    task: str

    @property
    def length(self) -> int:
        return self.episode.length

    @property
    def columns(self) -> Mapping[str, np.ndarray]:
        return self.episode.columns

    def iter_frames(self) -> Iterator[dict[str, np.ndarray]]:
        return self.episode.iter_frames()


@dataclass(frozen=True)
class DemoEpisodeSource:
    """Picklable recipe of one demo episode (runs in a writer worker process)."""

    config: DemoTaskConfig
    seed: int
    quality: str
    task: str

    def __call__(self) -> _TaskEpisode:
        return _TaskEpisode(generate_episode(self.config, self.seed, self.quality), self.task)


def demo_features(config: DemoTaskConfig, video: VideoOptions) -> dict[str, dict]:
    """info.json features of the demo dataset (columns of a 2-frame probe episode)."""
    probe = generate_episode(config, 0, "expert")
    feats = {k: feature_spec(v, COLUMN_NAMES.get(k)) for k, v in probe.columns.items()}
    for cam in CAMERA_KEYS:
        feats[IMAGE_KEY_PREFIX + cam] = video_feature_spec(config.image_size, config.image_size, config.fps, video)
    return feats


def demo_dataset_plan(
    config: DemoTaskConfig,
    n_episodes: int,
    mix: Mapping[str, float],
    seed: int,
    task: str,
    video: VideoOptions,
    workers: int = 1,
) -> NewDataset:
    """The write plan of a demo dataset of ``n_episodes`` with quality fractions ``mix``."""
    if n_episodes < 1:
        raise ValueError(f"demo.n_episodes must be >= 1, got {n_episodes}")
    unknown = set(mix) - {"expert", "suboptimal", "dagger"}
    if unknown:
        raise ValueError(f"demo.mix has unknown qualities {sorted(unknown)}; use expert, suboptimal, dagger")
    episodes = [DemoEpisodeSource(config, s, q, task) for s, q in generate_mix(config, n_episodes, dict(mix), seed)]
    return NewDataset(
        fps=config.fps,
        features=demo_features(config, video),
        episodes=episodes,
        robot_type="adv_pipeline_demo_bimanual",
        video=video,
        workers=workers,
    )
