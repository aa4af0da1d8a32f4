"""Training data of the policy, streamed: shapes from info.json, statistics from the
parquet columns, frames decoded episode by episode into a bounded shuffle buffer.

* :func:`prepare_policy_data` checks the dataset against the configuration, splits the
  episodes (train / held out), builds the prompt table and computes the normalisation
  statistics without decoding any video (:class:`PolicyData`, a few numbers per episode).
* :func:`plan_stream` plans, per epoch, a seeded permutation of the training episodes in
  chunks of ``episodes_per_chunk``; each chunk's frames are shuffled together. Every
  process takes its slice of each global batch, so the global batch of step s is the
  same whatever the number of processes (and of loader workers).
* :func:`decode_samples` decodes one chunk: each episode's parquet once and its videos in
  one in-order pass, keeping only the planned frames, downsampled at once.
* :class:`PolicyLoader` runs them on the project's :class:`~adv_pipeline.loader.ChunkLoader`
  (shared with Stage 1); :func:`training_batch` adds prompt dropout, the flow's noise and
  time (a pure function of seed and step) and normalises.

Memory is bounded by the chunks in flight, never by the number of episodes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader
from adv_pipeline.loader import ChunkLoader, split_episodes
from adv_pipeline.schema import advantage_label, base_task

from .config import DataConfig
from .images import downsample
from .normalize import NormStats, column_stats
from .tokenizer import HashTokenizer

TASK_INDEX = "task_index"


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
class DatasetSpec:
    """Shapes the policy is built for, from the dataset's meta/info.json.

    Attributes:
        state_dim / action_dim: length of the state and action vectors.
        state_dims: length of each state column (``state_key`` order).
        camera_keys: video keys of the policy's cameras, in input order.
        camera_shapes: (height, width) of each camera's frames (pixels).
    """

    state_dim: int
    action_dim: int
    camera_keys: tuple[str, ...]
    camera_shapes: tuple[tuple[int, int], ...]
    state_dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class LossWeights:
    """Advantage-weighted regression's sample weights ``min(exp(z / beta), max_weight)``,
    ``z = (advantage - mean) / std`` with the advantage column's mean and std over the
    training frames."""

    mean: float
    std: float
    beta: float
    max_weight: float

    def __call__(self, advantage: np.ndarray) -> np.ndarray:
        """float32 (n,) weights of (n,) advantages."""
        z = (np.asarray(advantage, np.float64) - self.mean) / (self.std * self.beta)
        return np.minimum(np.exp(np.minimum(z, 80.0)), self.max_weight).astype(np.float32)


@dataclass(frozen=True)
class PolicyData:
    """Everything training knows about its dataset before decoding a frame.

    Attributes:
        spec: the shapes (:class:`DatasetSpec`).
        prompts: the prompt table; ``task_prompt[i]``: its row for ``task_index`` i.
        tasks: the dataset's tasks (meta/tasks.jsonl order).
        state_stats / action_stats: normalisation statistics of the training episodes.
        train_episodes / val_episodes: the split (episode indices, sorted).
        lengths: frames of every episode, by episode index.
        data_hash: identifies the training columns, split and prompts (resume refuses
            other data).
        frames: the frames training draws from, per training episode (sorted; None: all
            of them): ``awbc.method: filtered`` keeps the top label's frames.
        weights: how samples are weighted (None: all 1; ``awbc.method: weighted``).
    """

    spec: DatasetSpec
    prompts: PromptTable
    task_prompt: np.ndarray
    tasks: tuple[str, ...]
    state_stats: NormStats
    action_stats: NormStats
    train_episodes: tuple[int, ...]
    val_episodes: tuple[int, ...]
    lengths: Mapping[int, int]
    data_hash: str
    frames: Mapping[int, np.ndarray] | None = None
    weights: LossWeights | None = None


@dataclass(frozen=True)
class FramePlan:
    """Samples of one chunk in their shuffled order: ``episode`` (n,) and ``frame`` (n,)."""

    episode: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Samples:
    """Decoded samples, in dataset units.

    Attributes:
        images: uint8 (n, C, S, S, 3), cameras in ``camera_keys`` order.
        state: float32 (n, D_state).
        actions: float32 (n, H, D_action): ``action[t .. t + H - 1]`` of the frame's
            episode, the last action repeated past the episode end.
        mask: bool (n, H), False on that padding.
        prompt: int32 (n,), the prompt-table row of each frame's task_index.
        advantage: float32 (n,), the frame's ``weight_column`` value (0 without one).
    """

    images: np.ndarray
    state: np.ndarray
    actions: np.ndarray
    mask: np.ndarray
    prompt: np.ndarray
    advantage: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, rows) -> Samples:
        return Samples(
            self.images[rows], self.state[rows], self.actions[rows], self.mask[rows],
            self.prompt[rows], self.advantage[rows],
        )  # fmt: skip


def concat_samples(parts: Sequence[Samples]) -> Samples:
    if len(parts) == 1:
        return parts[0]
    return Samples(
        *(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Samples))
    )


# ---------------------------------------------------------------------------- checks, prompts
def dataset_spec(reader: LeRobotDatasetReader, config: DataConfig) -> DatasetSpec:
    """The shapes from meta/info.json, checked against the configuration: state and action
    are vector columns, the cameras exist and are at least ``image_size`` pixels."""
    features = reader.info["features"]
    dims = []
    for key, option in (
        *((k, "awbc.data.state_key") for k in config.state_key),
        (config.action_key, "awbc.data.action_key"),
    ):
        fix = f"set {option} to one of the dataset's columns"
        if option.endswith("state_key"):
            fix += (
                " (camera features come with a dataset labelled by Stage 2 with "
                "estimation.image_features; without them: awbc.data.state_key: observation.state)"
            )
        reader.require_column(key, f", needed because {option}={key}", fix)
        shape = list(features[key].get("shape", []))
        if len(shape) != 1 or not reader.is_vector_column(key):
            raise DatasetFormatError(
                f"{reader.root}: feature {key!r} has shape {shape} and dtype "
                f"{features[key].get('dtype')} in meta/info.json; the policy needs a float "
                f"vector per frame (shape [D]). Fix: set {option} to a vector column"
            )
        dims.append(int(shape[0]))
    keys = reader.resolve_cameras(list(config.cameras))
    shapes = []
    for key in keys:
        shape = list(features[key].get("shape", []))
        if len(shape) != 3 or shape[2] != 3:
            raise DatasetFormatError(
                f"{reader.root}: camera {key!r} has shape {shape} in meta/info.json; the "
                f"policy needs RGB frames [height, width, 3]. Fix: drop it from awbc.data.cameras"
            )
        h, w = int(shape[0]), int(shape[1])
        if min(h, w) < config.image_size:
            raise DatasetFormatError(
                f"{reader.root}: camera {key!r} is {h}x{w} pixels, smaller than "
                f"awbc.data.image_size={config.image_size} (frames are only ever reduced). "
                f"Fix: set awbc.data.image_size to at most {min(h, w)}"
            )
        shapes.append((h, w))
    return DatasetSpec(sum(dims[:-1]), dims[-1], tuple(keys), tuple(shapes), tuple(dims[:-1]))


def check_policy_inputs(reader: LeRobotDatasetReader, config: DataConfig) -> DatasetSpec:
    """Every check of Stage 3's input, before anything is written: shapes fit the
    configuration (:func:`dataset_spec`), state and action are finite, the split leaves
    training episodes."""
    spec = dataset_spec(reader, config)
    reader.require_column(
        TASK_INDEX, ", the prompt of each frame", "write the dataset with LeRobot's task_index"
    )
    checked = [*config.state_key, config.action_key]
    if config.weight_column is not None:
        column = config.weight_column
        reader.require_column(
            column,
            ", needed because awbc.method=weighted weights each frame by it",
            "label the dataset with Stage 2 (it writes absolute_advantage), or set "
            "awbc.weighted.column to a float column of the dataset",
        )
        if column not in reader.float_columns():
            raise DatasetFormatError(
                f"{reader.root}: column {column!r} holds "
                f"{reader.features[column].get('dtype')} values; awbc.method=weighted needs "
                f"one float advantage per frame. Fix: set awbc.weighted.column to a float column"
            )
        checked.append(column)
    reader.check_values(checked, ", read by the policy")
    if config.top_label_only:
        top_label(reader.tasks, reader.root)
    train, _ = split_episodes(reader.episode_indices.tolist(), config.val_fraction, config.val_seed)
    if not train:
        raise DatasetFormatError(
            f"{reader.root}: no training episode is left after holding out "
            f"awbc.data.val_fraction={config.val_fraction} of {reader.num_episodes}. "
            f"Fix: lower val_fraction"
        )
    return spec


def eval_world(reader: LeRobotDatasetReader, config) -> str | None:
    """The world closed-loop rollouts run in (``awbc.eval.env``, ``closed_loop``): the one
    named, or with ``env: auto`` the one that recorded the dataset (its info.json
    robot_type); None: no rollouts. ``closed_loop: true`` without a world is refused."""
    from adv_pipeline.worlds import make_world, world_for_robot_type, world_names

    if config.closed_loop is False:
        return None
    recorded = reader.info.get("robot_type")
    name = world_for_robot_type(recorded) if config.env == "auto" else config.env
    if name is not None and name not in world_names():
        make_world(name, {})  # refuses, naming the known worlds
    if name is None and config.closed_loop is True:
        raise DatasetFormatError(
            f"{reader.root}: awbc.eval.closed_loop=true, but no world recorded the dataset "
            f"(meta/info.json robot_type {recorded!r}) and awbc.eval.env is auto; no simulator "
            f"can replay its observations. Fix: name the world in awbc.eval.env "
            f"({', '.join(world_names())}), or set closed_loop to auto or false (offline "
            f"metrics are reported instead)"
        )
    return name


def curated_episodes(
    reader: LeRobotDatasetReader, episodes: Sequence[int], config: DataConfig
) -> list[int]:
    """The episodes of ``episodes`` whose first frame's ``config.keep_column`` value is in
    ``config.keep_values`` (all of them when no column is set)."""
    if config.keep_column is None:
        return list(episodes)
    reader.require_column(
        config.keep_column,
        "awbc.curated.column names it (the curated-BC baseline)",
        "record a per-episode quality column, or set awbc.curated.column: null",
    )
    values = reader.read_columns([config.keep_column], episodes)[config.keep_column]
    firsts = np.cumsum([0, *(reader.episode(int(e)).length for e in episodes)])[:-1]
    keep = np.isin(np.asarray(values)[firsts], np.asarray(config.keep_values))
    return [int(e) for e, k in zip(episodes, keep) if k]


def top_label(tasks: Sequence[str], root=None) -> str:
    """The top advantage label of a labelled dataset's prompts (``tasks[-1]``'s, e.g.
    ``positive``); refused when the prompts carry none (``awbc.method: filtered``)."""
    label = advantage_label(tasks[-1]) if tasks else None
    if label is None:
        raise DatasetFormatError(
            f"{root}: meta/tasks prompts carry no advantage label ({tasks[-1:]}); "
            f"awbc.method=filtered trains on the top label's frames only. Fix: train on a "
            f"dataset labelled by Stage 0 or Stage 2, or set awbc.method to prompt or weighted"
        )
    return label


def top_label_frames(
    tasks: Sequence[str], task_index: np.ndarray, lengths: Sequence[int], episodes: Sequence[int]
) -> dict[int, np.ndarray]:
    """Per episode, the sorted frames whose prompt carries the top label (int64); episodes
    with none are left out. ``task_index``: the episodes' rows, concatenated in order."""
    top = top_label(tasks)
    keep = np.array([advantage_label(t) == top for t in tasks])[np.asarray(task_index)]
    out = {}
    for ep, part in zip(episodes, np.split(keep, np.cumsum(lengths)[:-1])):
        f = np.flatnonzero(part)
        if len(f):
            out[int(ep)] = f.astype(np.int64)
    return out


def frame_prompts(
    tasks: Sequence[str], prompt_from_task: bool, tokenizer: HashTokenizer
) -> tuple[PromptTable, np.ndarray]:
    """Prompt table and the row of each task_index: ``tasks[i]``, or its plain task text
    when ``prompt_from_task`` is off."""
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
                f"awbc.tokenizer.max_len={tokenizer.config.max_len} (its advantage part would be "
                f"cut off). Fix: raise max_len"
            )
    ids, _ = tokenizer.encode_batch(texts)
    return PromptTable(tuple(texts), ids, uncond), per_task


def prepare_policy_data(
    reader: LeRobotDatasetReader, config: DataConfig, tokenizer: HashTokenizer
) -> PolicyData:
    """Check, split, prompts and statistics (see :class:`PolicyData`); reads only parquet
    columns, ``EPISODES_PER_READ`` episodes at a time."""
    spec = check_policy_inputs(reader, config)
    train, val = split_episodes(
        reader.episode_indices.tolist(), config.val_fraction, config.val_seed
    )
    train = curated_episodes(reader, train, config)
    if not train:
        raise DatasetFormatError(
            f"{reader.root}: no training episode has {config.keep_column} in "
            f"{list(config.keep_values)} (awbc.curated). Fix: keep values the dataset has"
        )
    prompts, task_prompt = frame_prompts(reader.tasks, config.prompt_from_task, tokenizer)
    h = hashlib.sha256()
    weighted = [config.weight_column] if config.weight_column is not None else []
    columns = [*config.state_key, config.action_key, *weighted, TASK_INDEX]
    task_index: list[np.ndarray] = []

    def digest(cols: dict[str, np.ndarray]) -> None:
        for c in columns:
            h.update(np.ascontiguousarray(cols[c]).tobytes())
        task_index.append(cols[TASK_INDEX])

    stats = column_stats(reader, columns[:-1], train, on_batch=digest, also=columns[-1:])
    h.update(repr((train, val, prompts.texts, task_prompt.tolist())).encode())
    lengths = {int(e.episode_index): int(e.length) for e in reader.episodes}
    frames = None
    if config.top_label_only:
        frames = top_label_frames(
            reader.tasks, np.concatenate(task_index), [lengths[e] for e in train], train
        )
        if not frames:
            raise DatasetFormatError(
                f"{reader.root}: no training frame carries the top advantage label "
                f"{top_label(reader.tasks)!r}; awbc.method=filtered has nothing to train on. "
                f"Fix: label the dataset with a threshold that keeps frames, or another method"
            )
        train = sorted(frames)
    weights = None
    if weighted:
        w = stats[config.weight_column]
        weights = LossWeights(
            float(w.mean[0]), float(w.std[0]), config.weight_beta, config.weight_max
        )
    return PolicyData(
        spec=spec,
        prompts=prompts,
        task_prompt=task_prompt,
        tasks=tuple(reader.tasks),
        state_stats=NormStats.concat(
            [stats[k] for k in config.state_key], config.state_normalization
        ),
        action_stats=stats[config.action_key].with_mode(config.normalization),
        train_episodes=tuple(train),
        val_episodes=tuple(val),
        lengths=lengths,
        data_hash=h.hexdigest()[:16],
        frames=frames,
        weights=weights,
    )


# ---------------------------------------------------------------------------- plans, decoding
def plan_stream(
    lengths: Mapping[int, int],
    episodes: Sequence[int],
    config: DataConfig,
    seed: int,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    frames: Mapping[int, np.ndarray] | None = None,
) -> Iterator[FramePlan]:
    """Endless chunk plans of one process (see the module docstring).

    The global stream: per epoch e, ``permutation(episodes)`` seeded by (seed, e), cut
    into chunks of ``episodes_per_chunk`` episodes; a chunk holds all frames of its
    episodes (or ``frames_per_episode`` drawn without replacement; only ``frames[ep]``
    when given), shuffled. Global
    sample g belongs to batch ``g // batch_size``; process ``rank`` keeps the samples at
    positions ``[rank * b, (rank + 1) * b)`` of each batch, ``b = batch_size // world_size``.
    """
    eps = np.asarray(sorted(int(e) for e in episodes), dtype=np.int64)
    per = batch_size // world_size
    g, epoch, k = 0, 0, config.frames_per_episode
    while True:
        perm = np.random.default_rng([seed, epoch, 0x9A7]).permutation(eps)
        for j in range(0, len(perm), config.episodes_per_chunk):
            rng = np.random.default_rng([seed, epoch, j, 0x9A7])
            ep_parts, fr_parts = [], []
            for ep in perm[j : j + config.episodes_per_chunk]:
                f = np.arange(lengths[int(ep)]) if frames is None else frames[int(ep)]
                n = len(f)
                if k is not None and k < n:
                    f = f[np.sort(rng.choice(n, k, replace=False))]
                ep_parts.append(np.full(len(f), ep, dtype=np.int64))
                fr_parts.append(f.astype(np.int64))
            order = rng.permutation(sum(len(f) for f in fr_parts))
            episode, frame = np.concatenate(ep_parts)[order], np.concatenate(fr_parts)[order]
            if world_size > 1:
                mine = ((g + np.arange(len(frame))) % batch_size) // per == rank
                episode, frame = episode[mine], frame[mine]
            g += len(order)
            yield FramePlan(episode, frame)
        epoch += 1


def episode_frames(
    reader: LeRobotDatasetReader,
    episode: int,
    camera_keys: Sequence[str],
    frames: np.ndarray,
    size: int,
) -> np.ndarray:
    """uint8 (m, C, size, size, 3) at the sorted distinct ``frames`` of one episode: each
    video decoded in one forward pass (dense runs straight through, gaps seeked over),
    each kept frame downsampled at once (full-resolution frames never pile up)."""
    frames = np.asarray(frames, dtype=np.int64)
    out = np.empty((len(frames), len(camera_keys), size, size, 3), np.uint8)
    n = 0
    if camera_keys and len(frames):
        for n, got in enumerate(reader.iter_frames_at(episode, frames, camera_keys), 1):
            out[n - 1] = downsample(np.stack([got[k] for k in camera_keys]), size)
        if n != len(frames):
            raise DatasetFormatError(
                f"{reader.root}: episode {episode}'s videos end before frame {int(frames[n])} "
                f"(the episode has {reader.episode(episode).length} rows). Fix: re-encode them"
            )
    return out


def decode_samples(
    reader: LeRobotDatasetReader,
    plan: FramePlan,
    config: DataConfig,
    camera_keys: tuple[str, ...],
    task_prompt: np.ndarray,
) -> Samples:
    """The planned samples (see :class:`Samples`): per episode, its parquet columns once
    and its videos in one pass. Memory: the chunk's samples, not the episodes' videos."""
    n, h, s = len(plan), config.horizon, config.image_size
    out: Samples | None = None
    for ep in np.unique(plan.episode):
        rows = np.flatnonzero(plan.episode == ep)
        weighted = [config.weight_column] if config.weight_column is not None else []
        cols = reader.read_episode(
            int(ep), [*config.state_key, config.action_key, TASK_INDEX, *weighted]
        )
        state = np.concatenate([cols[k].reshape(len(cols[k]), -1) for k in config.state_key], 1)
        action = cols[config.action_key]
        if out is None:
            out = Samples(
                np.empty((n, len(camera_keys), s, s, 3), np.uint8),
                np.empty((n, state.shape[1]), np.float32),
                np.empty((n, h, action.shape[1]), np.float32),
                np.empty((n, h), bool),
                np.empty(n, np.int32),
                np.zeros(n, np.float32),
            )
        f = plan.frame[rows]
        idx = f[:, None] + np.arange(h)[None, :]
        out.state[rows] = state[f]
        out.actions[rows] = action[np.minimum(idx, len(action) - 1)]
        out.mask[rows] = idx < len(action)
        out.prompt[rows] = task_prompt[cols[TASK_INDEX][f]]
        if weighted:
            out.advantage[rows] = cols[config.weight_column].reshape(-1)[f]
        if camera_keys:
            wanted = np.unique(f)
            images = episode_frames(reader, int(ep), camera_keys, wanted, s)
            out.images[rows] = images[np.searchsorted(wanted, f)]
    if out is None:  # a process's share of a chunk can be empty
        return Samples(
            np.empty((0, len(camera_keys), s, s, 3), np.uint8), np.empty((0, 0), np.float32),
            np.empty((0, h, 0), np.float32), np.empty((0, h), bool), np.empty(0, np.int32),
            np.empty(0, np.float32),
        )  # fmt: skip
    return out


def PolicyLoader(
    reader: LeRobotDatasetReader,
    data: PolicyData,
    config: DataConfig,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    workers: int = 1,
    prefetch: int = 2,
    rank: int = 0,
    world_size: int = 1,
) -> ChunkLoader[FramePlan, Samples]:
    """This process's ``batch_size // world_size`` samples of each global training batch,
    from ``start_step`` on (:class:`~adv_pipeline.loader.ChunkLoader` over
    :func:`plan_stream` and :func:`decode_samples`)."""
    per = batch_size // world_size
    return ChunkLoader(
        reader,
        plan_stream(
            data.lengths,
            data.train_episodes,
            config,
            seed,
            batch_size,
            rank,
            world_size,
            data.frames,
        ),  # fmt: skip
        partial(
            decode_samples,
            config=config,
            camera_keys=data.spec.camera_keys,
            task_prompt=data.task_prompt,
        ),
        concat_samples,
        per,
        workers=workers,
        prefetch=prefetch,
        skip=int(start_step) * per,
    )


def training_batch(
    samples: Samples,
    data: PolicyData,
    step: int,
    batch_size: int,
    seed: int,
    prompt_dropout: float,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, np.ndarray]:
    """This process's part of the batch of ``step``, normalised, with its random parts
    drawn for the whole global batch from ``(seed, step)`` and sliced (so they do not
    depend on the number of processes).

    Returns images uint8 (b, C, S, S, 3), state (b, Ds), actions (b, H, Da), mask (b, H),
    tokens int32 (b, L), the flow's noise (b, H, Da), time (b,) in (0, 1] and the loss
    weight (b,) (:class:`LossWeights`; 1 without them).
    """
    rng = np.random.default_rng([int(seed), int(step), 0xA7BC])
    per = batch_size // world_size
    mine = slice(rank * per, (rank + 1) * per)
    drop = (rng.random(batch_size) < prompt_dropout)[mine]
    h, d = samples.actions.shape[1:]
    noise = rng.standard_normal((batch_size, h, d)).astype(np.float32)[mine]
    # pi0's time distribution: Beta(1.5, 1) favours the noisier end (t -> 1)
    time = (rng.beta(1.5, 1.0, batch_size) * 0.999 + 0.001).astype(np.float32)[mine]
    rows = np.where(drop, data.prompts.uncond[samples.prompt], samples.prompt)
    return {
        "images": samples.images,
        "state": data.state_stats.normalize(samples.state),
        "actions": data.action_stats.normalize(samples.actions),
        "mask": samples.mask,
        "tokens": data.prompts.ids[rows],
        "noise": noise,
        "time": time,
        # equal weights are exactly 1 after the loss divides by the batch's largest: BC
        "weight": (
            data.weights(samples.advantage)
            if data.weights is not None
            else np.ones(len(samples), np.float32)
        ),
    }
