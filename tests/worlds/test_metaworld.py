"""Meta-World as the second world: a reproducible recording, the experts' phases through
the annotation pipeline, the adapter, the failed-episode rule of Stage 0, bad input, and
the whole chain through the real Kedro pipelines (tiny)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from adv_pipeline.labeling import LabelingConfig, assign_labels, group_cuts, label_groups
from adv_pipeline.labeling.labels import LabelInputs
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.policy import EvalConfig, batched_rollouts
from adv_pipeline.worlds import EvalTask, WorldError, check_state, make_world, register_world
from adv_pipeline.worlds.metaworld import (
    STATE_NAMES,
    MetaWorldConfig,
    check_tasks,
    phase_boundary,
    record_episode,
    recording_plan,
)

from ..conftest import doctor_failures


def test_the_recording_is_the_same_for_the_same_seed():
    config = MetaWorldConfig(max_steps=60)
    a = record_episode("push-v3", "push", 1_000_003, "dagger", config, (0, 1, 3))
    b = record_episode("push-v3", "push", 1_000_003, "dagger", config, (0, 1, 3))
    c = record_episode("push-v3", "push", 1_000_003, "dagger", config, (1, 1, 3))
    for key in a.columns:
        np.testing.assert_array_equal(a.columns[key], b.columns[key])
    assert a.columns["observation.state"].shape[1] == len(STATE_NAMES) == 39
    assert not np.array_equal(a.columns["action"], c.columns["action"])  # noise seed differs


def test_qualities_and_expert_success():
    config = MetaWorldConfig(episodes_per_task=10, max_steps=200)
    assert config.qualities() == ["expert"] * 4 + [
        "noisy",
        "noisy",
        "detour",
        "detour",
        "dagger",
        "dagger",
    ]  # shares rounded half to even, the remainder to the expert
    assert MetaWorldConfig().qualities().count("noisy") == 25
    expert = record_episode("pick-place-v3", "pick", 1_000_000, "expert", config, (0, 0, 0))
    assert expert.success and expert.length < 100
    assert expert.columns["next.success"][-1] and not expert.columns["next.success"][:-1].any()
    dagger = record_episode("pick-place-v3", "pick", 1_000_001, "dagger", config, (0, 0, 1))
    interv = dagger.columns["intervention"]
    assert set(np.unique(interv)) <= {0, 1} and dagger.columns["quality"][0] == 3


def test_the_adapter_rolls_the_expert_out_to_success():
    world = make_world("metaworld", {"metaworld": {"tasks": ["reach-v3"]}})
    task = world.tasks(["reach"])[0]
    env = world.make_env(task.name)
    env.reset(10_000)
    first = env.state(["observation.state"])
    while not env.success and env.steps < world.max_steps(task.name):
        env.step(env.expert_action())
    assert env.success and env.steps < 100
    env.reset(10_000)  # the same start state again
    np.testing.assert_array_equal(env.state(["observation.state"]), first)
    with pytest.raises(WorldError, match="observation.state"):
        env.state(["observation.environment_state"])
    with pytest.raises(WorldError, match="adapter's state.*has 3 values, the policy reads 39"):
        check_state("metaworld", "reach-v3", ["observation.state"], np.zeros(3), 39, {})


class _WrongWidth:
    """A user's world whose adapter returns a state of the wrong width."""

    name, robot_type = "wrong_width", "wrong_width_robot"

    def tasks(self, texts):
        return [EvalTask("only", texts[0])]

    def make_env(self, task):
        env = make_world("demo", {"eval": EvalConfig(image_size=32)}).make_env(task)
        env.state = lambda keys: np.zeros(5, np.float32)
        return env

    def state_dims(self, task):
        return {"observation.state": 5}

    def max_steps(self, task):
        return 10


def test_an_adapter_with_the_wrong_state_width_is_refused_before_a_rollout():
    from ..policy.test_policy import ScriptedPolicy

    register_world("wrong_width", lambda params: _WrongWidth())
    world = make_world("wrong_width", {})
    with pytest.raises(WorldError, match="'only'.*has 5 values, the policy reads 12"):
        batched_rollouts(ScriptedPolicy(True), [1, 2], world)


def test_phase_boundary_from_the_object_motion():
    state = np.zeros((10, 39))
    state[:, 0] = np.linspace(-0.2, 0.0, 10)  # the hand reaches the object at x = 0
    assert phase_boundary(state, 0.02) == 9  # never moved: after the closest approach
    state[6:, 4] = 0.05  # the object moves from frame 6
    assert phase_boundary(state, 0.02) == 6


def test_bad_tasks_are_refused_before_any_work():
    with pytest.raises(WorldError, match="no Meta-World v3 task 'pick-plase-v3'; did you mean"):
        check_tasks(["pick-plase-v3"])
    with pytest.raises(WorldError, match="unknown-v3"):
        recording_plan(MetaWorldConfig(tasks=("unknown-v3",)))
    with pytest.raises(ValueError, match="unknown qualities"):
        MetaWorldConfig(mix={"expert": 1.0, "lazy": 1.0})
    world = make_world("metaworld", {"metaworld": {}})
    with pytest.raises(WorldError, match="no task has the text 'fold the cloth'"):
        world.tasks(["fold the cloth"])
    with pytest.raises(WorldError, match="no world named 'metaword'; did you mean 'metaworld'"):
        make_world("metaword", {})


def test_failed_episodes_are_not_positive_because_time_passed():
    # two episodes of 4 frames, the second failed: its progress rises as fast, yet its
    # frames go to the worst bin and leave the threshold to the successful episode
    progress_adv = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5])
    failed = np.repeat([False, True], 4)
    inputs = LabelInputs(
        np.arange(2), np.array([0, 4, 8]), progress_adv, None, None, np.zeros(8, np.int64),
        ("t",), failed,
    )  # fmt: skip
    config = LabelingConfig(threshold=50)
    stage = np.zeros(8, np.int64)
    groups = label_groups(inputs, stage, config)
    cuts = group_cuts(progress_adv, groups, config)
    assert cuts[0][0] == pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.4], 50))
    labels = assign_labels(progress_adv, groups, cuts, config)
    assert labels.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    seed_rule = LabelingConfig(threshold=50, failed_episodes="progress")
    no_rule = label_groups(dataclasses.replace(inputs, failed=None), stage, seed_rule)
    cuts = group_cuts(progress_adv, no_rule, seed_rule)
    labels = assign_labels(progress_adv, no_rule, cuts, seed_rule)
    assert labels[4:].tolist() == [1, 1, 1, 1]


@pytest.mark.slow
def test_the_whole_chain_on_another_task(session_run, kedro_project):
    """`kedro run --env metaworld --pipelines metaworld` (in this process) on a task other
    than the defaults, few episodes and steps: recording, annotation, Stage 0-3, closed
    loop."""
    session_run(
        "metaworld",
        env="metaworld",
        metaworld={"tasks": ["reach-v3"], "episodes_per_task": 8, "max_steps": 60},
        estimator_steps=20,
        awbc={"train": {"steps": 10}, "eval": {"n_episodes": 3}},
    )
    data = kedro_project / "data"
    raw = LeRobotDatasetReader(data / "01_raw/metaworld/demo")
    assert raw.tasks == ["reach"] and raw.num_episodes == 8 and not raw.video_keys
    assert doctor_failures(raw.root) == []
    records = [json.loads(x) for x in (data / "01_raw/metaworld/demo_annotations.jsonl").open()]
    annotated = LeRobotDatasetReader(data / "02_intermediate/metaworld/annotated")
    sp = annotated.read_columns(["stage_progress_gt"])["stage_progress_gt"]
    # the boundary file's phase boundary is where stage progress reaches 1/2
    first = annotated.read_episode(0, ["stage_progress_gt"])["stage_progress_gt"]
    assert int(np.argmax(first >= 0.5)) == records[0]["boundaries"][0]
    assert sp.min() >= 0 and sp.max() <= 1
    # Stage 2 on the state-only estimator: values per frame, not a constant
    estimated = LeRobotDatasetReader(data / "07_model_output/metaworld/estimated_KAI0_20")
    values = estimated.read_columns(["absolute_value"])["absolute_value"]
    assert len(values) == annotated.num_frames and np.std(values) > 0
    table = pd.read_csv(data / "08_reporting/metaworld/awbc_eval.csv")
    assert set(table["condition"]) == {
        "awbc_positive", "awbc_negative", "bc", "awbc_guided_w2", "bc_curated", "expert",
    }  # fmt: skip
    assert (table["task"] == "reach-v3").all() and (table["n_episodes"] == 3).all()
    expert = table[table["condition"] == "expert"].iloc[0]
    assert expert["success_rate"] == 1.0


def test_a_world_that_cannot_give_the_policys_state_is_refused_before_training(tmp_path):
    from adv_pipeline.checkpoints import Runs
    from adv_pipeline.pipelines.awbc.nodes import train_awbc_policy

    from ..conftest import write_column_dataset

    rng = np.random.default_rng(0)
    episodes = [
        {
            "observation.state": rng.normal(size=(20, 5)).astype(np.float32),
            "action": rng.normal(size=(20, 4)).astype(np.float32),
        }
        for _ in range(4)
    ]
    dataset = write_column_dataset(tmp_path / "five", episodes)
    params = {"data": {"state_key": "observation.state"}, "eval": {"env": "metaworld"}}
    runs = Runs(tmp_path / "runs", None)
    with pytest.raises(WorldError, match="'observation.state' has 39 values, the training"):
        train_awbc_policy.preflight(dataset, runs, params, False)
    params["data"]["state_key"] = ["action"]
    with pytest.raises(WorldError, match="gives no state column 'action'"):
        train_awbc_policy.preflight(dataset, runs, params, False)
    assert not (tmp_path / "runs").exists()


def test_the_camera_option_records_a_video_and_renders_in_the_closed_loop(tmp_path):
    config = MetaWorldConfig(
        tasks=("push-v3",), episodes_per_task=1, camera="corner2", image_size=48, workers=1
    )
    dataset = recording_plan(config).write(tmp_path / "cam")
    assert dataset.video_keys == ["observation.images.corner2"]
    assert doctor_failures(dataset.root) == []
    n = dataset.episodes[0].length
    frames = dataset.get_frames(0, [0, n - 1])["observation.images.corner2"]
    assert frames.shape == (2, 48, 48, 3) and np.abs(frames[0] - frames[1].astype(int)).mean() > 1
    # the sky-grey floor of corner2 is at the top once the image is right side up: MuJoCo's
    # buffer comes bottom row first
    assert frames[0, :8].std() < frames[0, -16:].std()
    world = make_world("metaworld", {"metaworld": dataclasses.asdict(config)})
    env = world.make_env("push-v3")
    env.reset(10_000)
    image = env.images(["corner2"])["corner2"]
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    with pytest.raises(WorldError, match="renders the camera of metaworld.camera"):
        env.images(["topview"])
    world.close()
