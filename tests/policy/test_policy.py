"""The AWBC policy: prompts, training (sharded, resumed), checkpoints, inference, evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from adv_pipeline.checkpoints import list_steps
from adv_pipeline.figures import results_figure
from adv_pipeline.policy import (
    EvalConfig,
    HashTokenizer,
    TokenizerConfig,
    awbc_conditions,
    batched_rollouts,
    evaluate_conditions,
    load_policy,
    load_training_data,
    results_metrics,
    results_table,
    sample_batch,
    train_policy,
    wilson_interval,
)
from adv_pipeline.policy.data import chunk_indices
from adv_pipeline.sim import ACTION_DIM, TASK_TEXT, DemoTask, DemoTaskConfig, expert_action

from .conftest import TASKS, tiny_policy_config, tiny_train_config


def weights(result) -> dict[str, np.ndarray]:
    return result.checkpoint.load_weights()


def assert_same_weights(a: dict, b: dict, **tol) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], err_msg=k, **tol)


# ---------------------------------------------------------------------------- prompts, data
def test_tokenizer_runs_on_unseen_words_and_separates_labels():
    tok = HashTokenizer(TokenizerConfig(vocab_size=4096, max_len=16))
    ids, mask = tok.encode_batch(["zyxwv qqq unheard-of wörds!!", TASKS[0], TASKS[1]])
    assert (
        ids.shape == (3, 16)
        and ids.dtype == np.int32
        and (ids[mask] > 0).all()
        and (ids < 4096).all()
    )
    assert not np.array_equal(ids[1], ids[2])
    assert np.array_equal(tok.encode("A, b")[0], tok.encode("a , B")[0])  # stable, case-insensitive


def test_prompt_of_each_sample_is_its_task(labeled_dataset):
    tok = HashTokenizer(tiny_policy_config().tokenizer)
    task_index = labeled_dataset.read_columns(["task_index"])["task_index"]
    awbc = load_training_data(labeled_dataset, tiny_policy_config(True).data, tok)
    texts = np.array(awbc.prompts.texts)[awbc.prompt_index]
    assert list(texts) == [labeled_dataset.tasks[i] for i in task_index]
    bc = load_training_data(labeled_dataset, tiny_policy_config(False).data, tok)
    assert set(np.array(bc.prompts.texts)[bc.prompt_index]) == {TASK_TEXT}
    # tokens of a batch: the frame's prompt, or its plain task text when dropped
    batch = sample_batch(awbc, step=5, batch_size=64, seed=0, prompt_dropout=0.3)
    allowed = {tuple(tok.encode(t)[0]) for t in [*TASKS, TASK_TEXT]}
    assert {tuple(r) for r in batch["tokens"]} <= allowed
    assert any(tuple(r) == tuple(tok.encode(TASK_TEXT)[0]) for r in batch["tokens"])
    nodrop = sample_batch(awbc, step=5, batch_size=64, seed=0, prompt_dropout=0.0)
    assert np.array_equal(nodrop["images"], batch["images"])


def test_too_long_training_prompt_is_an_error(labeled_dataset):
    short = HashTokenizer(TokenizerConfig(vocab_size=257, max_len=5))
    with pytest.raises(ValueError, match="max_len"):
        load_training_data(labeled_dataset, tiny_policy_config().data, short)


def test_action_chunks_stay_inside_episodes():
    idx, mask = chunk_indices(np.array([0, 3, 5]), horizon=3)
    assert idx.tolist() == [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]]


def test_training_data_shapes_and_normalisation(labeled_dataset):
    data = load_training_data(
        labeled_dataset, tiny_policy_config().data, HashTokenizer(tiny_policy_config().tokenizer)
    )
    n = labeled_dataset.num_frames
    assert data.images.shape == (n, 2, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.actions.shape == (n, 4, 6) and data.states.shape == (n, 12)
    raw = labeled_dataset.read_columns(["action"])["action"]
    np.testing.assert_allclose(data.action_stats.unnormalize(data.actions[:, 0]), raw, atol=1e-5)


# ---------------------------------------------------------------------------- training
def test_resume_equals_uninterrupted_run(labeled_dataset, run_root):
    pc, tc = tiny_policy_config(), tiny_train_config()
    full = train_policy(labeled_dataset, pc, tc, run_root / "full")
    half = train_policy(labeled_dataset, pc, tc, run_root / "split", stop_at=4)
    assert half.checkpoint.step == 4 and list_steps(run_root / "split") == [3, 4]
    resumed = train_policy(labeled_dataset, pc, tc, run_root / "split")
    assert resumed.start_step == 4 and resumed.checkpoint.step == 6
    assert_same_weights(weights(full), weights(resumed), rtol=0, atol=0)
    assert resumed.metrics == full.metrics
    assert [e["step"] for e in full.metrics["loss"]] == [2, 4, 6]
    again = train_policy(labeled_dataset, pc, tc, run_root / "full")  # finished: nothing to do
    assert again.checkpoint.step == 6 and again.start_step == 6


_TWO_DEVICE_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax
    assert jax.device_count() == 2, jax.devices()
    from adv_pipeline.lerobot import LeRobotDatasetReader
    from adv_pipeline.policy import train_policy
    sys.path.insert(0, sys.argv[3])
    from tests.policy.conftest import tiny_policy_config, tiny_train_config
    ds = LeRobotDatasetReader(sys.argv[1])
    train_policy(ds, tiny_policy_config(), tiny_train_config(), sys.argv[2])
    """
)


def test_two_devices_match_one(labeled_dataset, run_root):
    one = train_policy(labeled_dataset, tiny_policy_config(), tiny_train_config(), run_root / "one")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _TWO_DEVICE_SCRIPT,
            str(labeled_dataset.root),
            str(run_root / "two"),
            repo,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from adv_pipeline.checkpoints import load_checkpoint

    assert_same_weights(
        one.checkpoint.load_weights(),
        load_checkpoint(run_root / "two").load_weights(),
        rtol=1e-4,
        atol=1e-6,
    )


# ---------------------------------------------------------------------------- inference
def test_checkpoint_round_trip_and_unseen_prompt(labeled_dataset, run_root):
    result = train_policy(
        labeled_dataset, tiny_policy_config(), tiny_train_config(), run_root / "rt"
    )
    ckpt = result.checkpoint
    for name in (
        "model.safetensors",
        "optimizer.safetensors",
        "policy.json",
        "train_config.json",
        "metadata.json",
    ):
        assert (ckpt.path / name).is_file(), name
    assert json.loads((ckpt.path / "policy.json").read_text())["tasks"] == TASKS
    a, b = load_policy(ckpt, seed=7), load_policy(str(ckpt.path), seed=7)
    assert a.default_prompt == TASKS[-1]
    obs = DemoTask(DemoTaskConfig(image_size=32)).reset(123)
    act_a, act_b = a.act(obs), b.act(obs)
    assert act_a.shape == (4, 6) and np.isfinite(act_a).all() and np.abs(act_a).max() <= 1
    np.testing.assert_array_equal(act_a, act_b)
    unseen = a.act(
        obs, prompt="juggle the purple elephants, Advantage: enormous", guidance_scale=2.0
    )
    assert unseen.shape == (4, 6) and np.isfinite(unseen).all()
    batch = a.act_batch(
        {
            "top_head": np.stack([obs.images["top_head"]] * 3),
            "observation.images.hand_left": np.stack([obs.images["hand_left"]] * 3),
        },
        np.stack([obs.state] * 3),
        [TASKS[0], TASKS[1], TASK_TEXT],
    )
    assert batch.shape == (3, 4, 6)


def test_mse_head_learns_the_action_chunks(labeled_dataset, run_root):
    result = train_policy(
        labeled_dataset,
        tiny_policy_config(head="mse"),
        tiny_train_config(steps=80, save_interval=80, log_interval=10, lr=1e-2),
        run_root / "mse",
    )
    losses = [e["value"] for e in result.metrics["loss"]]
    assert losses[-1] < 0.5 * losses[0], losses  # it learns, not only runs
    policy = load_policy(result.checkpoint)
    obs = DemoTask(DemoTaskConfig(image_size=32)).reset(1)
    np.testing.assert_array_equal(policy.act(obs), policy.act(obs))  # deterministic head


# ---------------------------------------------------------------------------- evaluation
def test_wilson_interval_hand_computed():
    # 8 / 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416,
    # half 1.96 * sqrt(0.016 + 0.009604) / 1.38416
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 50)  # upper = z^2 / (n + z^2)
    assert lo == 0.0 and hi == pytest.approx(3.8415 / 53.8415, abs=1e-4)
    assert wilson_interval(50, 50)[1] == 1.0


class ScriptedPolicy:
    """The demo's expert demonstrator (or a controller that does nothing) behind the
    policy interface, to show that the rollouts measure what a policy does."""

    horizon, camera_keys, default_prompt = 8, (), "scripted"

    def __init__(self, act: bool):
        self.act = act

    def act_batch(self, images, states, prompts=None, guidance_scale=1.0):
        rng = np.random.default_rng(0)
        actions = (
            np.stack([expert_action(s, rng, noise=0.0) for s in states])
            if self.act
            else np.zeros((len(states), ACTION_DIM), np.float32)
        )
        return np.repeat(actions[:, None], self.horizon, axis=1)


def test_rollouts_tell_a_working_controller_from_one_that_does_nothing():
    seeds, task = [10_000, 10_001, 10_002], DemoTaskConfig(image_size=32)
    expert = batched_rollouts(ScriptedPolicy(True), seeds, task, replan_every=1)
    idle = batched_rollouts(ScriptedPolicy(False), seeds, task, replan_every=1)
    assert expert.success.all() and (expert.steps < task.max_steps).all()
    assert (
        not idle.success.any()
        and (idle.final_progress < 0.1).all()
        and (idle.steps == task.max_steps).all()
    )
    assert (expert.final_progress > idle.final_progress).all()


def test_batched_evaluation_report(labeled_dataset, run_root):
    awbc = load_policy(
        train_policy(
            labeled_dataset,
            tiny_policy_config(),
            tiny_train_config(steps=2, save_interval=2),
            run_root / "a",
        ).checkpoint
    )
    bc = load_policy(
        train_policy(
            labeled_dataset,
            tiny_policy_config(False),
            tiny_train_config(steps=2, save_interval=2),
            run_root / "b",
        ).checkpoint
    )
    assert bc.default_prompt == TASK_TEXT
    config = EvalConfig(
        n_episodes=3, replan_every=2, max_steps=6, image_size=32, guidance_scale=2.0
    )
    results = evaluate_conditions(awbc_conditions(awbc, bc, config.guidance_scale), config)
    table = results_table(results)
    assert table["condition"].tolist() == ["awbc_positive", "awbc_negative", "bc", "awbc_guided_w2"]
    assert table["prompt"].tolist() == [TASKS[1], TASKS[0], TASK_TEXT, TASKS[1]]
    assert (table["n_episodes"] == 3).all() and results[0].seeds.tolist() == [
        10_000,
        10_001,
        10_002,
    ]
    assert (results[0].steps == 6).all()
    metrics = results_metrics(table)
    assert metrics["bc.success_rate"] == {"value": 0.0, "step": 0}
    fig = results_figure(table)
    assert len(fig.axes) == 2
