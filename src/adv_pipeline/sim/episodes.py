"""Episode generation (demo datasets), dataset mixes and closed-loop rollouts.

Frames are keyed by ``CAMERA_KEYS``; see :mod:`adv_pipeline.sim.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from adv_pipeline.schema import QUALITY, SUCCESS

from .config import NUM_STAGES, PROPRIO_DIM, QUALITIES, STATE_DIM, DemoTaskConfig
from .demonstrator import make_policy
from .render import render
from .state import initial_snapshot, is_success, policy_state, progress_of, stage_of, step_snapshot
from .task import DemoTask, Observation

RECOVERY_BUDGET = 200
"""Steps reserved at the end of a generated episode for the expert to finish."""

COLUMN_NAMES: tuple[str, ...] = (
    "observation.state",
    "observation.environment_state",
    "action",
    "progress",
    "progress_gt",
    "stage_progress_gt",
    "intervention",
)


@dataclass(frozen=True)
class DemoEpisode:
    """One generated demonstration (T frames, frame t = state before action t).

    Attributes:
        seed: episode seed (block / goal / gripper starts and operator noise).
        quality: ``"expert"``, ``"suboptimal"`` or ``"dagger"``.
        success: whether the episode ends in success (always True).
        length: number of frames T.
        columns: ``"observation.state"`` float32 (T, STATE_DIM), ``"action"``
            float32 (T, ACTION_DIM), ``"progress"`` float32 (T,) true progress,
            ``"progress_gt"`` float32 (T,) = t / (T - 1),
            ``"stage_progress_gt"`` float32 (T,), ``"intervention"`` int64 (T,),
            ``"success"`` int64 (T,) its outcome, 1 on every frame (what the
            annotation pipeline writes; RECAP's returns read it), ``"quality"`` int64
            (T,) the demonstrator, its index in QUALITIES (curated BC keeps 0, expert).
        snapshots: float64 (T, SNAPSHOT_DIM) sim states for lazy rendering.
        config: the task config (needed to render).
        stage_edges: first frame of each stage, then T (the demo's annotation).
    """

    seed: int
    quality: str
    success: bool
    length: int
    columns: dict[str, np.ndarray] = field(repr=False)
    snapshots: np.ndarray = field(repr=False)
    config: DemoTaskConfig = field(repr=False)
    stage_edges: tuple[int, ...] = ()

    def frame(self, t: int) -> dict[str, np.ndarray]:
        """Images of frame ``t``: ``{key: uint8 (H, W, 3)}`` for CAMERA_KEYS."""
        if not -self.length <= t < self.length:
            raise IndexError(t)
        return render(self.snapshots[t], self.config)

    def iter_frames(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield frames ``start .. stop - 1`` one at a time, rendered lazily."""
        stop = self.length if stop is None else min(stop, self.length)
        for t in range(max(start, 0), stop):
            yield render(self.snapshots[t], self.config)


def stage_edges(stages: np.ndarray, num_stages: int = NUM_STAGES) -> np.ndarray:
    """(K + 1,) int64 first frame of each stage, then T, from per-frame stages (T,).

    Stage k ends when it is *finally* completed: ``end_k = 1 + last index with
    stage <= k`` (``end_{K-1} = T``); the demo's annotation (its boundary file).
    """
    T = len(stages)
    edges = [0]
    for k in range(num_stages - 1):
        idx = np.flatnonzero(stages <= k)
        edges.append(max(edges[-1], int(idx[-1]) + 1 if len(idx) else 0))
    edges.append(T)
    return np.asarray(edges, dtype=np.int64)


def stage_progress(stages: np.ndarray, num_stages: int = NUM_STAGES) -> np.ndarray:
    """Stage-annotated progress, float32 (T,), from per-frame stages (T,): frame j of
    stage k (length L_k, edges from :func:`stage_edges`) gets ``k / K + (1 / K) * j / L_k``.
    """
    edges = stage_edges(stages, num_stages)
    out = np.zeros(len(stages), dtype=np.float64)
    for k in range(num_stages):
        start, end = int(edges[k]), int(edges[k + 1])
        n = end - start
        if n > 0:
            out[start:end] = k / num_stages + (np.arange(n) / n) / num_stages
    return out.astype(np.float32)


def generate_episode(config: DemoTaskConfig, seed: int, quality: str) -> DemoEpisode:
    """Run the scripted demonstrator of ``quality`` on the task of ``seed``.

    The operator falls back to the expert ``RECOVERY_BUDGET`` steps before
    ``config.episode_cap`` so every episode succeeds within the cap.  The last
    frame is the success state (its action is the operator's, not applied).

    Raises:
        ValueError: unknown quality.  RuntimeError: no success (a bug).
    """
    if quality not in QUALITIES:
        raise ValueError(f"unknown quality {quality!r}")
    op_seed = int(
        np.random.SeedSequence(
            [int(seed) & 0xFFFFFFFF, QUALITIES.index(quality), 11]
        ).generate_state(1)[0]
    )
    op = make_policy(quality, op_seed, config, recover_at=config.episode_cap - RECOVERY_BUDGET)
    s = initial_snapshot(config, seed)
    snaps, actions, interv = [], [], []
    for _ in range(config.episode_cap):
        a = op(policy_state(s))
        snaps.append(s)
        actions.append(a)
        interv.append(op.last_intervention)
        if is_success(s, config):
            break
        s = step_snapshot(s, a, config)
    success = is_success(snaps[-1], config)
    if not success:
        raise RuntimeError(f"episode seed={seed} quality={quality} did not succeed")
    snap = np.stack(snaps)
    T = len(snaps)
    stages = np.array([stage_of(x, config) for x in snap])
    columns = {
        "observation.state": snap[:, :PROPRIO_DIM].astype(np.float32),
        "observation.environment_state": snap[:, PROPRIO_DIM:STATE_DIM].astype(np.float32),
        "action": np.stack(actions).astype(np.float32),
        "progress": np.array([progress_of(x, config) for x in snap], dtype=np.float32),
        "progress_gt": (np.arange(T) / max(T - 1, 1)).astype(np.float32),
        "stage_progress_gt": stage_progress(stages),
        "intervention": np.array(interv, dtype=np.int64),
        SUCCESS: np.full(T, int(success), dtype=np.int64),
        QUALITY: np.full(T, QUALITIES.index(quality), dtype=np.int64),
    }
    return DemoEpisode(
        seed=int(seed),
        quality=quality,
        success=success,
        length=T,
        columns=columns,
        snapshots=snap,
        config=config,
        stage_edges=tuple(int(x) for x in stage_edges(stages)),
    )


def generate_mix(
    config: DemoTaskConfig, n_episodes: int, mix: dict[str, float], seed: int
) -> list[tuple[int, str]]:
    """Deterministic dataset plan: ``n_episodes`` (episode_seed, quality) pairs.

    Quality counts follow the fractions of ``mix`` (largest remainder); the
    order is shuffled and episode seeds are distinct, all from ``seed``.
    """
    names = [q for q in mix if mix[q] > 0]
    for q in names:
        if q not in QUALITIES:
            raise ValueError(f"unknown quality {q!r}")
    w = np.array([mix[q] for q in names], dtype=np.float64)
    w = w / w.sum()
    raw = w * n_episodes
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n_episodes - counts.sum()]:
        counts[i] += 1
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xD47A])
    qualities = [q for q, c in zip(names, counts) for _ in range(c)]
    order = rng.permutation(len(qualities))
    seeds = rng.choice(2**31 - 1, size=len(qualities), replace=False)
    return [(int(seeds[i]), qualities[j]) for i, j in enumerate(order)]


@dataclass(frozen=True)
class RolloutResult:
    """Closed-loop evaluation outcome: success, final true progress, steps taken."""

    success: bool
    final_progress: float
    steps: int


def rollout(
    task: DemoTask,
    policy_fn: Callable[[Observation], np.ndarray],
    seed: int,
    max_steps: int | None = None,
) -> RolloutResult:
    """Run ``policy_fn(observation) -> action`` from ``task.reset(seed)`` until
    success or ``max_steps`` (default ``task.config.max_steps``) steps."""
    limit = task.config.max_steps if max_steps is None else int(max_steps)
    obs = task.reset(seed)
    steps = 0
    while not task.success and steps < limit:
        obs = task.step(np.asarray(policy_fn(obs), dtype=np.float32))
        steps += 1
    return RolloutResult(success=task.success, final_progress=task.progress, steps=steps)
