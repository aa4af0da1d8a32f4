"""Stages 1 and 2 on returns (RECAP): the value trained on normalised Monte Carlo returns,
Stage 2's n-step advantage from it, and checkpoints of one kind refused by runs of the other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from adv_pipeline.errors import InputError
from adv_pipeline.estimation.columns import EpisodeReturns, returns_columns
from adv_pipeline.estimation.estimate import EstimationConfig, estimate
from adv_pipeline.estimation.inference import EpisodeValues
from adv_pipeline.estimator.config import ModelConfig
from adv_pipeline.estimator.data import episode_returns
from adv_pipeline.estimator.train import train
from adv_pipeline.lerobot import DatasetFormatError, DerivedDataset

from ..conftest import synthetic_plan
from ..estimator.test_estimator import tiny_config

LENGTHS = (30, 22, 41, 18)
FAILED = (False, True, False, False)  # episode 1 failed


def _returns_config(**model):
    config = tiny_config("PI06", steps=3)
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, target="returns", failure_penalty=10.0, **model),
    )


@pytest.fixture(scope="module")
def outcome_dataset(tmp_path_factory):
    """Four synthetic episodes with a per-frame success flag (episode 1 failed)."""
    root = tmp_path_factory.mktemp("returns")
    raw = synthetic_plan(lengths=LENGTHS).write(root / "raw")
    success = np.repeat([0 if f else 1 for f in FAILED], LENGTHS).astype(np.int64)
    return DerivedDataset(raw, {"success": success}).write(root / "annotated")


@pytest.fixture(scope="module")
def returns_checkpoint(outcome_dataset, tmp_path_factory):
    return train(outcome_dataset.root, tmp_path_factory.mktemp("run") / "r", _returns_config())


def test_returns_targets_hand_computed(outcome_dataset):
    targets, scales = episode_returns(outcome_dataset, penalty=10.0)
    # one task: the normaliser is the largest length + penalty * failed = max(30, 32, 41, 18)
    assert scales == {"do the thing": 41.0}
    # a success of n frames: G[t] = -(n - t) / 41; the failure adds -10 / 41 to every frame
    np.testing.assert_allclose(targets[0], -(30 - np.arange(30)) / 41.0, rtol=1e-6)
    np.testing.assert_allclose(targets[1], -(22 - np.arange(22) + 10) / 41.0, rtol=1e-6)
    assert targets[2][0] == pytest.approx(-1.0) and targets[2][-1] == pytest.approx(-1 / 41)


def test_returns_value_is_trained_and_saved_with_its_kind(returns_checkpoint):
    meta = returns_checkpoint.metadata
    assert meta["target"] == "returns" and meta["config"]["model"]["target"] == "returns"
    assert meta["return_scales"] == {"do the thing": 41.0}
    with pytest.raises(ValueError, match=r"target=returns.*KAI0.*estimator_variant=PI06"):
        ModelConfig(variant="KAI0", target="returns")
    assert ModelConfig(variant="PI06", target="returns").target_range == (-1.0, 0.0)


def test_stage2_writes_the_n_step_advantage_of_its_values(
    outcome_dataset, returns_checkpoint, tmp_path
):
    config = EstimationConfig(interval=5, target="returns", image_features=None)
    out = estimate(outcome_dataset, returns_checkpoint, tmp_path / "est", config)
    assert "relative_advantage" not in out.features
    cols = out.read_columns(["absolute_value", "absolute_advantage"])
    v_all, a_all = cols["absolute_value"].reshape(-1), cols["absolute_advantage"].reshape(-1)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)])
    for e, (n, failed) in enumerate(zip(LENGTHS, FAILED)):
        v = v_all[offsets[e] : offsets[e + 1]].astype(np.float64)
        expected = []
        for t in range(n):  # brute force: rewards over the next 5 frames, then the value
            total = 0.0
            for k in range(t, min(t + 5, n)):
                total += (-1.0 - (10.0 if failed and k == n - 1 else 0.0)) / 41.0
            total += (v[t + 5] if t + 5 < n else 0.0) - v[t]
            expected.append(np.clip(total, -1, 1))
        np.testing.assert_allclose(a_all[offsets[e] : offsets[e + 1]], expected, atol=1e-6)


def test_returns_columns_of_known_values():
    values = EpisodeValues(np.array([-0.5, -0.4, -0.2, -0.1]), None, 0)
    cols = returns_columns(values, 2, EpisodeReturns(scale=10.0, failed=True, penalty=3.0))
    # r = [-0.1, -0.1, -0.1, -0.4]: A = r[t] + r[t+1] + V(t+2) - V(t), V = 0 past the end
    np.testing.assert_allclose(
        cols["absolute_advantage"],
        [-0.2 - 0.2 + 0.5, -0.2 - 0.1 + 0.4, -0.5 + 0.2, -0.4 + 0.1],
        atol=1e-6,
    )
    np.testing.assert_allclose(cols["absolute_value"], values.absolute, atol=1e-7)


def test_a_returns_checkpoint_is_refused_by_a_progress_run(
    outcome_dataset, returns_checkpoint, tmp_path
):
    with pytest.raises(
        InputError,
        match=r"trained on returns.*labels progress \(estimation.target\).*"
        r"Fix: --params advantage_target=returns",
    ):
        estimate(outcome_dataset, returns_checkpoint, tmp_path / "est", EstimationConfig())
    assert not (tmp_path / "est").exists()


def test_returns_without_success_are_refused_before_training(tmp_path):
    ds = synthetic_plan(lengths=(12, 14)).write(tmp_path / "ds")
    with pytest.raises(
        DatasetFormatError, match=r"no column success.*target=returns.*annotation file"
    ):
        train(ds.root, tmp_path / "run", _returns_config())
    assert not (tmp_path / "run").exists()
