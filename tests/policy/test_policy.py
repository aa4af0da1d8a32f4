"""The AWBC policy: prompts, training (sharded, resumed), checkpoints, inference, evaluation."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from adv_pipeline.checkpoints import list_steps, load_checkpoint
from adv_pipeline.figures import results_figure
from adv_pipeline.lerobot import DatasetFormatError
from adv_pipeline.policy import (
    EvalConfig,
    HashTokenizer,
    TokenizerConfig,
    awbc_conditions,
    batched_rollouts,
    evaluate_conditions,
    expert_rollouts,
    load_policy,
    results_metrics,
    results_table,
    train_policy,
    wilson_interval,
)
from adv_pipeline.policy.checkpoint_io import flatten_params
from adv_pipeline.policy.config import Guidance
from adv_pipeline.policy.data import (
    PolicyLoader,
    concat_samples,
    decode_samples,
    plan_stream,
    prepare_policy_data,
    training_batch,
)
from adv_pipeline.policy.evaluate import task_config
from adv_pipeline.policy.images import downsample
from adv_pipeline.policy.normalize import NormStats
from adv_pipeline.policy.train import init_params, model_for
from adv_pipeline.sim import ACTION_DIM, TASK_TEXT, DemoTask, DemoTaskConfig, expert_action
from adv_pipeline.worlds import EvalTask
from adv_pipeline.worlds.demo import DemoWorld

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


def _all_samples(reader, config, data, **kw):
    """One epoch of the training stream, decoded (no workers), and the plans behind it."""
    n = sum(data.lengths[e] for e in data.train_episodes)
    plans = plan_stream(data.lengths, data.train_episodes, config, seed=0, batch_size=8, **kw)
    taken, got = [], 0
    while got < n // kw.get("world_size", 1):
        taken.append(next(plans))
        got += len(taken[-1])
    decoded = [
        decode_samples(reader, p, config, data.spec.camera_keys, data.task_prompt) for p in taken
    ]
    return taken, concat_samples(decoded)


def test_loader_batches_depend_on_the_seed_not_on_the_worker_count(labeled_dataset):
    config = dataclasses.replace(tiny_policy_config().data, episodes_per_chunk=2)
    data = prepare_policy_data(
        labeled_dataset, config, HashTokenizer(tiny_policy_config().tokenizer)
    )

    def batches(workers: int, seed: int = 0) -> list:
        loader = PolicyLoader(labeled_dataset, data, config, 8, seed, workers=workers)
        it = iter(loader)
        out = [next(it) for _ in range(6)]
        loader.close()
        return out

    serial, parallel = batches(0), batches(2)
    for a, b in zip(serial, parallel):
        for field in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
    other = batches(0, seed=1)
    assert any(not np.array_equal(a.images, b.images) for a, b in zip(serial, other))


def test_stream_covers_each_training_frame_once_per_epoch(labeled_dataset):
    config = dataclasses.replace(
        tiny_policy_config().data, episodes_per_chunk=2, frames_per_episode=None
    )
    data = prepare_policy_data(
        labeled_dataset, config, HashTokenizer(tiny_policy_config().tokenizer)
    )
    assert len(data.val_episodes) == 1 and len(data.train_episodes) == 2  # 3 episodes, 10%
    plans, samples = _all_samples(labeled_dataset, config, data)
    pairs = sorted(
        zip(np.concatenate([p.episode for p in plans]), np.concatenate([p.frame for p in plans]))
    )
    assert pairs == sorted((e, f) for e in data.train_episodes for f in range(data.lengths[e]))
    # what was decoded is the dataset's own row: state, the action chunk, the frame's prompt
    ep, fr = int(plans[0].episode[0]), int(plans[0].frame[0])
    cols = labeled_dataset.read_episode(ep, ["observation.state", "action", "task_index"])
    np.testing.assert_array_equal(samples.state[0], cols["observation.state"][fr])
    end = min(fr + config.horizon, data.lengths[ep])
    np.testing.assert_array_equal(samples.actions[0][: end - fr], cols["action"][fr:end])
    assert samples.mask[0].sum() == end - fr
    assert data.prompts.texts[samples.prompt[0]] == labeled_dataset.tasks[cols["task_index"][fr]]
    frame = labeled_dataset.get_frames(ep, [fr], ["top_head"])["observation.images.top_head"][0]
    np.testing.assert_array_equal(samples.images[0, 0], downsample(frame, config.image_size))


def test_two_processes_split_each_global_batch(labeled_dataset):
    config = tiny_policy_config().data
    data = prepare_policy_data(
        labeled_dataset, config, HashTokenizer(tiny_policy_config().tokenizer)
    )
    one = np.concatenate(
        [p.frame * 1000 + p.episode for p in _all_samples(labeled_dataset, config, data)[0]]
    )
    halves = [
        np.concatenate(
            [
                p.frame * 1000 + p.episode
                for p in _all_samples(labeled_dataset, config, data, rank=r, world_size=2)[0]
            ]
        )
        for r in (0, 1)
    ]
    n = min(len(halves[0]), len(halves[1])) // 4 * 4
    # batch b of 8 = rank 0's b-th 4 samples, then rank 1's
    joined = np.stack([halves[0][:n].reshape(-1, 4), halves[1][:n].reshape(-1, 4)], 1).reshape(-1)
    m = min(len(joined), len(one)) // 8 * 8
    assert m >= 200
    np.testing.assert_array_equal(joined[:m], one[:m])


def test_prompts_dropout_and_normalisation_of_a_batch(labeled_dataset):
    tok = HashTokenizer(tiny_policy_config().tokenizer)
    data = prepare_policy_data(labeled_dataset, tiny_policy_config(True).data, tok)
    _, samples = _all_samples(labeled_dataset, tiny_policy_config().data, data)
    samples = samples[:64]
    bc = prepare_policy_data(labeled_dataset, tiny_policy_config(False).data, tok)
    assert {bc.prompts.texts[r] for r in bc.task_prompt} == {TASK_TEXT}
    batch = training_batch(samples, data, step=5, batch_size=64, seed=0, prompt_dropout=0.3)
    allowed = {tuple(tok.encode(t)[0]) for t in [*TASKS, TASK_TEXT]}
    assert {tuple(r) for r in batch["tokens"]} <= allowed
    assert any(tuple(r) == tuple(tok.encode(TASK_TEXT)[0]) for r in batch["tokens"])
    nodrop = training_batch(samples, data, step=5, batch_size=64, seed=0, prompt_dropout=0.0)
    assert [tuple(r) for r in nodrop["tokens"]] == [
        tuple(tok.encode(data.prompts.texts[p])[0]) for p in samples.prompt
    ]
    # quantile normalisation (openpi pi0.5): q01 -> -1, q99 -> +1; back in dataset units
    assert data.action_stats.mode == "quantile"
    raw = labeled_dataset.read_columns(["action"], list(data.train_episodes))["action"]
    np.testing.assert_allclose(data.action_stats.q01, np.quantile(raw, 0.01, axis=0), atol=2e-3)
    np.testing.assert_allclose(data.action_stats.q99, np.quantile(raw, 0.99, axis=0), atol=2e-3)
    np.testing.assert_allclose(data.action_stats.min, raw.min(0), atol=1e-6)
    np.testing.assert_allclose(
        data.action_stats.unnormalize(batch["actions"]), samples.actions, atol=1e-5
    )


def test_norm_stats_modes_and_output_range():
    x = np.random.default_rng(0).normal(3.0, 2.0, (20_000, 2)).astype(np.float32)
    q, m = NormStats.of(x), NormStats.of(x, "mean_std")
    assert np.abs(np.median(q.normalize(x), 0)).max() < 0.05
    assert np.mean(np.abs(q.normalize(x)) <= 1) == pytest.approx(0.98, abs=0.005)
    np.testing.assert_allclose(m.normalize(x).std(0), 1, atol=1e-3)
    np.testing.assert_allclose(q.unnormalize(q.normalize(x[:5])), x[:5], atol=1e-4)
    # joint positions far outside [-1, 1] come back unclipped; only the data's range bounds them
    assert (
        q.unnormalize(np.full((1, 2), 1.0))[0, 0] > 5
        and (q.unnormalize(np.full((1, 2), 50.0)) == x.max(0)).all()
    )
    back = NormStats.from_json(q.to_json())
    assert back.mode == "quantile" and np.array_equal(back.q99, q.q99)


def test_too_long_training_prompt_is_an_error(labeled_dataset):
    short = HashTokenizer(TokenizerConfig(vocab_size=257, max_len=5))
    with pytest.raises(ValueError, match="max_len"):
        prepare_policy_data(labeled_dataset, tiny_policy_config().data, short)


def test_shapes_that_do_not_fit_are_refused_before_training(labeled_dataset):
    tok = HashTokenizer(tiny_policy_config().tokenizer)
    big = dataclasses.replace(tiny_policy_config().data, image_size=64)
    with pytest.raises(
        DatasetFormatError, match=r"'observation.images.top_head' is 32x32 pixels.*at most 32"
    ):
        prepare_policy_data(labeled_dataset, big, tok)
    scalar = dataclasses.replace(tiny_policy_config().data, action_key="frame_index")
    with pytest.raises(
        DatasetFormatError, match=r"'frame_index' has shape \[1\].*awbc.data.action_key"
    ):
        prepare_policy_data(labeled_dataset, scalar, tok)


# ---------------------------------------------------------------------------- training
def test_resume_equals_uninterrupted_run(labeled_dataset, run_root):
    pc, tc = tiny_policy_config(), tiny_train_config()
    # decoded in this process vs in a worker process: the same batches
    full = train_policy(labeled_dataset, pc, tiny_train_config(num_workers=0), run_root / "full")
    half = train_policy(labeled_dataset, pc, tc, run_root / "split", stop_at=4)
    assert half.checkpoint.step == 4 and list_steps(run_root / "split") == [3, 4]
    resumed = train_policy(labeled_dataset, pc, tc, run_root / "split")
    assert resumed.start_step == 4 and resumed.checkpoint.step == 6
    assert_same_weights(weights(full), weights(resumed), rtol=0, atol=0)
    assert resumed.metrics == full.metrics
    assert [e["step"] for e in full.metrics["loss"]] == [2, 4, 6]
    again = train_policy(labeled_dataset, pc, tc, run_root / "full")  # finished: nothing to do
    assert again.checkpoint.step == 6 and again.start_step == 6


def test_weight_average_is_saved_for_inference_and_resumes_exactly(labeled_dataset, run_root):
    pc = tiny_policy_config()
    # every step saved: the raw parameters p_1..p_6 of a run without the average
    raw = train_policy(labeled_dataset, pc, tiny_train_config(save_interval=1), run_root / "raw")
    p = [load_checkpoint(raw.checkpoint.path.parent, s).load_weights() for s in range(1, 7)]
    tc = tiny_train_config(ema_decay=0.5)
    full = train_policy(labeled_dataset, pc, tc, run_root / "ema")
    ema = {k: np.asarray(v) for k, v in weights(full).items()}
    data = prepare_policy_data(labeled_dataset, pc.data, HashTokenizer(pc.tokenizer))
    p0 = init_params(model_for(pc, data), pc, data, tc.seed)  # the seed's initial parameters
    expected = {k: np.asarray(v) for k, v in flatten_params(p0).items()}
    for step in p:
        expected = {k: 0.5 * expected[k] + 0.5 * step[k] for k in expected}
    assert_same_weights(ema, expected, rtol=1e-5, atol=1e-6)
    assert max(np.abs(ema[k] - p[-1][k]).max() for k in ema) > 1e-4  # not the last step's
    half = train_policy(labeled_dataset, pc, tc, run_root / "ema_split", stop_at=4)
    resumed = train_policy(labeled_dataset, pc, tc, run_root / "ema_split")
    assert half.checkpoint.step == 4 and resumed.start_step == 4
    assert_same_weights(ema, weights(resumed), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"awbc.train.ema_decay=1.0: a decay is in \(0, 1\)"):
        tiny_train_config(ema_decay=1.0)


_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    from adv_pipeline.distributed import LaunchConfig, init_jax_distributed

    def main():
        data, out, repo, port, rank = sys.argv[1:6]
        init_jax_distributed(LaunchConfig(nnodes=2, node_rank=int(rank), master_port=int(port)))
        import jax
        assert jax.process_count() == 2 and jax.device_count() == 2, jax.devices()
        from adv_pipeline.lerobot import LeRobotDatasetReader
        from adv_pipeline.policy import train_policy
        sys.path.insert(0, repo)
        from tests.policy.conftest import tiny_policy_config, tiny_train_config
        train_policy(LeRobotDatasetReader(data), tiny_policy_config(), tiny_train_config(), out)

    if __name__ == "__main__":
        main()
    """
)


def test_two_jax_processes_match_one(labeled_dataset, run_root, tmp_path):
    """jax.distributed over 2 CPU processes (coordinator, process count and id as
    awbc.launch gives them): each decodes its half of every global batch; the weights
    match a 1-process run."""
    one = train_policy(labeled_dataset, tiny_policy_config(), tiny_train_config(), run_root / "one")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "train_rank.py"
    script.write_text(_PROCESS_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [str(labeled_dataset.root), str(run_root / "two"), repo, str(port)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *args, str(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    from adv_pipeline.checkpoints import load_checkpoint

    two = load_checkpoint(run_root / "two")
    assert two.step == 6
    assert_same_weights(one.checkpoint.load_weights(), two.load_weights(), rtol=1e-4, atol=1e-6)


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
        obs, prompt="juggle the purple elephants, Advantage: enormous", guidance=Guidance(2.0)
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


def test_guidance_extrapolates_away_from_the_chosen_reference_prompt(labeled_dataset, run_root):
    awbc = load_policy(
        train_policy(
            labeled_dataset, tiny_policy_config(), tiny_train_config(), run_root / "guide"
        ).checkpoint
    )
    positive, negative = TASKS[-1], TASKS[0]
    assert awbc.reference_prompt(positive, "negative") == negative  # the worst label
    assert awbc.reference_prompt("stack cups, Advantage: positive", "negative") == (
        "stack cups, Advantage: negative"
    )  # the prompt's own task, the training tasks' worst label
    assert awbc.reference_prompt(positive, "unconditional") == TASK_TEXT
    obs = DemoTask(DemoTaskConfig(image_size=32)).reset(5)

    def act(prompt, w=1.0, reference="negative"):
        awbc.reseed(3)  # the same flow noise for every call
        return awbc.act(obs, prompt, Guidance(w, reference))

    # v = v_ref + w (v - v_ref): guiding a prompt away from itself is the prompt alone
    np.testing.assert_allclose(act(negative, 2.0), act(negative), atol=1e-5)
    np.testing.assert_allclose(act(TASK_TEXT, 2.0, "unconditional"), act(TASK_TEXT), atol=1e-5)
    # ... and each reference moves the positive prompt's chunk its own way
    guided = {r: act(positive, 2.0, r) for r in ("negative", "unconditional")}
    assert not np.allclose(guided["negative"], act(positive), atol=1e-4)
    assert not np.allclose(guided["negative"], guided["unconditional"], atol=1e-4)
    with pytest.raises(ValueError, match="guidance reference 'worst'"):
        act(positive, 2.0, "worst")

    bc = load_policy(
        train_policy(
            labeled_dataset, tiny_policy_config(False), tiny_train_config(), run_root / "guide_bc"
        ).checkpoint
    )
    assert bc.act(obs).shape == (4, ACTION_DIM)  # unguided: fine
    with pytest.raises(ValueError, match=r"trained on the plain task text \(BC\)"):
        bc.act(obs, guidance=Guidance(2.0))


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
    input_cameras: dict[str, str] = {}
    observed_state_dim = 12
    state_dims = {"observation.state": 6, "observation.environment_state": 6}
    # the scripted expert reads where the block and goal are (privileged state)
    observed_state_keys = ("observation.state", "observation.environment_state")

    def __init__(self, act: bool):
        self.act = act

    def act_batch(self, images, states, prompts=None, guidance=None, **_):
        rng = np.random.default_rng(0)
        actions = (
            np.stack([expert_action(s, rng, noise=0.0) for s in states])
            if self.act
            else np.zeros((len(states), ACTION_DIM), np.float32)
        )
        return np.repeat(actions[:, None], self.horizon, axis=1)


def test_rollouts_tell_a_working_controller_from_one_that_does_nothing():
    seeds, task = [10_000, 10_001, 10_002], DemoTaskConfig(image_size=32)
    expert = batched_rollouts(ScriptedPolicy(True), seeds, DemoWorld(task), replan_every=1)
    idle = batched_rollouts(ScriptedPolicy(False), seeds, DemoWorld(task), replan_every=1)
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
    world = DemoWorld(task_config(config))
    results = evaluate_conditions(awbc_conditions(awbc, bc, config.guidance), config, world)
    table = results_table(results)
    assert table["condition"].tolist() == [
        "awbc_positive", "awbc_negative", "bc", "awbc_guided_w2", "expert",
    ]  # fmt: skip
    assert table["prompt"].tolist()[:4] == [TASKS[1], TASKS[0], TASK_TEXT, TASKS[1]]
    assert table["guidance_reference"].tolist() == ["", "", "", "negative", ""]
    # the scripted demonstrator on the same seeds: the ceiling (6 steps finish no episode)
    assert results[-1].seeds.tolist() == results[0].seeds.tolist()
    assert (results[-1].steps == 6).all() and (results[-1].final_progress > 0).all()
    full = expert_rollouts(
        [10_000, 10_001], DemoWorld(DemoTaskConfig(image_size=32)), EvalTask("demo", TASK_TEXT)
    )
    assert full.success.all() and (full.steps < DemoTaskConfig().max_steps).all()
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
