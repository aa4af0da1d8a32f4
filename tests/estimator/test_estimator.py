"""The advantage estimator: sampler, loader, training/resume/DDP, checkpoints, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from adv_pipeline.checkpoints import list_steps
from adv_pipeline.configs import ConfigError, from_params
from adv_pipeline.distributed import LaunchConfig
from adv_pipeline.estimator import (
    DataConfig,
    EstimatorConfig,
    ModelConfig,
    TrainConfig,
    run_training,
)
from adv_pipeline.estimator.backbones import SpatialSoftmax
from adv_pipeline.estimator.data import (
    TrainLoader,
    decode_chunk,
    episode_progress,
    plan_stream,
    sample_pairs,
)
from adv_pipeline.estimator.evaluate import evaluate_checkpoint, load_estimator
from adv_pipeline.estimator.model import AdvantageEstimator, to_model_input
from adv_pipeline.estimator.train import read_metrics, train
from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader
from adv_pipeline.loader import split_episodes

from ..conftest import synthetic_plan

CAMS = ("top_head", "hand_left")


def tiny_config(variant="KAI0", steps=6, state="observation.state", **train_kw) -> EstimatorConfig:
    return EstimatorConfig(
        ModelConfig(
            variant=variant,
            width=32,
            backbone_kwargs={"depth": 1, "heads": 2, "channels": [8, 8, 16, 16]},
        ),
        DataConfig(
            cameras=CAMS,
            state=state,
            image_size=(32, 32),
            samples_per_episode=8,
            episodes_per_chunk=2,
            num_workers=0,
            val_fraction=0.25,
            val_frame_stride=5,
        ),
        TrainConfig(
            steps=steps,
            batch_size=4,
            warmup_steps=2,
            save_interval=3,
            eval_interval=3,
            log_interval=1,
            **train_kw,
        ),
    )


@pytest.fixture
def dataset(tmp_path) -> LeRobotDatasetReader:
    return synthetic_plan(lengths=(40, 25, 33, 30)).write(tmp_path / "ds")


def test_sampler_never_pairs_a_frame_with_itself_nor_crosses_episodes(dataset):
    progress = episode_progress(dataset)
    config = DataConfig(
        cameras=CAMS, image_size=(32, 32), samples_per_episode=50, episodes_per_chunk=3
    )
    lengths = dict(zip(dataset.episode_indices.tolist(), dataset.lengths.tolist()))
    stream = plan_stream(progress, [0, 1, 2, 3], config, paired=True, seed=1)
    for _ in range(4):
        plan = next(stream)
        assert (plan.compare != plan.current).all()
        n = np.array([lengths[e] for e in plan.episode])
        assert (plan.current < n).all() and (plan.compare < n).all() and (plan.compare >= 0).all()
        sp = [progress[e] for e in plan.episode]
        expected = [np.clip(s[c] - s[p], -1, 1) for s, c, p in zip(sp, plan.current, plan.compare)]
        np.testing.assert_allclose(plan.target, expected, rtol=1e-6)
    # the decoded images are the planned frames of the planned episode
    batch = decode_chunk(dataset, plan, config, paired=True)
    for i in (0, 7, len(plan) - 1):
        ref = dataset.get_frames(
            int(plan.episode[i]), [plan.compare[i], plan.current[i]], cameras=CAMS, size=(32, 32)
        )
        np.testing.assert_array_equal(batch.images[i, 0, 1], ref["observation.images.hand_left"][0])
        np.testing.assert_array_equal(batch.images[i, 1, 0], ref["observation.images.top_head"][1])


def test_end_frames_are_drawn_for_the_absolute_value_samples_only():
    def shares(paired: bool, end_fraction: float) -> tuple[float, float]:
        rng = np.random.default_rng(0)
        t, c, end = sample_pairs(rng, 200, 40_000, paired, 0.5, end_fraction, end_frames=10)
        assert (t != c).all() if paired else (t == c).all()
        assert (t[end] >= 190).all() and (end.mean() > 0) == (end_fraction > 0)
        absolute = c == 0 if paired else np.ones(len(t), bool)
        last = t >= 190
        return last[absolute].mean(), last[~absolute].mean() if paired else float("nan")

    # uniform: 10 of 199 (KAI0 frame-0 pairs, t >= 1) or 10 of 200 frames land in the last 10
    for paired in (True, False):
        base, rest = shares(paired, 0.0)
        assert base == pytest.approx(10 / 200, abs=0.005)
        absolute, rest_end = shares(paired, 0.2)
        assert absolute == pytest.approx(0.2 + 0.8 * base, abs=0.01)
        if paired:  # pairs with a uniform comparison frame are drawn as before
            assert rest_end == pytest.approx(rest, abs=0.005)
    # the end draw only replaces current frames of frame-0 pairs, after everything else
    (t0, c0, _), (t1, c1, end) = (
        sample_pairs(np.random.default_rng(5), 50, 300, True, 0.5, f) for f in (0.0, 0.2)
    )
    np.testing.assert_array_equal(c0, c1)
    moved = t0 != t1
    assert moved.any() and (c1[moved] == 0).all() and (t1[moved] >= 47).all()  # last 3
    assert (end >= moved).all() and (c1[end] == 0).all()  # a redraw may land on the same t
    with pytest.raises(ValueError, match=r"end_frame_fraction=0.2 with first_frame_fraction=0"):
        from_params(EstimatorConfig, {"data": {"first_frame_fraction": 0}}, "estimator")
    with pytest.raises(ValueError, match=r"end_frame_fraction=1.5: a share is in \[0, 1\]"):
        DataConfig(end_frame_fraction=1.5)
    assert (
        from_params(
            EstimatorConfig,
            {"model": {"variant": "PI06"}, "data": {"first_frame_fraction": 0}},
            "x",
        ).data.end_frame_fraction
        == 0.2
    )


def test_split_is_by_episode_and_seeded():
    train_a, val_a = split_episodes(range(20), 0.15, seed=3)
    train_b, val_b = split_episodes(range(20), 0.15, seed=3)
    assert (
        (train_a, val_a) == (train_b, val_b) and len(val_a) == 3 and not set(train_a) & set(val_a)
    )
    assert split_episodes(range(20), 0.15, seed=4)[1] != val_a


def test_loader_batches_do_not_depend_on_workers_and_resume_skips_exactly(dataset):
    progress = episode_progress(dataset)
    base = DataConfig(
        cameras=CAMS,
        state="observation.state",
        image_size=(32, 32),
        samples_per_episode=6,
        episodes_per_chunk=2,
        num_workers=0,
    )
    two = DataConfig(**{**base.__dict__, "num_workers": 2})

    def batches(config, start=0, n=5):
        loader = TrainLoader(
            dataset, progress, [0, 1, 2, 3], config, True, 5, seed=0, start_step=start
        )
        out = [b for _, b in zip(range(n), loader)]
        loader.close()
        return out

    serial, parallel, resumed = batches(base), batches(two), batches(base, start=3, n=2)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.target, b.target)
        np.testing.assert_array_equal(a.state, b.state)
    for a, b in zip(serial[3:], resumed):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.state, b.state)


def test_state_rides_with_the_images_of_the_same_frames(dataset):
    config = DataConfig(
        cameras=CAMS,
        state="observation.state",
        image_size=(32, 32),
        samples_per_episode=20,
        episodes_per_chunk=4,
    )
    plan = next(plan_stream(episode_progress(dataset), [0, 1, 2, 3], config, paired=True, seed=3))
    batch = decode_chunk(dataset, plan, config, paired=True)
    states = {
        e: dataset.read_episode(e, ["observation.state"])["observation.state"] for e in range(4)
    }
    assert batch.state.shape == (len(plan), 2, 3) and batch.state.dtype == np.float32
    for i in range(len(plan)):
        ep = int(plan.episode[i])
        np.testing.assert_array_equal(batch.state[i, 0], states[ep][plan.compare[i]])
        np.testing.assert_array_equal(batch.state[i, 1], states[ep][plan.current[i]])
    assert (
        decode_chunk(
            dataset, plan, DataConfig(**{**config.__dict__, "state": None}), paired=True
        ).state
        is None
    )


def test_state_normalisation_is_saved_with_the_weights(dataset, tmp_path):
    ckpt = train(dataset.root, tmp_path / "run", tiny_config(steps=1))
    assert ckpt.metadata["config"]["model"]["state_dim"] == 3
    weights = ckpt.load_weights()
    train_eps = ckpt.metadata["train_episodes"]
    x = dataset.read_columns(["observation.state"], train_eps)["observation.state"]
    np.testing.assert_allclose(weights["state_encoder.mean"], x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(weights["state_encoder.std"], x.std(axis=0), rtol=1e-5)
    images_only = train(dataset.root, tmp_path / "images_only", tiny_config(steps=1, state=None))
    assert images_only.metadata["config"]["model"]["state_dim"] == 0
    assert not any(k.startswith("state_encoder") for k in images_only.load_weights())


def test_auxiliary_action_loss_reads_the_current_frames_tokens(dataset, tmp_path):
    """estimator.data.action + train.loss_action_weight: the batch carries the current
    frame's action; the head's normalisation is saved; the loss is the weighted sum."""
    base = tiny_config(steps=2)
    config = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, action="action"),
        train=dataclasses.replace(base.train, loss_action_weight=0.5),
    )
    plan = next(plan_stream(episode_progress(dataset), [0, 1, 2, 3], config.data, True, seed=3))
    batch = decode_chunk(dataset, plan, config.data, paired=True)
    actions = {e: dataset.read_episode(e, ["action"])["action"] for e in range(4)}
    expected = [actions[int(e)][t] for e, t in zip(plan.episode, plan.current)]
    np.testing.assert_array_equal(batch.action, expected)

    ckpt = train(dataset.root, tmp_path / "run", config)
    assert ckpt.metadata["config"]["model"]["action_dim"] == 3
    x = dataset.read_columns(["action"], ckpt.metadata["train_episodes"])["action"]
    np.testing.assert_allclose(ckpt.load_weights()["action_head.mean"], x.mean(0), rtol=1e-5)
    model, _ = load_estimator(ckpt)
    images = to_model_input(torch.from_numpy(batch.images[:4]))
    state, y = torch.from_numpy(batch.state[:4]), torch.from_numpy(batch.target[:4])
    action = torch.from_numpy(batch.action[:4])
    with torch.no_grad():
        total = model(images, state, y, action=action, weights=(2.0, 0.5))
        value = model(images, state, y, weights=(1.0, 0.0))
        tokens = model.encode(images.flatten(0, 1), state.flatten(0, 1)).view(4, 2, 3, -1)
        act = model.action_head.loss(tokens[:, -1], action)
        # samples the end draw moved carry no action loss; the mean still divides by B
        keep = torch.tensor([1.0, 0.0, 1.0, 1.0])
        masked = model(images, state, y, action=action, weights=(2.0, 0.5), action_weight=keep)
        kept = model.action_head.loss(tokens[[0, 2, 3], -1], action[[0, 2, 3]])
    assert float(total) == pytest.approx(2.0 * float(value) + 0.5 * float(act), rel=1e-5)
    assert float(masked) == pytest.approx(2.0 * float(value) + 0.5 * 0.75 * float(kept), rel=1e-5)
    np.testing.assert_array_equal(batch.action_weight, (~plan.end).astype(np.float32))
    no_weight = dataclasses.replace(base.train, loss_action_weight=0.0)
    with pytest.raises(ValueError, match=r"needs both"):
        dataclasses.replace(config, train=no_weight)  # an action column without a weight
    seed_like = dataclasses.replace(  # the seed: no action loss
        base, data=dataclasses.replace(base.data, action=None), train=no_weight
    )
    no_action = train(dataset.root, tmp_path / "plain", seed_like)
    assert not any(k.startswith("action_head") for k in no_action.load_weights())


def _weights(run_dir, step=None):
    from adv_pipeline.checkpoints import load_checkpoint

    return load_checkpoint(run_dir, step).load_weights()


def test_checkpoints_hold_the_moving_average_and_training_is_unchanged(dataset, tmp_path):
    """``ema_decay`` d: each checkpoint holds e_k = d e_(k-1) + (1 - d) w_k; the raw weights
    w_k (kept in optimizer.pt for resuming) are those of a run without the average."""
    d = 0.6

    def config(ema_decay):
        c = tiny_config(steps=2, ema_decay=ema_decay)
        return dataclasses.replace(c, train=dataclasses.replace(c.train, save_interval=1))

    train(dataset.root, tmp_path / "raw", config(None))
    train(dataset.root, tmp_path / "avg", config(d))
    w2 = _weights(tmp_path / "raw", 2)
    e1, e2 = _weights(tmp_path / "avg", 1), _weights(tmp_path / "avg", 2)
    kept = torch.load(tmp_path / "avg" / "2" / "optimizer.pt", weights_only=False)["model"]
    assert e2.keys() == w2.keys() == kept.keys()
    for k in w2:
        np.testing.assert_allclose(kept[k].numpy(), w2[k], rtol=1e-6, atol=1e-7, err_msg=k)
        np.testing.assert_allclose(e2[k], d * e1[k] + (1 - d) * w2[k], rtol=1e-5, atol=1e-6)
    assert max(np.abs(e2[k] - w2[k]).max() for k in w2) > 1e-4  # the average is not w_2
    with pytest.raises(ValueError, match=r"ema_decay=1.0: a decay is in \(0, 1\)"):
        TrainConfig(ema_decay=1.0)


@pytest.mark.parametrize("variant", ["KAI0", "PI06"])
def test_resume_equals_uninterrupted(dataset, tmp_path, variant):
    ema = 0.9 if variant == "KAI0" else None  # both paths: the average and the raw weights
    full = train(dataset.root, tmp_path / "full", tiny_config(variant, steps=6, ema_decay=ema))
    train(
        dataset.root, tmp_path / "split", tiny_config(variant, steps=6, ema_decay=ema), stop_after=3
    )
    assert list_steps(tmp_path / "split") == [3]
    resumed = train(
        dataset.root,
        tmp_path / "split",
        tiny_config(variant, steps=6, ema_decay=ema, resume=True),
    )
    assert full.step == resumed.step == 6
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # metrics: one history without a gap or duplicates after the resume
    losses = read_metrics(tmp_path / "split")["train_loss"]
    assert [s for s, _ in losses] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(
        [v for _, v in losses],
        [v for _, v in read_metrics(tmp_path / "full")["train_loss"]],
        rtol=1e-6,
    )


def test_a_checkpoint_reproduces_the_model_that_was_validated(dataset, tmp_path):
    """The files alone rebuild the trained model: a fresh model loaded from them scores the
    validation episodes exactly as the trainer logged at that step."""
    ckpt = train(dataset.root, tmp_path / "run", tiny_config(steps=3))
    assert {p.name for p in ckpt.path.iterdir()} == {
        "model.safetensors",
        "optimizer.pt",
        "metadata.json",
        "assets",
    }
    assert ckpt.metadata["variant"] == "KAI0" and ckpt.metadata["backbone"] == "small_cnn"
    assert ckpt.metadata["dataset_fingerprint"] == dataset.fingerprint()
    logged = dict(read_metrics(ckpt.run_dir)["val_mse"])[3]
    report = evaluate_checkpoint(ckpt, dataset)
    assert (
        report["metrics"]["val_mse"] == pytest.approx(logged, rel=1e-5)
        and report["episodes"] == ckpt.metadata["val_episodes"]
    )
    model, config = load_estimator(ckpt)
    torch.manual_seed(config.train.seed)
    initial = AdvantageEstimator(config.model, config.data)
    trained = dict(model.named_parameters())
    assert any(
        not torch.equal(trained[k], v) for k, v in initial.named_parameters()
    )  # the weights were trained
    x = to_model_input(torch.randint(0, 255, (3, 2, 2, 32, 32, 3), dtype=torch.uint8))
    state = torch.randn(3, 2, 3)
    with torch.no_grad():
        out = model(x, state)
        assert not torch.equal(out, model(x, state + 1.0))  # the state is an input
    assert out.shape == (3,) and (out.abs() < 1).all()


def test_keep_period_prunes_old_checkpoints(dataset, tmp_path):
    cfg = tiny_config(steps=9, keep_period=6)
    train(dataset.root, tmp_path / "run", cfg)
    assert list_steps(tmp_path / "run") == [6, 9]


def test_two_process_ddp_with_gloo(dataset, tmp_path):
    config = dataclasses.replace(
        tiny_config(steps=4), launch=LaunchConfig(nproc_per_node=2, master_port=29517)
    )
    ckpt = run_training(dataset, tmp_path / "ddp", config)
    assert ckpt.step == 4 and ckpt.metadata["world_size"] == 2
    sums = ckpt.metadata["rank_param_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]


def test_missing_stage_progress_column(tmp_path, dataset):
    path = dataset.data_path(0)
    for ep in range(4):
        p = dataset.data_path(ep)
        pq.write_table(pq.read_table(p).drop_columns(["stage_progress_gt"]), p)
    # info.json still declares the column: the reader refuses the files
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0: column stage_progress_gt is missing \(info.json: dtype float32",
    ):
        train(dataset.root, tmp_path / "run", tiny_config())
    info = json.loads((dataset.root / "meta/info.json").read_text())
    del info["features"]["stage_progress_gt"]
    (dataset.root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0 has no column stage_progress_gt, needed as the estimator's training "
        r"target",
    ):
        train(dataset.root, tmp_path / "run", tiny_config())
    assert path.is_file() and not (tmp_path / "run").exists()


def test_one_frame_episode(tmp_path):
    ds = synthetic_plan(lengths=(10, 1, 12)).write(tmp_path / "ds")
    with pytest.raises(
        DatasetFormatError, match=r"episode 1 has 1 frame; the estimator pairs each frame"
    ):
        train(ds.root, tmp_path / "run", tiny_config())


def test_unknown_camera(dataset, tmp_path):
    cfg = tiny_config()
    bad = EstimatorConfig(
        cfg.model, DataConfig(**{**cfg.data.__dict__, "cameras": ("top_head", "wrist")}), cfg.train
    )
    with pytest.raises(
        DatasetFormatError, match=r"no camera 'wrist'; the dataset's video keys are"
    ):
        train(dataset.root, tmp_path / "run", bad)
    assert not list_steps(tmp_path / "run")


def test_unknown_parameters_and_backbone():
    with pytest.raises(
        ConfigError, match=r"unknown key estimator.train.stepz; did you mean 'steps'\?"
    ):
        from_params(EstimatorConfig, {"train": {"stepz": 3}}, "estimator")
    with pytest.raises(ValueError, match="unknown estimator backbone 'vit'"):
        AdvantageEstimator(ModelConfig(backbone="vit"), DataConfig())


def test_two_hot_target_and_the_distributional_head_learn_a_value():
    from adv_pipeline.estimator.model import DistributionalValueHead, two_hot

    support = torch.linspace(-1, 1, 201)
    t = torch.tensor([-1.0, -0.3337, 0.0, 0.50491, 1.0, 1.7])
    enc = two_hot(t, support)
    assert torch.allclose(enc.sum(-1), torch.ones(6)) and (enc > 0).sum(-1).max() <= 2
    torch.testing.assert_close(enc @ support, t.clamp(-1, 1), atol=1e-6, rtol=0)
    torch.manual_seed(0)
    head = DistributionalValueHead(8, 201, -1.0, 1.0)
    x, y = torch.randn(16, 8), torch.linspace(-0.9, 0.9, 16)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        head.loss(x, y).backward()
        opt.step()
    value, spread = head.outputs(x)
    assert (value - y).abs().max() < 0.05 and (spread < 0.1).all()


def test_spatial_softmax_keypoints_are_where_the_feature_peaks():
    """A keypoint is the softmax-weighted mean position of its map, in [-1, 1] image
    coordinates (x right, y down): a sharp peak at row 3, column 12 of a 16x16 map."""
    ssm = SpatialSoftmax(channels=2, keypoints=2)
    with torch.no_grad():
        ssm.maps.weight.zero_()
        ssm.maps.bias.zero_()
        ssm.maps.weight[0, 0] = 50.0  # keypoint 0 follows channel 0; keypoint 1 sees nothing
    x = torch.zeros(1, 2, 16, 16)
    x[0, 0, 3, 12] = 1.0
    kp = ssm(x).view(2, 2)
    expected = torch.tensor([-1 + 2 * 12 / 15, -1 + 2 * 3 / 15])
    torch.testing.assert_close(kp[0], expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(kp[1], torch.zeros(2), atol=1e-6, rtol=0)  # uniform: the centre
