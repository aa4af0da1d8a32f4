"""A policy that sees the cameras through Stage 2's image features: trained on the
column, it carries the encoder in its checkpoints and computes the features from live
images (rollouts, serving), equal to the column on the dataset's own frames."""

from __future__ import annotations

import dataclasses

import numpy as np

from adv_pipeline.estimation.estimate import EstimationConfig, estimate
from adv_pipeline.estimator.train import train
from adv_pipeline.policy import DataConfig, batched_rollouts, load_policy, train_policy
from adv_pipeline.policy.serve import PolicyServer
from adv_pipeline.sim import DemoTask, DemoTaskConfig
from adv_pipeline.worlds.demo import DemoWorld

from ..estimator.test_estimator import tiny_config
from .conftest import tiny_policy_config, tiny_train_config

FEATURES = "observation.image_features"


def test_policy_on_image_features_computes_them_from_live_images(labeled_dataset, tmp_path):
    est_config = tiny_config(steps=3)
    ckpt = train(labeled_dataset.root, tmp_path / "estimator", est_config)
    data = estimate(
        labeled_dataset,
        ckpt,
        tmp_path / "estimated",
        EstimationConfig(interval=5, batch_size=8, image_features=FEATURES),
    )
    base = tiny_policy_config()
    pc = dataclasses.replace(
        base,
        data=DataConfig(
            **{
                **{f.name: getattr(base.data, f.name) for f in dataclasses.fields(DataConfig)},
                "cameras": (),
                "state_key": ("observation.state", FEATURES),
            }
        ),
    )
    result = train_policy(data, pc, tiny_train_config(num_workers=0), tmp_path / "policy")
    saved = result.checkpoint.path / "encoders" / FEATURES / str(ckpt.step) / "model.safetensors"
    assert saved.read_bytes() == (ckpt.path / "model.safetensors").read_bytes()

    policy = load_policy(result.checkpoint)
    k, w = len(est_config.data.cameras), est_config.model.width
    assert policy.observed_state_keys == ("observation.state",)
    assert policy.assets.state_dims == (6, k * w) and policy.observed_state_dim == 6
    assert list(policy.input_cameras) == ["top_head", "hand_left"]  # the encoder's cameras

    # on the dataset's frames (at the encoder's size) the live features equal the column
    ep = 1
    cols = data.read_episode(ep, ["observation.state", FEATURES])
    enc = policy.encoders[FEATURES]
    frames = list(data.iter_frames(ep, cameras=list(enc.cameras), size=enc.size))
    images = {c: np.stack([f[key] for f in frames]) for key, c in zip(frames[0], enc.cameras)}
    full = policy.full_state(images, cols["observation.state"])
    np.testing.assert_allclose(full[:, 6:], cols[FEATURES], atol=1e-5)
    np.testing.assert_array_equal(full[:, :6], cols["observation.state"])
    stored = np.concatenate([cols["observation.state"], cols[FEATURES]], 1)
    policy.reseed(0)
    a = policy.act_batch(images, stored, complete_states=True)
    policy.reseed(0)
    b = policy.act_batch(images, cols["observation.state"])
    np.testing.assert_allclose(a, b, atol=1e-4)

    # closed loop: the simulator gives proprioception and rendered cameras only
    task = DemoTaskConfig(image_size=32)
    obs = DemoTask(task).reset(3)
    assert policy.act(obs).shape == (policy.horizon, 6)
    run = batched_rollouts(policy, [1, 2], DemoWorld(task), replan_every=4, max_steps=8)
    assert run.steps.tolist() == [8, 8]
    # serving asks for what a robot has: its state and the encoder's cameras
    meta = PolicyServer(policy).metadata
    assert meta["state_dim"] == 6 and meta["state_keys"] == ["observation.state"]
    assert meta["cameras"] == ["top_head", "hand_left"]
