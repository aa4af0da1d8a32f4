"""Tiny labelled demo datasets and tiny policy configs for the policy tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from adv_pipeline.lerobot import DerivedDataset, LeRobotDatasetReader, VideoOptions
from adv_pipeline.policy import DataConfig, ModelConfig, PolicyConfig, TokenizerConfig, TrainConfig
from adv_pipeline.sim import TASK_TEXT
from adv_pipeline.sim.dataset import DemoDatasetConfig, demo_dataset_plan

REPO = Path(__file__).resolve().parents[2]
TASKS = [f"{TASK_TEXT}, Advantage: negative", f"{TASK_TEXT}, Advantage: positive"]


@pytest.fixture(scope="session")
def labeled_dataset(tmp_path_factory) -> LeRobotDatasetReader:
    """3 demo episodes (32x32 cameras) with random binary advantage labels."""
    root = tmp_path_factory.mktemp("policy_data")
    config = DemoDatasetConfig(
        n_episodes=3,
        mix={"expert": 1.0},
        seed=1,
        image_size=32,
        workers=1,
        video=VideoOptions(crf=10, gop=10),
    )
    raw = demo_dataset_plan(config).write(root / "raw")
    labels = np.random.default_rng(0).integers(0, 2, raw.num_frames)
    return DerivedDataset(raw, {"task_index": labels}, tasks=TASKS).write(root / "labeled")


def tiny_policy_config(prompt_from_task: bool = True, head: str = "flow") -> PolicyConfig:
    return PolicyConfig(
        model=ModelConfig(
            head=head,
            conv_channels=(8,),
            image_features=16,
            text_dim=16,
            text_heads=2,
            width=32,
            depth=1,
            flow_steps=3,
        ),
        data=DataConfig(
            cameras=("top_head", "hand_left"),
            state_key=("observation.state",),
            image_size=16,
            horizon=4,
            prompt_from_task=prompt_from_task,
            prompt_dropout=0.3,
        ),
        tokenizer=TokenizerConfig(vocab_size=257, max_len=16),
    )


def tiny_train_config(**kw) -> TrainConfig:
    base = TrainConfig(
        steps=6,
        batch_size=8,
        lr=3e-3,
        warmup_steps=2,
        save_interval=3,
        log_interval=2,
        progress_bar=False,
        seed=3,
    )
    return dataclasses.replace(base, **kw)


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    return tmp_path / "runs"
