"""Training data of the advantage estimator: a deterministic sample plan, decoded one
episode at a time in order, shuffled across episodes in a bounded buffer.

The seed decodes every sampled frame by seeking into the video, twice per pair. Here a
*plan* first picks, for a chunk of episodes, all sample indices (current frame t and
comparison frame t' != t of the same episode) from a seeded RNG; a worker process then
decodes each episode of the chunk once, in order, collecting only the frames the plan
needs, and shuffles the chunk's samples. The plan depends only on (seed, epoch, rank,
chunk), so resuming at step s skips planned samples without decoding them, and the
stream is the same whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from functools import partial

import numpy as np

from adv_pipeline.labeling.returns import SUCCESS_FIX, monte_carlo_returns
from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader
from adv_pipeline.loader import ChunkLoader
from adv_pipeline.schema import STAGE_PROGRESS, SUCCESS, base_task

from .config import DataConfig, EstimatorConfig


@dataclass(frozen=True)
class ChunkPlan:
    """Samples of one chunk of episodes, already in their shuffled order.

    Attributes:
        index: position of the chunk in the stream (0, 1, ...).
        episode: (n,) episode index of each sample.
        current: (n,) current frame t.
        compare: (n,) comparison frame t' (= t for single-timestep models).
        target: (n,) float32 regression target.
        end: (n,) bool, samples whose current frame ``end_frame_fraction`` drew from the
            episode's last frames (the auxiliary action loss leaves them out, so that what
            acting learns sees the frames as drawn before).
    """

    index: int
    episode: np.ndarray
    current: np.ndarray
    compare: np.ndarray
    target: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.current)


@dataclass(frozen=True)
class Batch:
    """images: (B, T, K, H, W, 3) uint8 (T = comparison, current); target: (B,) float32;
    state: (B, T, S) float32 at the same frames, or None without a state input;
    task: (B,) int64 ``task_index`` of the current frame; action: (B, A) float32 at the
    current frame (the auxiliary action loss), or None; action_weight: (B,) float32 weight
    of each sample in the action loss (0 for :attr:`ChunkPlan.end` samples), or None (1)."""

    images: np.ndarray
    target: np.ndarray
    state: np.ndarray | None = None
    task: np.ndarray | None = None
    action: np.ndarray | None = None
    action_weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, rows: slice) -> Batch:
        def part(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[rows]

        return Batch(*(part(getattr(self, f.name)) for f in fields(Batch)))


def concat_batches(batches: Sequence[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]

    def cat(name: str) -> np.ndarray | None:
        parts = [getattr(b, name) for b in batches]
        return None if parts[0] is None else np.concatenate(parts)

    return Batch(*(cat(f.name) for f in fields(Batch)))


def episode_progress(dataset: LeRobotDatasetReader, read: bool = True) -> dict[int, np.ndarray]:
    """``stage_progress_gt`` per episode, checked: finite, in [0, 1], >= 2 frames
    (``read=False``: only the length check; an empty dict)."""
    if read:
        dataset.require_column(
            STAGE_PROGRESS,
            ", needed as the estimator's training target",
            "annotate stage progress (see docs/semantics.md) or train on a dataset that has it",
        )
    short = [ep for ep in dataset.episodes if ep.length < 2]
    if short:
        ep = short[0]
        raise DatasetFormatError(
            f"{dataset.data_path(ep.episode_index)}: episode {ep.episode_index} has {ep.length} "
            f"frame; the estimator pairs each "
            "frame with another frame of the same episode. Fix: drop episodes shorter than 2 frames"
        )
    if not read:
        return {}
    sp = dataset.read_columns([STAGE_PROGRESS])[STAGE_PROGRESS]
    dataset.check_array(
        STAGE_PROGRESS, sp, ", needed as the estimator's training target", (0.0, 1.0)
    )
    sp = sp.astype(np.float32).reshape(-1)
    return {
        ep.episode_index: sp[dataset.offsets[pos] : dataset.offsets[pos + 1]]
        for pos, ep in enumerate(dataset.episodes)
    }


def episode_returns(
    dataset: LeRobotDatasetReader, penalty: float
) -> tuple[dict[int, np.ndarray], dict[str, float]]:
    """The returns target: each episode's normalised Monte Carlo return (float32 (n,) in
    [-1, 0]; -1 per frame, ``penalty`` more at a failed episode's last frame, divided by
    its task's largest ``length + penalty * failed``) and those normalisers by task text
    (saved with the checkpoint: Stage 2's rewards use them). Needs ``success``."""
    why = ", needed because estimator.model.target=returns (each episode's outcome)"
    dataset.require_column(SUCCESS, why, SUCCESS_FIX)
    data = dataset.read_columns([SUCCESS, "task_index"])
    dataset.check_array(SUCCESS, data[SUCCESS], f" (a 0/1 flag){why}", (0, 1))
    offsets = np.asarray(dataset.offsets, dtype=np.int64)
    flag = np.asarray(data[SUCCESS]).reshape(len(data[SUCCESS]), -1)[:, 0]
    failed = flag[offsets[:-1]] == 0
    bases = [base_task(t) for t in dataset.tasks]
    names = list(dict.fromkeys(bases))
    episode_task = np.array(
        [names.index(bases[int(t)]) for t in np.asarray(data["task_index"])[offsets[:-1]]],
        dtype=np.int64,
    )
    g, _, scale = monte_carlo_returns(offsets, failed, episode_task, penalty)
    g = g.astype(np.float32)
    targets = {
        ep.episode_index: g[offsets[pos] : offsets[pos + 1]]
        for pos, ep in enumerate(dataset.episodes)
    }
    scales = {names[int(t)]: float(s) for t, s in zip(episode_task, scale)}
    return targets, scales


def check_training_inputs(
    dataset: LeRobotDatasetReader, config: EstimatorConfig
) -> dict[int, np.ndarray]:
    """Every check of Stage 1's input, before anything is written: the cameras exist, the
    target (stage progress, or returns: :func:`episode_returns`) is finite and in range
    with >= 2 frames per episode, the state column (if any) exists and is finite. Returns
    the target per episode."""
    progress = episode_progress(dataset, config.model.target == "progress")
    if config.model.target == "returns":
        progress = episode_returns(dataset, config.model.failure_penalty)[0]
    dataset.resolve_cameras(config.data.cameras)
    for column in config.data.state or ():
        why = f", needed because estimator.data.state={list(config.data.state)}"
        dataset.require_column(
            column, why, "set estimator.data.state to the dataset's state column(s), or null"
        )
        dataset.check_values([column], why)
    if config.data.action is not None:
        why = f", needed because estimator.data.action={config.data.action}"
        dataset.require_column(
            config.data.action, why, "set estimator.data.action to the action column, or null"
        )
        dataset.check_values([config.data.action], why)
    return progress


def _concat(columns: dict[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """(n, S) float32: the columns ``keys`` side by side, each flattened per frame."""
    return np.concatenate([columns[k].reshape(len(columns[k]), -1) for k in keys], axis=1).astype(
        np.float32
    )


def state_statistics(
    dataset: LeRobotDatasetReader, columns: Sequence[str], episodes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(S,) mean and std of the (checked, see :func:`check_training_inputs`) state
    columns, concatenated, over ``episodes``; std floored at 1e-2 so constant dimensions
    stay finite."""
    x = _concat(dataset.read_columns(list(columns), episodes), columns).astype(np.float64)
    return x.mean(axis=0).astype(np.float32), np.maximum(x.std(axis=0), 1e-2).astype(np.float32)


def episode_inputs(
    dataset: LeRobotDatasetReader,
    episode: int,
    columns: Sequence[str] | None,
    action: str | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """The per-frame inputs of one episode besides the images, in one parquet read:
    (n, S) float32 state (``columns`` side by side; None when there are none), (n,) int64
    ``task_index``, and (n, A) float32 ``action`` column (None when not asked for)."""
    wanted = [*(columns or ()), *([action] if action else []), "task_index"]
    cols = dataset.read_episode(int(episode), wanted)
    tasks = cols["task_index"].reshape(-1).astype(np.int64)
    state = _concat(cols, columns) if columns else None
    return state, tasks, (_concat(cols, [action]) if action else None)


def sample_pairs(
    rng: np.random.Generator,
    length: int,
    n: int,
    paired: bool,
    first_frame_fraction: float = 0.0,
    end_frame_fraction: float = 0.0,
    end_frames: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n (current, comparison) frame indices of an episode of ``length`` frames.

    Current frames are uniform in [0, length) and, if paired, comparison frames uniform
    over the other frames of the episode (never equal to the current frame); a share
    ``first_frame_fraction`` of the pairs compares with frame 0 instead (current frame
    uniform in [1, length)). A share ``end_frame_fraction`` of the samples that train
    Stage 2's ``absolute_value`` (paired: those compared with frame 0; unpaired: all)
    takes its current frame uniformly from the last ``end_frames`` frames instead.

    Returns (current, comparison, end): (n,) int64 each and the (n,) bool mask of the
    samples the end draw moved.
    """
    t = rng.integers(0, length, n)
    if not paired:
        absolute = np.ones(n, dtype=bool)
        compare = None
    else:
        compare = (t + rng.integers(1, length, n)) % length
        absolute = rng.random(n) < first_frame_fraction
        t[absolute] = rng.integers(1, length, int(absolute.sum()))
        compare[absolute] = 0
    end = np.zeros(n, dtype=bool)
    if end_frame_fraction > 0:  # drawn only when asked: the seed's stream stays the same
        end = absolute & (rng.random(n) < end_frame_fraction)
        t[end] = rng.integers(max(int(paired), length - end_frames), length, int(end.sum()))
    return t, (t.copy() if compare is None else compare), end


def targets(
    progress: np.ndarray, current: np.ndarray, compare: np.ndarray, paired: bool
) -> np.ndarray:
    """KAI0: ``clip(sp[t] - sp[t'], -1, 1)``; PI06: ``sp[t]`` (docs/semantics.md, Stage 1)."""
    if paired:
        return np.clip(progress[current] - progress[compare], -1.0, 1.0).astype(np.float32)
    return progress[current].astype(np.float32)


def plan_stream(
    progress: dict[int, np.ndarray],
    episodes: Sequence[int],
    config: DataConfig,
    paired: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[ChunkPlan]:
    """Endless stream of chunk plans for one rank: per epoch, a seeded permutation of the
    training episodes, this rank's share ``perm[rank::world_size]``, in chunks of
    ``episodes_per_chunk`` episodes, ``samples_per_episode`` samples each, shuffled."""
    episodes = list(episodes)
    if len(episodes) < world_size:
        raise ValueError(
            f"{len(episodes)} training episodes cannot be shared by {world_size} processes"
        )
    index = 0
    epoch = 0
    while True:
        perm = np.random.default_rng([seed, epoch]).permutation(episodes)
        mine = perm[rank::world_size]
        for j in range(0, len(mine), config.episodes_per_chunk):
            rng = np.random.default_rng([seed, epoch, rank, j])
            eps, cur, cmp, tgt, end = [], [], [], [], []
            for ep in mine[j : j + config.episodes_per_chunk]:
                sp = progress[int(ep)]
                t, tc, te = sample_pairs(
                    rng,
                    len(sp),
                    config.samples_per_episode,
                    paired,
                    config.first_frame_fraction,
                    config.end_frame_fraction,
                    config.end_frames,
                )
                eps.append(np.full(len(t), ep, dtype=np.int64))
                cur.append(t)
                cmp.append(tc)
                tgt.append(targets(sp, t, tc, paired))
                end.append(te)
            order = rng.permutation(sum(len(t) for t in cur))
            yield ChunkPlan(
                index,
                np.concatenate(eps)[order],
                np.concatenate(cur)[order],
                np.concatenate(cmp)[order],
                np.concatenate(tgt)[order],
                np.concatenate(end)[order],
            )
            index += 1
        epoch += 1


def camera_frames(
    dataset: LeRobotDatasetReader, episode: int, frames: np.ndarray, config: DataConfig
) -> np.ndarray:
    """uint8 (m, K, H, W, 3): frames ``frames`` of ``episode`` for the K cameras of
    ``config`` (K = 0: a state-only estimator, nothing decoded)."""
    h, w = config.image_size
    if not config.cameras:
        return np.empty((len(frames), 0, h, w, 3), np.uint8)
    decoded = dataset.get_frames(episode, frames, cameras=config.cameras, size=(h, w))
    return np.stack([decoded[key] for key in decoded], axis=1)


def decode_chunk(
    dataset: LeRobotDatasetReader, plan: ChunkPlan, config: DataConfig, paired: bool
) -> Batch:
    """All samples of a chunk: each episode decoded once, in order, only the frames the
    plan needs. Memory: the chunk's samples (not the episodes' lengths)."""
    n = len(plan)
    h, w = config.image_size
    k = len(config.cameras)
    t_steps = 2 if paired else 1
    images = np.empty((n, t_steps, k, h, w, 3), dtype=np.uint8)
    task = np.empty(n, dtype=np.int64)
    state = action = None
    for ep in np.unique(plan.episode):
        rows = np.flatnonzero(plan.episode == ep)
        wanted = np.unique(np.concatenate([plan.compare[rows], plan.current[rows]]))
        stacked = camera_frames(dataset, int(ep), wanted, config)  # (m, K, H, W, 3)
        if paired:
            images[rows, 0] = stacked[np.searchsorted(wanted, plan.compare[rows])]
        images[rows, t_steps - 1] = stacked[np.searchsorted(wanted, plan.current[rows])]
        ep_state, ep_tasks, ep_action = episode_inputs(
            dataset, int(ep), config.state, config.action
        )
        task[rows] = ep_tasks[plan.current[rows]]
        if ep_action is not None:
            if action is None:
                action = np.empty((n, ep_action.shape[1]), dtype=np.float32)
            action[rows] = ep_action[plan.current[rows]]
        if ep_state is not None:
            if state is None:
                state = np.empty((n, t_steps, ep_state.shape[1]), dtype=np.float32)
            if paired:
                state[rows, 0] = ep_state[plan.compare[rows]]
            state[rows, t_steps - 1] = ep_state[plan.current[rows]]
    weight = None if action is None else (~plan.end).astype(np.float32)
    return Batch(images, plan.target.copy(), state, task, action, weight)


def TrainLoader(
    dataset: LeRobotDatasetReader,
    progress: dict[int, np.ndarray],
    episodes: Sequence[int],
    config: DataConfig,
    paired: bool,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> ChunkLoader[ChunkPlan, Batch]:
    """Batches of ``batch_size`` training samples of this rank, in the plan's order, from
    ``start_step`` on (the project's :class:`~adv_pipeline.loader.ChunkLoader` over
    :func:`plan_stream`, decoding with :func:`decode_chunk`); the batches do not depend
    on ``config.num_workers``."""
    return ChunkLoader(
        dataset,
        plan_stream(progress, episodes, config, paired, seed, rank, world_size),
        partial(decode_chunk, config=config, paired=paired),
        concat_batches,
        batch_size,
        workers=config.num_workers,
        prefetch=config.prefetch_chunks,
        skip=int(start_step) * int(batch_size),
    )


@dataclass(frozen=True)
class ValidationSet:
    """Frames of held-out episodes for validation.

    Attributes:
        episodes: episode indices.
        frames: per episode, the evaluated frame indices (every ``val_frame_stride``-th).
        images: per episode, (n, K, H, W, 3) uint8 frames at those indices.
        first: per episode, (K, H, W, 3) uint8 frame 0 (KAI0's comparison frame).
        progress: per episode, (n,) stage progress at those frames.
        states: per episode, (n, S) state at those frames, or None (no state input).
        first_states: per episode, (S,) state at frame 0, or None.
        tasks: per episode, (n,) task_index at those frames.
    """

    episodes: list[int]
    frames: list[np.ndarray]
    images: list[np.ndarray]
    first: list[np.ndarray]
    progress: list[np.ndarray]
    states: list[np.ndarray | None]
    first_states: list[np.ndarray | None]
    tasks: list[np.ndarray]


def load_validation(
    dataset: LeRobotDatasetReader,
    progress: dict[int, np.ndarray],
    episodes: Sequence[int],
    config: DataConfig,
) -> ValidationSet:
    """Decode the validation frames once (bounded by val_episodes_max and the stride)."""
    eps = list(episodes)[: config.val_episodes_max]
    out = ValidationSet([], [], [], [], [], [], [], [])
    for ep in eps:
        sp = progress[ep]
        idx = np.arange(0, len(sp), config.val_frame_stride)
        stacked = camera_frames(dataset, ep, np.union1d(idx, [0]), config)
        out.episodes.append(ep)
        out.frames.append(idx)
        out.images.append(stacked[np.searchsorted(np.union1d(idx, [0]), idx)])
        out.first.append(stacked[0])
        out.progress.append(sp[idx])
        state, tasks, _ = episode_inputs(dataset, ep, config.state)
        out.states.append(None if state is None else state[idx])
        out.first_states.append(None if state is None else state[0])
        out.tasks.append(tasks[idx])
    return out
