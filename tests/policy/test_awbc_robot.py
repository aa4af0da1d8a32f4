"""Stage 3 on a dataset shaped like a real robot's recording: 14-D state and action, three
480x640 AV1 cameras, two tasks, labelled by Stage 0. The default pipeline trains both
policies on all three cameras, skips the simulator it cannot use, and reports offline
metrics on the held-out episode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adv_pipeline.checkpoints import load_checkpoint
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.policy import load_policy

from ..conftest import doctor_failures, mlflow_runs, stage0_labelled
from ..robot_fixtures import CAMERAS, TASKS, TINY_ESTIMATOR, TINY_POLICY, robot_dataset

TINY = TINY_POLICY


@pytest.fixture(scope="module")
def robot_480(tmp_path_factory):
    """4 annotated episodes (28..44 frames), three 480x640 AV1 cameras."""
    return robot_dataset(tmp_path_factory.mktemp("robot480") / "raw", size=(480, 640)).root


def test_awbc_pipeline_on_a_real_robot_shaped_dataset(robot_480, session_run, kedro_project):
    labeled = stage0_labelled(session_run, robot_480, kedro_project)
    assert doctor_failures(robot_480) == [] and doctor_failures(labeled) == []
    session_run("awbc", awbc_dataset_path=str(labeled), awbc=TINY)

    reports = kedro_project / "data" / "08_reporting"
    closed = pd.read_csv(reports / "awbc_eval.csv")
    assert closed.empty  # not recorded in the simulator: no rollouts
    table = pd.read_csv(reports / "awbc_offline.csv", dtype={"dimension": str})
    conditions = {
        "awbc_positive", "awbc_negative", "awbc_unconditioned", "awbc_labelled", "bc",
        "positive_vs_negative",
    }  # fmt: skip
    assert set(table["condition"]) == conditions
    mse = table[(table["metric"] == "mse") & (table["condition"] == "awbc_positive")]
    assert sorted(mse["dimension"]) == sorted(["all", *map(str, range(14))])  # 14-D actions
    assert np.isfinite(table["value"]).all() and (table["value"] >= 0).all()
    assert (reports / "awbc_offline.png").stat().st_size > 10_000

    (run,) = [r for r in mlflow_runs(kedro_project) if "awbc" in r.info.run_name]
    metrics = run.data.metrics
    assert metrics["awbc_offline_metrics.held_out_episodes"] == 1
    assert metrics["awbc_offline_metrics.held_out_frames"] > 5
    assert "awbc_offline_metrics.awbc_positive.mse_normalized" in metrics
    assert "awbc_offline_metrics.positive_vs_negative.mean_abs_shift" in metrics

    ckpt = load_checkpoint(kedro_project / "data" / "06_models" / "awbc")
    policy = load_policy(ckpt)
    assert policy.camera_keys == tuple(f"observation.images.{c}" for c in CAMERAS)
    assert policy.default_prompt == f"{TASKS[-1]}, Advantage: positive"
    ds = LeRobotDatasetReader(labeled)
    (held,) = ckpt.metadata["val_episodes"]
    frames = ds.get_frames(held, [0])
    state = ds.read_episode(held, ["observation.state"])["observation.state"][0]
    chunk = policy.act({"images": {k: v[0] for k, v in frames.items()}, "state": state})
    stats = policy.assets.action_stats
    assert chunk.shape == (4, 14) and (chunk >= stats.min).all() and (chunk <= stats.max).all()
    assert np.abs(chunk).max() > 0  # in joint units, not a clipped [-1, 1] box


FEATURES = "observation.image_features"


def test_policy_on_stage2_image_features_of_a_real_robot_shaped_dataset(
    robot_480, session_run, kedro_project
):
    """The default seeing path on a user's recording: Stage 1 (small_cnn) on the 480x640
    AV1 cameras, Stage 2 writes each frame's camera tokens and the encoder, and the
    default policy (state_key [observation.state, observation.image_features], no CNN of
    its own) trains on them and acts from what the robot gives: 14-D joints and the three
    full-resolution frames."""
    labeled = stage0_labelled(session_run, robot_480, kedro_project)
    estimator = TINY_ESTIMATOR
    session_run("estimator", gt_labeled_dataset_path=str(labeled), estimator=estimator)
    estimated, awbc_data = kedro_project / "estimated", kedro_project / "awbc"
    session_run(
        "estimation",
        target_dataset_path=str(robot_480),
        estimated_dataset_path=str(estimated),
        awbc_dataset_path=str(awbc_data),
        estimator=estimator,
        estimation={"batch_size": 16},  # image_features: its default column
    )
    for root in (estimated, awbc_data):
        assert doctor_failures(root) == []
        ds = LeRobotDatasetReader(root)
        assert ds.features[FEATURES]["shape"] == [3 * 16]  # a 16-wide token per camera
        assert list(ds.encoders()) == [FEATURES]

    seeing = {**TINY, "data": {k: v for k, v in TINY["data"].items() if k != "state_key"}}
    seeing["data"]["cameras"] = []  # the defaults: state_key = [observation.state, FEATURES]
    session_run("awbc", awbc_dataset_path=str(awbc_data), awbc=seeing)
    policy = load_policy(load_checkpoint(kedro_project / "data" / "06_models" / "awbc"))
    assert policy.state_keys == ("observation.state", FEATURES) and policy.camera_keys == ()
    assert policy.observed_state_keys == ("observation.state",)
    assert policy.observed_state_dim == 14 and list(policy.input_cameras) == list(CAMERAS)

    # live full-resolution frames give the column Stage 2 wrote (same resize), and a chunk
    ds = LeRobotDatasetReader(awbc_data)
    ep = 1
    frames = ds.get_frames(ep, [0, 7])
    assert frames[f"observation.images.{CAMERAS[0]}"].shape == (2, 480, 640, 3)
    cols = ds.read_episode(ep, ["observation.state", FEATURES])
    full = policy.full_state(frames, cols["observation.state"][[0, 7]])
    np.testing.assert_allclose(full[:, 14:], cols[FEATURES][[0, 7]], atol=1e-4)
    chunk = policy.act(
        {"images": {k: v[0] for k, v in frames.items()}, "state": cols["observation.state"][0]}
    )
    assert chunk.shape == (4, 14) and np.isfinite(chunk).all()
