"""The advantage prompt steers the policy: trained where positive-labelled frames act one
way and negative-labelled frames the other, the positive and negative prompts give
opposite actions on the same observation."""

from __future__ import annotations

import dataclasses

import numpy as np

from adv_pipeline.lerobot import DerivedDataset
from adv_pipeline.policy import load_policy, train_policy
from adv_pipeline.sim import DemoTask, DemoTaskConfig

from .conftest import TASKS, tiny_policy_config, tiny_train_config


def test_positive_and_negative_prompts_give_opposite_actions(labeled_dataset, tmp_path):
    n = labeled_dataset.num_frames
    labels = (np.arange(n) // 16) % 2  # runs of 16 frames: an action chunk sees one label
    action = labeled_dataset.read_columns(["action"])["action"]
    sign = np.where(labels == 1, 0.5, -0.5)[:, None]
    columns = {"task_index": labels, "action": (sign * np.ones_like(action)).astype(np.float32)}
    steered = DerivedDataset(labeled_dataset, columns, tasks=TASKS).write(tmp_path / "steered")
    config = tiny_policy_config(head="mse")
    # every frame of all 3 episodes, every epoch: the labels' runs are learnt in 150 steps
    data = dataclasses.replace(config.data, val_fraction=0.0, frames_per_episode=None)
    result = train_policy(
        steered,
        dataclasses.replace(config, data=data),
        tiny_train_config(steps=150, save_interval=150, lr=1e-2),
        tmp_path / "awbc",
    )
    policy = load_policy(result.checkpoint)
    obs = DemoTask(DemoTaskConfig(image_size=32)).reset(3)
    positive, negative = policy.act(obs, TASKS[1]).mean(), policy.act(obs, TASKS[0]).mean()
    assert positive > 0.2 and negative < -0.2 and positive - negative > 0.5, (positive, negative)
