"""Curated BC on the demo: its recording says each episode's demonstrator (``quality``), and
``awbc.curated`` keeps the expert's episodes only."""

from __future__ import annotations

from adv_pipeline.lerobot import VideoOptions
from adv_pipeline.policy.config import DataConfig
from adv_pipeline.policy.data import curated_episodes
from adv_pipeline.sim import QUALITIES
from adv_pipeline.sim.dataset import DemoDatasetConfig, demo_dataset_plan
from adv_pipeline.sim.episodes import generate_mix


def test_curated_bc_keeps_the_demo_experts_episodes(tmp_path):
    config = DemoDatasetConfig(
        n_episodes=4,
        mix={"expert": 0.5, "dagger": 0.5},
        seed=3,
        image_size=32,
        workers=1,
        video=VideoOptions(crf=10, gop=10),
    )
    raw = demo_dataset_plan(config).write(tmp_path / "raw")
    assert raw.info["features"]["quality"]["names"] == list(QUALITIES)
    planned = [q for _, q in generate_mix(config.task_config(), 4, dict(config.mix), 3)]
    episodes = raw.episode_indices.tolist()
    kept = curated_episodes(raw, episodes, DataConfig(keep_column="quality", keep_values=(0,)))
    assert kept == [e for e, q in zip(episodes, planned) if q == "expert"]
    assert len(kept) == 2
