"""Stage 3's three ways to use an advantage (awbc.method): prompt (AWBC), weighted
(advantage-weighted regression), filtered (the top label's frames only)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from adv_pipeline.figures import offline_figure
from adv_pipeline.lerobot import DatasetFormatError, DerivedDataset, LeRobotDatasetReader
from adv_pipeline.pipelines.params import parse
from adv_pipeline.policy import HashTokenizer, awbc_conditions, load_policy, train_policy
from adv_pipeline.policy.config import Guidance
from adv_pipeline.policy.data import (
    LossWeights,
    PolicyLoader,
    plan_stream,
    prepare_policy_data,
    training_batch,
)
from adv_pipeline.policy.offline import load_held_out, offline_table
from adv_pipeline.sim import TASK_TEXT

from .conftest import TASKS, tiny_policy_config, tiny_train_config


def _with_advantage(
    source: LeRobotDatasetReader, advantage: np.ndarray, path
) -> LeRobotDatasetReader:
    return DerivedDataset(
        source, {"absolute_advantage": advantage.astype(np.float32)}, tasks=list(source.tasks)
    ).write(path)


@pytest.fixture(scope="module")
def advantage_datasets(labeled_dataset, tmp_path_factory):
    """The labelled demo episodes with an equal and a varying absolute_advantage."""
    root = tmp_path_factory.mktemp("advantage")
    n = labeled_dataset.num_frames
    varying = np.random.default_rng(1).normal(0.0, 0.1, n)
    return (
        _with_advantage(labeled_dataset, np.full(n, 0.3), root / "equal"),
        _with_advantage(labeled_dataset, varying, root / "varying"),
    )


def _config(method: str, **data) -> tuple:
    """The tiny policy of ``awbc.method`` (via the parameters, as the pipeline builds it)."""
    tiny = tiny_policy_config()
    params = {
        "method": method,
        "data": {**dataclasses.asdict(tiny.data), **data},
        "model": dataclasses.asdict(tiny.model),
        "tokenizer": dataclasses.asdict(tiny.tokenizer),
    }
    return parse("awbc", params).method_policy()


def test_loss_weights_hand_computed():
    w = LossWeights(mean=0.5, std=0.25, beta=2.0, max_weight=3.0)
    # z = (a - 0.5) / 0.25; w = min(exp(z / 2), 3)
    np.testing.assert_allclose(
        w(np.array([0.5, 0.0, 1.0, 2.0])),
        [1.0, np.exp(-1.0), np.exp(1.0), 3.0],
        rtol=1e-6,
    )


def _bc_config():
    data = dataclasses.replace(_config("prompt").data, prompt_from_task=False)
    return dataclasses.replace(tiny_policy_config(), data=data)


@pytest.fixture(scope="module")
def trained(advantage_datasets, tmp_path_factory) -> dict:
    """BC, weighted and filtered checkpoints on the varying-advantage dataset."""
    _, varying = advantage_datasets
    root = tmp_path_factory.mktemp("methods")
    configs = {"bc": _bc_config(), "weighted": _config("weighted"), "filtered": _config("filtered")}
    tc = tiny_train_config()
    return {k: train_policy(varying, c, tc, root / k).checkpoint for k, c in configs.items()}


def test_weighted_with_equal_advantages_trains_exactly_as_bc(advantage_datasets, trained, run_root):
    equal, _ = advantage_datasets
    weighted = _config("weighted")
    assert weighted.data.method == "weighted" and not weighted.data.prompt_from_task
    a = train_policy(equal, weighted, tiny_train_config(), run_root / "w").checkpoint.load_weights()
    # BC reads the same frames of either dataset (the advantage column is all they differ by)
    b = trained["bc"].load_weights()
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # unequal advantages weigh the samples differently: other weights
    c = trained["weighted"].load_weights()
    assert any(not np.array_equal(c[k], b[k]) for k in c)


def test_weighted_batches_carry_the_advantage_weights(advantage_datasets):
    _, varying = advantage_datasets
    config = _config("weighted").data
    data = prepare_policy_data(varying, config, HashTokenizer(tiny_policy_config().tokenizer))
    adv = varying.read_columns(["absolute_advantage"], list(data.train_episodes))
    adv = adv["absolute_advantage"].astype(np.float64)
    assert data.weights.mean == pytest.approx(adv.mean(), rel=1e-6)
    assert data.weights.std == pytest.approx(adv.std(), rel=1e-4)
    loader = PolicyLoader(varying, data, config, 8, seed=0, workers=0)
    samples = next(iter(loader))
    loader.close()
    batch = training_batch(samples, data, step=0, batch_size=8, seed=0, prompt_dropout=0.0)
    # each frame's weight comes from its own advantage (standardised, exp, clipped)
    assert set(samples.advantage.tolist()) <= set(adv.astype(np.float32).tolist())
    expected = np.minimum(np.exp((samples.advantage - adv.mean()) / adv.std()), 20.0)
    np.testing.assert_allclose(batch["weight"], expected, rtol=1e-4)
    assert len(np.unique(batch["weight"])) > 1


def test_filtered_sees_only_the_top_labels_frames(labeled_dataset):
    config = dataclasses.replace(
        _config("filtered").data, episodes_per_chunk=2, frames_per_episode=None
    )
    data = prepare_policy_data(
        labeled_dataset, config, HashTokenizer(tiny_policy_config().tokenizer)
    )
    labels = {
        e: labeled_dataset.read_episode(e, ["task_index"])["task_index"]
        for e in data.train_episodes
    }
    positive = TASKS.index(f"{TASK_TEXT}, Advantage: positive")
    expected = sorted((e, f) for e, t in labels.items() for f in np.flatnonzero(t == positive))
    assert 0 < len(expected) < sum(len(t) for t in labels.values())
    plans = plan_stream(data.lengths, data.train_episodes, config, 0, 8, frames=data.frames)
    seen = []
    while len(seen) < len(expected):  # one epoch
        p = next(plans)
        seen += list(zip(p.episode.tolist(), p.frame.tolist()))
    assert sorted(seen) == expected


def test_methods_refuse_datasets_they_cannot_use(labeled_dataset, tmp_path):
    tok = HashTokenizer(tiny_policy_config().tokenizer)
    with pytest.raises(
        DatasetFormatError,
        match=r"no column absolute_advantage, needed because awbc.method=weighted.*Stage 2",
    ):
        prepare_policy_data(labeled_dataset, _config("weighted").data, tok)
    plain = DerivedDataset(
        labeled_dataset,
        {"task_index": np.zeros(labeled_dataset.num_frames, np.int64)},
        tasks=[TASK_TEXT],
    ).write(tmp_path / "plain")
    with pytest.raises(DatasetFormatError, match=r"no advantage label.*awbc.method=filtered"):
        prepare_policy_data(plain, _config("filtered").data, tok)
    with pytest.raises(ValueError, match=r"awbc.method must be one of prompt, weighted, filtered"):
        _config("ranked")
    with pytest.raises(ValueError, match=r"awbc.weighted.beta=0"):
        parse("awbc", {"weighted": {"beta": 0}})


def test_weighted_and_filtered_policies_get_their_own_rows(advantage_datasets, trained):
    _, varying = advantage_datasets
    bc = load_policy(trained["bc"])
    for method in ("weighted", "filtered"):
        policy = load_policy(trained[method])
        assert policy.default_prompt == TASK_TEXT and policy.config.data.method == method
        names = [c.name for c in awbc_conditions(policy, bc, Guidance(2.0))]
        assert names == [method, "bc"]
        held = load_held_out(varying, policy, 1, 8)
        table = offline_table(policy, bc, held, seed=0)
        assert table["condition"].unique().tolist() == [method, "bc"]
        assert len(offline_figure(table, "held out").axes) == 2
