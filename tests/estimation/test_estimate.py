"""Stage 2: formulas on known values, streaming alignment, resume after a crash, ranks."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from adv_pipeline.distributed import LaunchConfig
from adv_pipeline.estimation.estimate import EstimationConfig, estimate, label_episodes, open_writer
from adv_pipeline.estimation.inference import EpisodeValues, advantage_columns, predict_episode
from adv_pipeline.estimator.train import train
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import doctor_failures, synthetic_plan
from ..estimator.test_estimator import tiny_config


def test_formulas_at_episode_ends_intervals_and_clipping():
    # n = 6 frames, I = 2: fut = [2, 3, 4, 5, 5, 5], fut - i = [2, 2, 2, 2, 1, 0]
    values = EpisodeValues(
        absolute=np.array([5.0, 0.1, 0.2, 0.4, 0.2, 1.0]),  # frame 0 is forced to 0
        relative=np.array([0.5, 0.7, -0.9, 0.3, 0.6, 0.9]),
        peak_window=0,
    )
    cols = advantage_columns(values, interval=2)
    np.testing.assert_allclose(cols["absolute_value"], [0.0, 0.1, 0.2, 0.4, 0.2, 1.0], rtol=1e-6)
    # (v[fut] - v[i]) * I / (fut - i): [0.2, 0.3, 0.0, 0.6, 0.8 * 2 -> clipped 1,
    # 0 at the last frame]
    np.testing.assert_allclose(
        cols["absolute_advantage"], [0.2, 0.3, 0.0, 0.6, 1.0, 0.0], atol=1e-6
    )
    # V(i -> fut) scaled by I / (fut - i) where fut - i != I: 0.6 * 2 -> clipped 1; 0 at the end
    np.testing.assert_allclose(
        cols["relative_advantage"], [0.5, 0.7, -0.9, 0.3, 1.0, 0.0], atol=1e-6
    )
    single = advantage_columns(EpisodeValues(values.absolute, None, 0), interval=2)
    assert "relative_advantage" not in single
    np.testing.assert_allclose(single["absolute_advantage"], cols["absolute_advantage"], atol=1e-6)


class StubValue(torch.nn.Module):
    """V = mean intensity of the last timestep minus the first (KAI0), or of the frame (PI06)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(2, 3, 4, 5))
        return m[:, -1] - m[:, 0] if x.shape[1] == 2 else m[:, 0]

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self(x), None  # as AdvantageEstimator.outputs with the tanh head


@pytest.mark.parametrize("variant", ["KAI0", "PI06"])
def test_streaming_window_feeds_the_right_frames(tmp_path, variant):
    ds = synthetic_plan(lengths=(37,)).write(tmp_path / "ds")
    config = tiny_config(variant)
    values = predict_episode(StubValue(), config, ds, 0, interval=5, batch_size=4, prefetch=2)
    frames = ds.get_frames(
        0, np.arange(37), cameras=config.data.cameras, size=config.data.image_size
    )
    x = np.stack([frames[k] for k in frames], axis=1).astype(np.float64) / 127.5 - 1.0
    mean = x.mean(axis=(1, 2, 3, 4))
    fut = np.minimum(np.arange(37) + 5, 36)
    if variant == "KAI0":
        np.testing.assert_allclose(values.absolute, mean - mean[0], atol=1e-5)
        np.testing.assert_allclose(values.relative, mean[fut] - mean, atol=1e-5)
    else:
        np.testing.assert_allclose(values.absolute, mean, atol=1e-5)
    assert values.peak_window <= 4 + 5 + 1  # batch + look-ahead (+ the frame being added)


@pytest.fixture
def trained(tmp_path):
    ds = synthetic_plan(lengths=(30, 22, 41, 18, 26)).write(tmp_path / "ds")
    ckpt = train(ds.root, tmp_path / "run", tiny_config(steps=3))
    return ds, ckpt


def _tables(root):
    ds = LeRobotDatasetReader(root)
    return [pq.read_table(ds.data_path(e)) for e in ds.episode_indices]


def test_output_is_a_valid_dataset_and_resume_after_a_crash_equals_one_run(trained, tmp_path):
    ds, ckpt = trained
    config = EstimationConfig(interval=5, batch_size=8)
    whole = estimate(ds, ckpt, tmp_path / "whole", config)
    assert doctor_failures(whole.root) == []
    assert {"relative_advantage", "absolute_value", "absolute_advantage"} <= set(
        whole.column_names()
    )
    assert whole.num_frames == ds.num_frames and whole.tasks == ds.tasks

    class Crash(RuntimeError):
        pass

    def crash_after_two(ep):
        if ep == 1:
            raise Crash

    out = tmp_path / "resumed"
    with pytest.raises(Crash), open_writer(ds, ckpt, out, config) as writer:
        label_episodes(ds, ckpt, writer, config, on_episode=crash_after_two)
    work = writer.staging
    assert not out.exists()  # incomplete: nothing is published at the output path
    finished = {p.name: p.stat().st_mtime_ns for p in (work / "data").rglob("*.parquet")}
    assert sorted(finished) == ["episode_000000.parquet", "episode_000001.parquet"]
    resumed = estimate(ds, ckpt, out, config)
    assert (
        not work.exists() and work.name == ".resumed.work"
    )  # published by renaming the work folder
    # nothing finished was recomputed, and the result equals the uninterrupted run
    assert {
        p.name: p.stat().st_mtime_ns
        for p in (out / "data").rglob("*.parquet")
        if p.name in finished
    } == finished
    import json

    report = json.loads((out / "meta/estimation.json").read_text())
    assert report["episodes_computed"] == 3 and report["episodes_skipped"] == 2
    # a rerun with the same checkpoint, source and interval finds the output done
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    estimate(ds, ckpt, out, config)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    for a, b in zip(_tables(whole.root), _tables(resumed.root)):
        assert a.equals(b)
    for rel in (
        "meta/info.json",
        "meta/episodes.jsonl",
        "meta/tasks.jsonl",
        "meta/episodes_stats.jsonl",
    ):
        assert (whole.root / rel).read_text() == (resumed.root / rel).read_text()
    # overwrite recomputes everything
    again = estimate(ds, ckpt, out, EstimationConfig(interval=5, batch_size=8, overwrite=True))
    assert json.loads((again.root / "meta/estimation.json").read_text())["episodes_computed"] == 5
    # other labels (here another interval; likewise a retrained checkpoint) never mix
    # with finished episodes: the output is relabelled from scratch
    other = estimate(ds, ckpt, out, EstimationConfig(interval=3, batch_size=8))
    assert json.loads((other.root / "meta/estimation.json").read_text())["episodes_computed"] == 5
    fresh = estimate(ds, ckpt, tmp_path / "fresh", EstimationConfig(interval=3, batch_size=8))
    for a, b in zip(_tables(fresh.root), _tables(other.root)):
        assert a.equals(b)


def test_an_estimator_with_state_needs_the_state_column(trained, tmp_path):
    from adv_pipeline.lerobot import DatasetFormatError

    from ..conftest import write_column_dataset

    _, ckpt = trained
    no_state = write_column_dataset(
        tmp_path / "no_state", [{"progress": np.linspace(0, 1, 12).astype(np.float32)}]
    )
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0 has no column observation.state, needed because the estimator .* takes "
        r"the state",
    ):
        estimate(no_state, ckpt, tmp_path / "out", EstimationConfig(interval=5, batch_size=8))
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.work").exists()


def test_two_ranks_produce_the_same_dataset_as_one(trained, tmp_path):
    ds, ckpt = trained
    one = estimate(
        ds, ckpt, tmp_path / "one", EstimationConfig(interval=5, batch_size=8, threads=1)
    )
    two = estimate(
        ds,
        ckpt,
        tmp_path / "two",
        EstimationConfig(
            interval=5,
            batch_size=8,
            threads=1,
            launch=LaunchConfig(nproc_per_node=2, master_port=29518),
        ),
    )
    for a, b in zip(_tables(one.root), _tables(two.root)):
        assert a.schema == b.schema
        for name in ("absolute_value", "absolute_advantage", "relative_advantage"):
            np.testing.assert_allclose(a[name].to_numpy(), b[name].to_numpy(), atol=1e-6)
    assert (one.root / "meta/episodes.jsonl").read_text() == (
        two.root / "meta/episodes.jsonl"
    ).read_text()
    assert doctor_failures(two.root) == []


class Unfactorized(torch.nn.Module):
    """The same model without its encode/fuse split: every pair re-encodes its frames."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)

    def outputs(self, x):
        return self.model.outputs(x)


@pytest.mark.parametrize("variant", ["KAI0", "PI06"])
def test_encoding_each_frame_once_gives_the_same_values(trained, variant, tmp_path):
    ds, _ = trained
    from adv_pipeline.estimator.model import AdvantageEstimator

    config = tiny_config(variant, state=None)  # the unfactorized path takes images only
    torch.manual_seed(0)
    model = AdvantageEstimator(config.model, config.data).eval()
    assert model.factorized
    fast = predict_episode(model, config, ds, 2, interval=7, batch_size=5)
    slow = predict_episode(Unfactorized(model), config, ds, 2, interval=7, batch_size=5)
    np.testing.assert_allclose(fast.absolute, slow.absolute, atol=1e-5)
    if variant == "KAI0":
        np.testing.assert_allclose(fast.relative, slow.relative, atol=1e-5)
    assert fast.peak_window <= 5 + 7 + 5
    # FFmpeg's decoder threads change the speed, never the frames
    threaded = predict_episode(model, config, ds, 2, interval=7, batch_size=5, decode_threads=0)
    np.testing.assert_array_equal(threaded.absolute, fast.absolute)


def test_roc_auc_is_the_mann_whitney_statistic_with_half_counted_ties():
    from adv_pipeline.estimation import roc_auc

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 300).astype(float)  # many ties
    positive = rng.random(300) < 0.4
    pos, neg = scores[positive], scores[~positive]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(scores, positive) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
    assert roc_auc(scores, scores > 2) == 1.0 and roc_auc(-scores, scores > 2) == 0.0
    assert np.isnan(roc_auc(scores, np.zeros(300, bool)))


def test_distributional_head_writes_the_value_spread(tmp_path):
    """estimator.model.value_head: distributional trains, and Stage 2 writes the value's
    spread beside the value (a valid dataset); the tanh head's output has no such column."""
    import dataclasses

    ds = synthetic_plan(lengths=(30, 22, 41, 26)).write(tmp_path / "ds")
    config = tiny_config(steps=4)
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, value_head="distributional", value_bins=21),
    )
    ckpt = train(ds.root, tmp_path / "run", config)
    out = estimate(ds, ckpt, tmp_path / "out", EstimationConfig(interval=5, batch_size=8))
    assert doctor_failures(out.root) == []
    cols = out.read_columns(["absolute_value", "absolute_value_spread"])
    spread, value = cols["absolute_value_spread"], cols["absolute_value"]
    assert np.isfinite(spread).all() and (spread >= 0).all() and spread.max() > 0
    assert (spread[out.offsets[:-1]] == 0).all() and (np.abs(value) <= 1).all()
    # Stage 2's value is the mean of the head's distribution over its 21 bins
    from adv_pipeline.estimator.evaluate import load_estimator

    model, _ = load_estimator(ckpt)
    assert model.value_head.support.shape == (21,)
    values = predict_episode(model, config, out, 2, interval=5, batch_size=8)
    np.testing.assert_allclose(
        values.absolute[1:], value[out.offsets[2] + 1 : out.offsets[3]], atol=1e-6
    )
    assert (
        "absolute_value_spread"
        not in estimate(
            ds,
            train(ds.root, tmp_path / "tanh", tiny_config(steps=1)),
            tmp_path / "t",
            EstimationConfig(interval=5),
        ).column_names()
    )


def test_the_oracle_applies_stage_2s_formula_to_the_true_stage_progress():
    from adv_pipeline.estimation.agreement import _with_oracle, oracle_advantage

    sp = np.concatenate([np.linspace(0, 1, 10), 0.2 + np.linspace(0, 0.8, 6) ** 2])
    offsets = np.array([0, 10, 16])
    adv = oracle_advantage(sp.astype(np.float32), offsets, 3)
    np.testing.assert_allclose(adv[:7], 3 / 9, rtol=1e-5)  # linear progress: constant
    np.testing.assert_allclose(adv[7:9], 3 / 9, rtol=1e-5)  # fut clipped, rescaled by I/gap
    assert adv[9] == 0 and adv[15] == 0  # the last frame of each episode
    # episode 2 starts at 0.2: only differences count
    np.testing.assert_allclose(adv[10], (0.8 * 3 / 5) ** 2 * 1.0, rtol=1e-5)
    scores = _with_oracle({"roc_auc": 0.8}, 0.9)
    assert scores["oracle_roc_auc"] == 0.9 and abs(scores["share_of_oracle"] - 0.75) < 1e-12


def test_image_features_column_carries_its_encoder(trained, tmp_path):
    """estimation.image_features: each frame's image tokens as a vector column, the
    encoder under meta/encoders/<column>/<step>/; datasets derived from it keep both; the
    encoder recomputes the column from the frames."""
    from adv_pipeline.checkpoints import Checkpoint
    from adv_pipeline.errors import InputError
    from adv_pipeline.estimation.checks import check_estimation_inputs
    from adv_pipeline.estimation.features import ImageFeatures
    from adv_pipeline.lerobot import DerivedDataset

    ds, ckpt = trained
    col = "observation.image_features"
    config = EstimationConfig(interval=5, batch_size=8, image_features=col)
    out = estimate(ds, ckpt, tmp_path / "est", config)
    assert doctor_failures(out.root) == []
    k, w = (
        len(ckpt.metadata["config"]["data"]["cameras"]),
        ckpt.metadata["config"]["model"]["width"],
    )
    assert out.features[col] == {"dtype": "float32", "shape": [k * w], "names": None}
    encoder_dir = out.encoders()[col]
    assert encoder_dir == out.root / "meta/encoders" / col / str(ckpt.step)
    assert (encoder_dir / "model.safetensors").read_bytes() == (
        ckpt.path / "model.safetensors"
    ).read_bytes()
    features = ImageFeatures(encoder_dir)
    assert features.dim == k * w
    ep = 2
    stored = out.read_episode(ep, [col])[col]
    frames = list(out.iter_frames(ep, cameras=list(features.cameras), size=features.size))
    images = {c: np.stack([f[key] for f in frames]) for key, c in zip(frames[0], features.cameras)}
    np.testing.assert_allclose(features(images), stored, atol=1e-5)
    # a dataset derived from it (the AWBC labels) keeps the column and its encoder
    labels = np.zeros(out.num_frames, np.int64)
    derived = DerivedDataset(out, {"task_index": labels}).write(tmp_path / "derived")
    assert set(derived.encoders()) == {col} and doctor_failures(derived.root) == []
    # errors before any work: the column exists already; a many-tokens backbone
    with pytest.raises(InputError, match=r"already has that column"):
        estimate(out, ckpt, tmp_path / "again", config)
    meta = {"config": {**ckpt.metadata["config"]}}
    meta["config"]["model"] = {**meta["config"]["model"], "backbone": "paligemma"}
    with pytest.raises(
        InputError, match=r"encodes each image to many tokens.*image_features: null"
    ):
        check_estimation_inputs(ds, Checkpoint(ckpt.run_dir, ckpt.step, meta), col)
    assert not (tmp_path / "again").exists()
