"""The worked examples of docs/semantics.md, run against the code that implements them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from adv_pipeline import labeling as lab
from adv_pipeline.estimation import EpisodeValues, advantage_columns, roc_auc
from adv_pipeline.estimation.columns import EpisodeReturns, returns_columns
from adv_pipeline.estimator.data import targets
from adv_pipeline.labeling.returns import returns_advantage
from adv_pipeline.policy.data import LossWeights
from adv_pipeline.schema import base_task

from .conftest import REPO

DOC = REPO / "docs" / "semantics.md"
EXAMPLES = [
    json.loads(block) for block in re.findall(r"```example\n(.*?)```", DOC.read_text(), re.S)
]


def _labels(adv, **options):
    adv = np.asarray(adv, dtype=np.float32)
    config = lab.LabelingConfig(**options)
    groups = lab.LabelGroups(np.zeros(len(adv), dtype=np.int64), ((None, 0),))
    cuts = lab.group_cuts(adv, groups, config)
    return cuts[0].tolist(), lab.assign_labels(adv, groups, cuts, config).tolist()


def binary_labels(adv, threshold):
    (thr,), labels = _labels(adv, threshold=threshold)
    return {"threshold": thr, "labels": labels}


def n_slices_labels(adv, n_slices):
    boundaries, labels = _labels(adv, discretization="n_slices", n_slices=n_slices)
    return {"boundaries": boundaries, "labels": labels}


def columns(absolute, relative, interval):
    cols = advantage_columns(EpisodeValues(np.asarray(absolute), np.asarray(relative), 0), interval)
    return {k: v.tolist() for k, v in cols.items()}


def stage2_returns(absolute, interval, scale, failed, penalty):
    values = EpisodeValues(np.asarray(absolute), None, 0)
    cols = returns_columns(values, interval, EpisodeReturns(scale, failed, penalty))
    return {k: v.tolist() for k, v in cols.items()}


FUNCTIONS = {
    "progress_advantage": lambda progress, offsets, chunk_size: lab.progress_advantage(
        np.asarray(progress), np.asarray(offsets), chunk_size
    ).tolist(),
    "stage_index": lambda stage_progress, stage_nums: lab.stage_index(
        np.asarray(stage_progress), stage_nums, len(stage_progress)
    ).tolist(),
    "binary_labels": binary_labels,
    "n_slices_labels": n_slices_labels,
    "prompts": lambda tasks, discretization: lab.output_tasks(
        lab.LabelInputs(None, None, None, None, None, None, tuple(tasks)),
        lab.LabelingConfig(discretization=discretization),
    ),
    "kai0_targets": lambda progress, current, compare: targets(
        np.asarray(progress), np.asarray(current), np.asarray(compare), paired=True
    ).tolist(),
    "advantage_columns": columns,
    "returns_columns": stage2_returns,
    "loss_weights": lambda advantage, mean, std, beta, max_weight: LossWeights(
        mean, std, beta, max_weight
    )(np.asarray(advantage)).tolist(),
    "roc_auc": lambda scores, positive: roc_auc(np.asarray(scores), np.asarray(positive)),
    "base_task": base_task,
    "returns_advantage": lambda offsets, progress, failed, task, n, penalty, bins: (
        returns_advantage(
            np.asarray(offsets),
            np.asarray(progress),
            np.asarray(failed),
            np.asarray(task),
            n,
            penalty,
            bins,
        ).tolist()
    ),  # fmt: skip
}


def _close(got, expect):
    if isinstance(expect, dict):
        assert set(got) == set(expect)
        for k in expect:
            _close(got[k], expect[k])
    elif isinstance(expect, str) or (
        isinstance(expect, list) and expect and isinstance(expect[0], str)
    ):
        assert got == expect
    else:
        np.testing.assert_allclose(got, expect, atol=1e-6)


def test_every_function_of_the_page_has_an_example():
    assert sorted({e["function"] for e in EXAMPLES}) == sorted(FUNCTIONS)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["function"] for e in EXAMPLES])
def test_worked_example(example):
    _close(FUNCTIONS[example["function"]](**example["args"]), example["expect"])


def test_docstrings_cite_this_page_not_the_spec_folder():
    src = REPO / "src" / "adv_pipeline"
    stale = [str(p.relative_to(src)) for p in src.rglob("*.py") if "SEMANTICS.md" in p.read_text()]
    assert stale == []
