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

from ..conftest import doctor_failures, mlflow_runs
from ..robot_fixtures import CAMERAS, TASKS, robot_dataset

TINY = {
    "data": {"cameras": list(CAMERAS), "state_key": ["observation.state"], "image_size": 32,
             "horizon": 4, "val_fraction": 0.25},
    "model": {"conv_channels": [8], "image_features": 16, "text_dim": 16, "width": 32,
              "depth": 1, "flow_steps": 2},
    "train": {"steps": 4, "batch_size": 8, "warmup_steps": 1, "save_interval": 4,
              "log_interval": 2, "progress_bar": False},
    "eval": {"val_frame_stride": 3},
}  # fmt: skip


@pytest.fixture(scope="module")
def robot_480(tmp_path_factory):
    """4 annotated episodes (28..44 frames), three 480x640 AV1 cameras."""
    return robot_dataset(tmp_path_factory.mktemp("robot480") / "raw", size=(480, 640)).root


def test_awbc_pipeline_on_a_real_robot_shaped_dataset(robot_480, session_run, kedro_project):
    labeled = kedro_project / "labeled"
    session_run(
        "gt_labeling",
        raw_dataset_path=str(robot_480),
        gt_labeled_dataset_path=str(labeled),
        gt_labeling={"stage_nums": 2},
    )
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
