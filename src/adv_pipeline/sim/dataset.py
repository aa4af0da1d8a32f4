"""The demo dataset: episodes of the demo simulator as a LeRobot v2.1 write plan."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adv_pipeline.annotation.records import EpisodeAnnotation
from adv_pipeline.configs import from_params
from adv_pipeline.lerobot import (
    IMAGE_KEY_PREFIX,
    NewDataset,
    VideoOptions,
    feature_spec,
    video_feature_spec,
)
from adv_pipeline.schema import QUALITY

from .config import (
    ACTION_NAMES,
    CAMERA_KEYS,
    ENV_STATE_NAMES,
    PROPRIO_NAMES,
    QUALITIES,
    TASK_TEXT,
    DemoTaskConfig,
)
from .episodes import DemoEpisode, generate_episode, generate_mix

COLUMN_NAMES = {
    "observation.state": PROPRIO_NAMES,
    "observation.environment_state": ENV_STATE_NAMES,
    "action": ACTION_NAMES,
    QUALITY: QUALITIES,
}

# info.json robot_type of datasets recorded in the simulator (closed-loop evaluation
# replays only those)
DEMO_ROBOT_TYPE = "adv_pipeline_demo_bimanual"


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
        feats[IMAGE_KEY_PREFIX + cam] = video_feature_spec(
            config.image_size, config.image_size, config.fps, video
        )
    return feats


@dataclass(frozen=True)
class DemoDatasetConfig:
    """``parameters_demo.yml``'s ``demo`` namespace: what the demo dataset holds.

    Attributes:
        n_episodes: episodes to simulate.
        mix: fraction of episodes of each demonstrator quality (``expert``,
            ``suboptimal``, ``dagger``), normalised if they do not sum to 1.
        seed: seeds the episodes' initial states and demonstrators.
        image_size: side of every square camera image (pixels).
        fps: frames per second.
        task_text: the task of every episode (tasks.jsonl).
        task: extra :class:`~adv_pipeline.sim.DemoTaskConfig` fields, e.g. ``{max_steps: 300}``.
        workers: processes simulating and encoding episodes.
        video: encoder settings of the MP4 files.
    """

    n_episodes: int = 96
    mix: Mapping[str, float] = field(
        default_factory=lambda: {"expert": 0.4, "suboptimal": 0.3, "dagger": 0.3}
    )
    seed: int = 0
    image_size: int = 96
    fps: int = 30
    task_text: str = TASK_TEXT
    task: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 2
    video: VideoOptions = field(default_factory=VideoOptions)

    def task_config(self) -> DemoTaskConfig:
        return from_params(
            DemoTaskConfig,
            {"image_size": self.image_size, "fps": self.fps, **self.task},
            "demo.task",
        )


def demo_dataset_plan(config: DemoDatasetConfig) -> NewDataset:
    """The write plan of a demo dataset of ``config.n_episodes`` with quality fractions
    ``config.mix``."""
    if config.n_episodes < 1:
        raise ValueError(f"demo.n_episodes must be >= 1, got {config.n_episodes}")
    unknown = set(config.mix) - set(QUALITIES)
    if unknown:
        raise ValueError(
            f"demo.mix has unknown qualities {sorted(unknown)}; use {', '.join(QUALITIES)}"
        )
    task = config.task_config()
    episodes = [
        DemoEpisodeSource(task, s, q, config.task_text)
        for s, q in generate_mix(task, config.n_episodes, dict(config.mix), config.seed)
    ]
    return NewDataset(
        fps=task.fps,
        features=demo_features(task, config.video),
        episodes=episodes,
        robot_type=DEMO_ROBOT_TYPE,
        video=config.video,
        workers=config.workers,
    )


def demo_annotations(config: DemoDatasetConfig) -> list[EpisodeAnnotation]:
    """The boundary file of the demo dataset of ``config``: per episode, start 0, end
    T - 1 and the first frame of each later stage, as the simulator's stages put them
    (episodes simulated again, without rendering: about 15 ms each)."""
    task = config.task_config()
    records = []
    for i, (seed, quality) in enumerate(
        generate_mix(task, config.n_episodes, dict(config.mix), config.seed)
    ):
        episode = generate_episode(task, seed, quality)
        edges = episode.stage_edges
        records.append(
            EpisodeAnnotation(i, 0, episode.length - 1, tuple(edges[1:-1]), episode.success)
        )
    return records
