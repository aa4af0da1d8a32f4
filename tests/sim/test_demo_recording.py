"""The demo's recording says each episode's outcome (``success``) and demonstrator
(``quality``): Stage 0's returns source reads the one without an annotation pass, and
``awbc.curated`` keeps the expert's episodes by the other."""

from __future__ import annotations

import numpy as np

from adv_pipeline.labeling import LabelingConfig, label_frames, read_label_inputs
from adv_pipeline.lerobot import VideoOptions
from adv_pipeline.policy.config import DataConfig
from adv_pipeline.policy.data import curated_episodes
from adv_pipeline.sim import QUALITIES
from adv_pipeline.sim.dataset import DemoDatasetConfig, demo_dataset_plan
from adv_pipeline.sim.episodes import generate_mix


def test_the_demo_recording_feeds_returns_and_curated_bc(tmp_path):
    config = DemoDatasetConfig(
        n_episodes=4,
        mix={"expert": 0.5, "dagger": 0.5},
        seed=3,
        image_size=32,
        workers=1,
        video=VideoOptions(crf=10, gop=10),
    )
    raw = demo_dataset_plan(config).write(tmp_path / "raw")

    assert (raw.read_columns(["success"])["success"] == 1).all()  # every demo episode succeeds
    returns = LabelingConfig(advantage_source="returns", chunk_size=10)
    labels = label_frames(read_label_inputs(raw, returns), returns).labels
    assert set(np.unique(labels).tolist()) == {0, 1}

    assert raw.info["features"]["quality"]["names"] == list(QUALITIES)
    planned = [q for _, q in generate_mix(config.task_config(), 4, dict(config.mix), 3)]
    episodes = raw.episode_indices.tolist()
    kept = curated_episodes(raw, episodes, DataConfig(keep_column="quality", keep_values=(0,)))
    assert kept == [e for e, q in zip(episodes, planned) if q == "expert"]
    assert len(kept) == 2
