"""Stage 0's ``returns`` source: RECAP's rewards and returns by hand, the n-step advantage
against a frame-by-frame loop, and the pipeline on a recording with failures."""

from __future__ import annotations

import numpy as np
import pytest

from adv_pipeline.labeling.returns import (
    normalised_returns,
    progress_value,
    returns_advantage,
    step_rewards,
    task_scale,
)
from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader

from ..conftest import write_column_dataset


def test_returns_of_a_successful_and_a_failed_episode_by_hand():
    offsets, failed = np.array([0, 3, 5]), np.array([False, True])  # 3 frames ok, 2 failed
    r = step_rewards(offsets, failed, penalty=2.0)
    assert r.tolist() == [-1, -1, -1, -1, -3]
    scale = task_scale(offsets, failed, np.array([0, 0]), penalty=2.0)
    assert scale.tolist() == [4.0, 4.0]  # the failed episode: 2 frames + 2
    g = normalised_returns(r, offsets, scale)
    np.testing.assert_allclose(g, [-3 / 4, -2 / 4, -1 / 4, -4 / 4, -3 / 4])
    # two tasks normalise apart: each task's worst episode reaches -1
    scale2 = task_scale(offsets, failed, np.array([0, 1]), penalty=2.0)
    np.testing.assert_allclose(normalised_returns(r, offsets, scale2)[[0, 3]], [-1.0, -1.0])


def _brute_force(offsets, progress, failed, task, n, penalty, bins):
    """The advantage frame by frame, as the formula reads."""
    offsets = list(offsets)
    lengths = np.diff(offsets)
    ep_task = [task[o] for o in offsets[:-1]]
    worst = {}
    for e, t in enumerate(ep_task):
        worst[t] = max(worst.get(t, 0.0), lengths[e] + penalty * failed[e])
    r, g = [], []
    for e in range(len(lengths)):
        rr = [-1.0] * lengths[e]
        if failed[e]:
            rr[-1] -= penalty
        rr = [x / worst[ep_task[e]] for x in rr]
        r += rr
        g += [sum(rr[t:]) for t in range(lengths[e])]
    cells: dict = {}
    for i, (p, t) in enumerate(zip(progress, task)):
        b = min(int(min(max(p, 0.0), 1.0) * bins), bins - 1)
        cells.setdefault((t, b), []).append(i)
    v = [0.0] * len(g)
    for rows in cells.values():
        for i in rows:
            v[i] = sum(g[j] for j in rows) / len(rows)
    adv = []
    for e in range(len(lengths)):
        lo, hi = offsets[e], offsets[e + 1]
        for i in range(lo, hi):
            k = min(i + n, hi)
            adv.append(sum(r[i:k]) + (v[k] if k < hi else 0.0) - v[i])
    return np.array(adv)


@pytest.mark.parametrize("n", [1, 3, 50])
def test_the_n_step_advantage_equals_the_formula_frame_by_frame(n):
    rng = np.random.default_rng(n)
    lengths = rng.integers(2, 30, 7)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    failed = rng.random(7) < 0.4
    task = np.repeat(rng.integers(0, 2, 7), lengths)
    progress = np.concatenate([np.sort(rng.random(k)) for k in lengths]) * 1.1 - 0.05
    got = returns_advantage(offsets, progress, failed, task, n, penalty=10.0, bins=4)
    want = _brute_force(offsets, progress, failed, task, n, 10.0, 4)
    np.testing.assert_allclose(got, want, atol=1e-6)
    v = progress_value(np.arange(len(task), dtype=float), progress, task, 4)
    assert v.shape == task.shape


def _recording(root, with_success: bool = True):
    """Four episodes of one task at the same pace; episode 3 fails halfway."""
    episodes = []
    for e, n in enumerate((20, 20, 20, 10)):
        cols = {
            "observation.state": np.zeros((n, 2), np.float32),
            "action": np.zeros((n, 2), np.float32),
            "progress": (np.arange(n) / 19).astype(np.float32),
        }
        if with_success:
            cols["success"] = np.full(n, 0 if e == 3 else 1, np.int64)
        episodes.append(cols)
    return write_column_dataset(root, episodes).root


def test_stage0_with_returns_runs_and_the_failure_is_negative(session_run, tmp_path):
    raw = _recording(tmp_path / "raw")
    session_run(
        "gt_labeling",
        raw_dataset_path=str(raw),
        gt_labeled_dataset_path=str(tmp_path / "out"),
        gt_labeling={
            "advantage_source": "returns",
            "chunk_size": 5,
            "failure_penalty": 20.0,
            "failed_episodes": "progress",  # the returns alone say the failure
        },
    )
    out = LeRobotDatasetReader(tmp_path / "out")
    labels = out.read_columns(["task_index"])["task_index"]
    ends = out.offsets[1:] - 1
    assert labels[ends[3]] == 0  # the penalty reaches the failure's last frames
    assert out.tasks == ["do the thing, Advantage: negative", "do the thing, Advantage: positive"]


def test_returns_without_success_is_refused_before_any_work(session_run, tmp_path):
    raw = _recording(tmp_path / "raw", with_success=False)
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0 has no column success, needed because advantage_source=returns.*"
        r"Fix: say each episode's outcome in the annotation file \(its success field",
    ):
        session_run(
            "gt_labeling",
            raw_dataset_path=str(raw),
            gt_labeled_dataset_path=str(tmp_path / "out"),
            gt_labeling={"advantage_source": "returns"},
        )
    assert not (tmp_path / "out").exists()
