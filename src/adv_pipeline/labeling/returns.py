"""Stage 0's ``returns`` advantage: RECAP's n-step advantage on Monte Carlo returns
(docs/semantics.md, "Advantage from returns").

Every step costs -1 and a failed episode ends with the penalty ``-C_fail`` at its last
frame; the return ``G[t]`` sums the rewards from t to the episode's end and is divided,
per task, by the largest ``n + C_fail * failed`` of the task's episodes, so it lies in
[-1, 0]. The advantage of frame t with look-ahead n is

    A[t] = sum(r[t .. t+n-1]) + V(t+n) - V(t)     (V = 0 past the episode's end)

with rewards normalised like the returns. Over one episode's own returns this is 0 by
construction, so the ground-truth value V is the task's mean normalised return at the
frame's progress (``value_bins`` equal bins of progress in [0, 1]): the value of "being
this far along" in that task, as a learned value sees it. Frames that move faster than
the task's episodes do, and episodes that end in success, get higher advantages; the
penalty of a failure reaches the n frames before it. Pure numpy over whole datasets
(episodes concatenated, ``offsets`` (E + 1,) their row ranges).
"""

from __future__ import annotations

import numpy as np

# how a dataset gets the per-frame ``success`` column returns need (Stage 0 and Stage 1)
SUCCESS_FIX = (
    "say each episode's outcome in the annotation file (its success field: true or false) "
    "and run the annotation pipeline on it (kedro run --pipelines annotation), then label "
    "its output (raw_dataset_path=<the annotated dataset>)"
)


def step_rewards(offsets: np.ndarray, failed: np.ndarray, penalty: float) -> np.ndarray:
    """(N,) float64 rewards: -1 per frame, and ``-penalty`` more at the last frame of each
    failed episode (``failed``: (E,) bool)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    r = np.full(int(offsets[-1]), -1.0)
    ends = offsets[1:][np.asarray(failed, dtype=bool)] - 1
    r[ends] -= float(penalty)
    return r


def task_scale(
    offsets: np.ndarray, failed: np.ndarray, episode_task: np.ndarray, penalty: float
) -> np.ndarray:
    """(E,) the normaliser of each episode: the largest ``length + penalty * failed`` over
    the episodes of its task (the most negative return the task has)."""
    lengths = np.diff(np.asarray(offsets, dtype=np.int64)).astype(np.float64)
    worst = lengths + float(penalty) * np.asarray(failed, dtype=np.float64)
    task = np.asarray(episode_task, dtype=np.int64)
    per_task = np.zeros(task.max() + 1 if len(task) else 0)
    np.maximum.at(per_task, task, worst)
    return per_task[task]


def normalised_returns(rewards: np.ndarray, offsets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N,) ``G[t] = sum(r[t .. end]) / scale`` of each frame's episode, in [-1, 0]."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    r = np.asarray(rewards, dtype=np.float64) / np.repeat(scale, lengths)
    tail = np.cumsum(r[::-1])[::-1]  # sum from t to the dataset's end
    after = np.append(tail, 0.0)[np.repeat(offsets[1:], lengths)]  # ... past the episode
    return tail - after


def progress_value(
    returns: np.ndarray, progress: np.ndarray, task: np.ndarray, bins: int
) -> np.ndarray:
    """(N,) V: the mean of ``returns`` over the frames of the same task whose progress
    falls in the same of ``bins`` equal bins of [0, 1]."""
    p = np.clip(np.asarray(progress, dtype=np.float64), 0.0, 1.0)
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    cell = np.asarray(task, dtype=np.int64) * bins + b
    total = np.bincount(cell, weights=returns)
    count = np.bincount(cell)
    return total[cell] / count[cell]


def monte_carlo_returns(
    offsets: np.ndarray, failed: np.ndarray, episode_task: np.ndarray, penalty: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, r, scale): (N,) normalised returns in [-1, 0], (N,) normalised rewards, (E,)
    each episode's normaliser (:func:`task_scale`). ``failed``: (E,) bool;
    ``episode_task``: (E,) int task of each episode."""
    offsets = np.asarray(offsets, dtype=np.int64)
    scale = task_scale(offsets, failed, episode_task, penalty)
    rewards = step_rewards(offsets, failed, penalty) / np.repeat(scale, np.diff(offsets))
    return normalised_returns(rewards, offsets, np.ones(len(scale))), rewards, scale


def n_step_advantage(
    rewards: np.ndarray, value: np.ndarray, offsets: np.ndarray, n: int
) -> np.ndarray:
    """(N,) float64 ``A[t] = sum(r[t .. t+n-1]) + V(t+n) - V(t)`` inside each episode,
    the sum stopping at the episode's end and V = 0 past it."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    rows = np.arange(int(offsets[-1]))
    end = np.repeat(offsets[1:], lengths)  # exclusive end row of each frame's episode
    ahead = np.minimum(rows + int(n), end)
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(rewards, dtype=np.float64))])
    v = np.asarray(value, dtype=np.float64)
    v_ahead = np.where(ahead < end, v[np.minimum(ahead, len(v) - 1)], 0.0)
    return cum[ahead] - cum[rows] + v_ahead - v


def returns_advantage(
    offsets: np.ndarray,
    progress: np.ndarray,
    failed: np.ndarray,
    task: np.ndarray,
    n: int,
    penalty: float,
    bins: int,
) -> np.ndarray:
    """(N,) float32 n-step advantage of every frame (see the module docstring).

    Args:
        offsets: (E + 1,) episode row ranges.
        progress: (N,) progress of each frame (the value's state).
        failed: (E,) bool, episodes that failed.
        task: (N,) int task of each frame (one per episode).
        n: look-ahead in frames (>= 1).
        penalty: C_fail, in steps (>= 0).
        bins: progress bins of the value (>= 1).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    task = np.asarray(task, dtype=np.int64)
    episode_task = task[offsets[:-1]] if len(offsets) > 1 else task[:0]
    g, rewards, _ = monte_carlo_returns(offsets, failed, episode_task, penalty)
    v = progress_value(g, progress, task, int(bins))
    return n_step_advantage(rewards, v, offsets, n).astype(np.float32)
