"""Training data in memory: frames, normalised states, action chunks, prompt ids.

Everything is decoded once (video frames area-downsampled to ``image_size``); batches are
then gathered by index. The batch of step ``s`` depends only on ``(seed, s)``, so a
resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader
from adv_pipeline.schema import base_task

from .config import DataConfig
from .images import downsample
from .normalize import NormStats
from .tokenizer import HashTokenizer

DECODE_THREADS = 2


@dataclass(frozen=True)
class PromptTable:
    """Distinct prompts of a dataset: ``texts[k]`` tokenised as ``ids[k]`` (K, L).

    Frames refer to rows by index; ``uncond[k]`` is the row of the plain task text of
    prompt ``k`` (the prompt with its advantage part dropped).
    """

    texts: tuple[str, ...]
    ids: np.ndarray
    uncond: np.ndarray


@dataclass(frozen=True)
class TrainingData:
    """All N training frames of a dataset.

    Attributes:
        images: uint8 (N, C, S, S, 3), cameras in ``camera_keys`` order.
        states: float32 (N, D_state), normalised.
        actions: float32 (N, H, D_action), normalised chunks ``action[i .. i + H - 1]`` of
            the frame's episode, the last action repeated past the episode end.
        action_mask: bool (N, H), False on the repeated padding.
        prompt_index: int32 (N,), row of ``prompts`` used as each frame's prompt.
        prompts: the prompt table.
        tasks: the dataset's tasks (meta/tasks.jsonl order).
        camera_keys: video keys of the cameras.
        state_stats / action_stats: the normalisation statistics.
    """

    images: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    action_mask: np.ndarray
    prompt_index: np.ndarray
    prompts: PromptTable
    tasks: tuple[str, ...]
    camera_keys: tuple[str, ...]
    state_stats: NormStats
    action_stats: NormStats

    def __len__(self) -> int:
        return len(self.states)


def chunk_indices(offsets: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (N, H) of each frame's action chunk and its mask (N, H).

    ``offsets`` (E + 1,) are the episodes' row ranges; indices past an episode's last row
    repeat that row and are masked out.
    """
    lengths = np.diff(offsets)
    n = int(offsets[-1])
    ends = np.repeat(offsets[1:], lengths)  # (N,) one past each frame's episode end
    raw = np.arange(n)[:, None] + np.arange(horizon)[None, :]
    mask = raw < ends[:, None]
    return np.minimum(raw, ends[:, None] - 1), mask


def frame_prompts(
    tasks: list[str], task_index: np.ndarray, prompt_from_task: bool, tokenizer: HashTokenizer
) -> tuple[PromptTable, np.ndarray]:
    """Prompt table and per-frame prompt row: ``tasks[task_index]``, or the plain task
    text of each frame's task when ``prompt_from_task`` is off."""
    bases = [base_task(t) for t in tasks]
    texts = list(dict.fromkeys([*tasks, *bases]))
    row = {t: i for i, t in enumerate(texts)}
    per_task = np.array(
        [row[t] if prompt_from_task else row[b] for t, b in zip(tasks, bases)], dtype=np.int32
    )
    uncond = np.array([row[base_task(t)] for t in texts], dtype=np.int32)
    for t in texts:
        if len(tokenizer.words(t)) > tokenizer.config.max_len:
            raise ValueError(
                f"prompt {t!r} has {len(tokenizer.words(t))} tokens, more than "
                f"awbc.tokenizer.max_len="
                f"{tokenizer.config.max_len} (its advantage part would be cut off). Fix: raise "
                f"max_len"
            )
    ids, _ = tokenizer.encode_batch(texts)
    return PromptTable(tuple(texts), ids, uncond), per_task[np.asarray(task_index, dtype=np.int64)]


def decode_images(reader: LeRobotDatasetReader, camera_keys: list[str], size: int) -> np.ndarray:
    """All frames of all episodes: uint8 (N, C, size, size, 3), episodes in order."""
    if not camera_keys:  # a state-only policy
        return np.zeros((reader.num_frames, 0, size, size, 3), np.uint8)

    def episode(ep: int) -> np.ndarray:
        frames = [
            np.stack([f[k] for k in camera_keys]) for f in reader.iter_frames(ep, camera_keys)
        ]
        if len(frames) != reader.episode(ep).length:
            raise DatasetFormatError(
                f"{reader.root}: episode {ep} decoded {len(frames)} frames but has "
                f"{reader.episode(ep).length} rows. Fix: re-encode its videos"
            )
        return downsample(np.stack(frames), size)

    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        parts = list(pool.map(episode, [int(e) for e in reader.episode_indices]))
    return (
        np.concatenate(parts) if parts else np.zeros((0, len(camera_keys), size, size, 3), np.uint8)
    )


def check_policy_inputs(reader: LeRobotDatasetReader, config: DataConfig) -> None:
    """Every check of Stage 3's input, before anything is written: the cameras exist, and
    the state and action columns exist and are finite."""
    reader.resolve_cameras(list(config.cameras))
    for key, option in (
        (config.state_key, "awbc.data.state_key"),
        (config.action_key, "awbc.data.action_key"),
    ):
        reader.require_column(
            key, f", needed because {option}={key}", f"set {option} to one of the dataset's columns"
        )
    reader.check_values([config.state_key, config.action_key], ", read by the policy")


def load_training_data(
    reader: LeRobotDatasetReader, config: DataConfig, tokenizer: HashTokenizer
) -> TrainingData:
    """Decode and index a LeRobot dataset for training (see :class:`TrainingData`)."""
    check_policy_inputs(reader, config)
    camera_keys = reader.resolve_cameras(list(config.cameras))
    cols = reader.read_columns([config.state_key, config.action_key, "task_index"])
    states, actions = (
        cols[config.state_key].astype(np.float32),
        cols[config.action_key].astype(np.float32),
    )
    if states.ndim != 2 or actions.ndim != 2:
        raise DatasetFormatError(
            f"{reader.root}: columns {config.state_key!r} and {config.action_key!r} must be "
            f"vectors per frame. Fix: set awbc.data.state_key/action_key"
        )
    state_stats, action_stats = NormStats.of(states), NormStats.of(actions)
    idx, mask = chunk_indices(reader.offsets, config.horizon)
    prompts, prompt_index = frame_prompts(
        reader.tasks, cols["task_index"], config.prompt_from_task, tokenizer
    )
    return TrainingData(
        images=decode_images(reader, camera_keys, config.image_size),
        states=state_stats.normalize(states),
        actions=action_stats.normalize(actions)[idx],
        action_mask=mask,
        prompt_index=prompt_index,
        prompts=prompts,
        tasks=tuple(reader.tasks),
        camera_keys=tuple(camera_keys),
        state_stats=state_stats,
        action_stats=action_stats,
    )


def sample_batch(
    data: TrainingData, step: int, batch_size: int, seed: int, prompt_dropout: float
) -> dict[str, np.ndarray]:
    """The global batch of ``step`` (a pure function of seed and step).

    Returns images uint8 (B, C, S, S, 3), state (B, Ds), actions (B, H, Da), mask (B, H),
    tokens int32 (B, L), and the flow's noise (B, H, Da) and time (B,) in (0, 1].
    """
    rng = np.random.default_rng([int(seed), int(step), 0xA7BC])
    idx = rng.integers(0, len(data), batch_size)
    rows = data.prompt_index[idx]
    drop = rng.random(batch_size) < prompt_dropout
    rows = np.where(drop, data.prompts.uncond[rows], rows)
    actions = data.actions[idx]
    return {
        "images": data.images[idx],
        "state": data.states[idx],
        "actions": actions,
        "mask": data.action_mask[idx],
        "tokens": data.prompts.ids[rows],
        "noise": rng.standard_normal(actions.shape).astype(np.float32),
        # pi0's time distribution: Beta(1.5, 1) favours the noisier end (t -> 1)
        "time": (rng.beta(1.5, 1.0, batch_size) * 0.999 + 0.001).astype(np.float32),
    }
