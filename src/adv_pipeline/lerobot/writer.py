"""Write LeRobot v2.1 datasets: new ones from generated episodes, derived ones from an
existing dataset (changed/added columns, new tasks) with the videos linked.

Every write goes to a hidden temporary directory beside the destination and is renamed
into place at the end (:func:`adv_pipeline.outputs.atomic_directory`), so a failed run
leaves no half dataset and never touches its input; the destination is replaced only if
this project wrote it, and never when it is, holds or lies inside the input. Metadata (episodes.jsonl tasks, info.json totals, episodes_stats, stats.json) is
regenerated from what was written, so it stays true.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from adv_pipeline.crash import die_with_parent, failpoint
from adv_pipeline.outputs import DATASET, atomic_directory, temporary_path

from .format import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNKS_SIZE,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    INDEX_FEATURES,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    camera_name,
    data_relpath,
    video_keys,
    video_relpath,
)
from .reader import LeRobotDatasetReader, column_to_numpy
from .stats import Stats, aggregate_stats, column_stats, sample_indices, segment_stats, stats_to_json, video_stats
from .video import VideoOptions, VideoWriter

IMAGE_KEY_PREFIX = "observation.images."


class EpisodeData(Protocol):
    """What a generated episode gives the writer.

    ``columns`` holds the non-video features, (T,) or (T, D) arrays; ``iter_frames``
    yields ``{camera: (H, W, 3) uint8}`` frame by frame (camera = short name such as
    ``top_head`` or the full video key).
    """

    length: int
    columns: Mapping[str, np.ndarray]

    def iter_frames(self) -> Iterator[Mapping[str, np.ndarray]]: ...


# ---------------------------------------------------------------------------- helpers
def feature_spec(values: np.ndarray, names: Sequence[str] | None = None) -> dict:
    """info.json feature entry for a (T,) or (T, D) column."""
    arr = np.asarray(values)
    dtype = "bool" if arr.dtype == np.bool_ else str(arr.dtype)
    shape = [1] if arr.ndim == 1 else list(arr.shape[1:])
    return {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}


def video_feature_spec(height: int, width: int, fps: int, options: VideoOptions) -> dict:
    """info.json entry for a video feature."""
    codec = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "libx265": "hevc"}.get(options.codec, options.codec)
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": codec,
            "video.pix_fmt": options.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def _as_feature_dtype(values: np.ndarray, spec: Mapping) -> np.ndarray:
    return np.asarray(values).astype(np.dtype(spec["dtype"]) if spec["dtype"] != "bool" else np.bool_, copy=False)


def _arrow_column(values: np.ndarray, spec: Mapping) -> pa.Array:
    arr = _as_feature_dtype(values, spec)
    shape = list(spec["shape"])
    if shape == [1]:
        return pa.array(arr.reshape(len(arr)))
    width = int(np.prod(shape))
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(len(arr) * width)), width)


def with_columns(table: pa.Table, columns: Mapping[str, np.ndarray], features: Mapping[str, dict]) -> pa.Table:
    """``table`` with each of ``columns`` replaced in place or appended, typed by ``features``."""
    for name, values in columns.items():
        col = _arrow_column(np.asarray(values), features[name])
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return table


def index_features_last(features: Mapping[str, dict]) -> dict[str, dict]:
    """Features reordered so LeRobot's index columns come last, as in LeRobot's files."""
    return {**{k: v for k, v in features.items() if k not in INDEX_FEATURES}, **{k: features[k] for k in INDEX_FEATURES if k in features}}


def episode_table(columns: Mapping[str, np.ndarray], features: Mapping[str, dict]) -> pa.Table:
    """An episode's parquet table in ``features`` order (video features skipped)."""
    names = [k for k, ft in features.items() if ft["dtype"] not in ("video", "image")]
    missing = [k for k in names if k not in columns]
    if missing:
        raise ValueError(f"episode lacks columns {missing} declared in features")
    return pa.table({k: _arrow_column(columns[k], features[k]) for k in names})


def index_columns(length: int, fps: int, episode_index: int, start_index: int, task_index: np.ndarray | int) -> dict[str, np.ndarray]:
    """LeRobot's bookkeeping columns for one episode of ``length`` frames."""
    frame = np.arange(length, dtype=np.int64)
    return {
        "timestamp": (frame / fps).astype(np.float32),
        "frame_index": frame,
        "episode_index": np.full(length, episode_index, dtype=np.int64),
        "index": start_index + frame,
        "task_index": np.broadcast_to(np.asarray(task_index, dtype=np.int64), (length,)).copy(),
    }


def numeric_stats(columns: Mapping[str, np.ndarray], features: Mapping[str, dict]) -> dict[str, Stats]:
    """Stats of every non-video feature present in ``columns``."""
    return {
        k: column_stats(columns[k])
        for k, ft in features.items()
        if ft["dtype"] not in ("video", "image", "string") and k in columns
    }


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: integers and booleans (indices, flags).

    Float state/action values are nearly all distinct, so pyarrow's default (try a
    dictionary on every column, then fall back) only costs time and space: on 3M frames
    of 14-D state/action, writing is 2.5x faster and the files 30% smaller without it.
    """
    def small_domain(t: pa.DataType) -> bool:
        if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
            return small_domain(t.value_type)
        return pa.types.is_integer(t) or pa.types.is_boolean(t)

    return [f.name for f in schema if small_domain(f.type)]


def write_parquet(path: Path, table: pa.Table, atomic: bool = False) -> None:
    """Write one episode's parquet (snappy; dictionaries only where they pay).

    ``atomic``: write a temporary file beside ``path`` and rename it into place, so a
    reader never sees a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    target = temporary_path(path) if atomic else path
    pq.write_table(table, target, compression="snappy", use_dictionary=_dictionary_columns(table.schema))
    if atomic:
        os.replace(target, path)


def _write_jsonl(path: Path, rows: Sequence[Mapping]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy. Hard links, unlike
    symlinks, survive the source being replaced or deleted and look like plain files."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_meta(
    root: Path,
    info: dict,
    tasks: Sequence[str],
    episodes: Sequence[Mapping],
    episodes_stats: Sequence[Mapping[str, Stats]],
) -> None:
    """Write meta/ from what was written: totals, tasks, per-episode and aggregate stats.

    Args:
        info: info.json without totals (features, fps, paths, robot_type...).
        tasks: task strings; row k of tasks.jsonl is task_index k.
        episodes: rows ``{"episode_index", "tasks", "length"}`` in episode order.
        episodes_stats: per-episode {feature: stats}, same order as ``episodes``.
    """
    n_eps = len(episodes)
    chunks_size = int(info.get("chunks_size", DEFAULT_CHUNKS_SIZE))
    n_videos = len(video_keys(info["features"]))
    last = max((int(e["episode_index"]) for e in episodes), default=-1)
    info = {
        **info,
        "codebase_version": CODEBASE_VERSION,
        "total_episodes": n_eps,
        "total_frames": int(sum(int(e["length"]) for e in episodes)),
        "total_tasks": len(tasks),
        "total_videos": n_eps * n_videos,
        "total_chunks": last // chunks_size + 1 if n_eps else 0,
        "chunks_size": chunks_size,
        "splits": {"train": f"0:{n_eps}"},
    }
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (root / INFO_PATH).write_text(json.dumps(info, indent=4))
    _write_jsonl(root / TASKS_PATH, [{"task_index": i, "task": t} for i, t in enumerate(tasks)])
    _write_jsonl(root / EPISODES_PATH, list(episodes))
    _write_jsonl(
        root / EPISODES_STATS_PATH,
        [{"episode_index": int(e["episode_index"]), "stats": stats_to_json(s)} for e, s in zip(episodes, episodes_stats)],
    )
    (root / STATS_PATH).write_text(json.dumps(stats_to_json(aggregate_stats(episodes_stats)), indent=2))


# ---------------------------------------------------------------------------- new datasets
@dataclass
class _EpisodeResult:
    length: int
    task: str
    columns: dict[str, np.ndarray]
    video_stats: dict[str, Stats]


def _encode_episode(
    factory: Callable[[], EpisodeData], tmp: Path, info: dict, episode_index: int, options: VideoOptions
) -> _EpisodeResult:
    """Build one episode, encode its videos (streaming), return its columns and stats."""
    ep = factory()
    keys = video_keys(info["features"])
    wanted = set(sample_indices(ep.length).tolist())
    sampled: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    writers = {k: VideoWriter(tmp / video_relpath(info, episode_index, k), info["fps"], options) for k in keys}
    try:
        for t, frames in enumerate(ep.iter_frames()):
            for k in keys:
                frame = frames[k] if k in frames else frames[camera_name(k)]
                writers[k].write(frame)
                if t in wanted:
                    sampled[k].append(np.asarray(frame))
    finally:
        for w in writers.values():
            w.close()
    for k, w in writers.items():
        if w.n_frames != ep.length:
            raise ValueError(f"episode {episode_index}: camera {k} gave {w.n_frames} frames for {ep.length} rows")
    vstats = {k: video_stats(np.stack(v), ep.length) for k, v in sampled.items()}
    task = getattr(ep, "task", "")
    return _EpisodeResult(ep.length, task, {k: np.asarray(v) for k, v in ep.columns.items()}, vstats)


@dataclass(frozen=True)
class NewDataset:
    """A dataset to be written from generated episodes (what a node returns).

    Attributes:
        fps: frames per second.
        features: info.json features of the data columns and videos (without the
            index columns, which the writer adds).
        episodes: picklable zero-argument callables, each building one episode
            (:class:`EpisodeData` with a ``task`` string); run in worker processes.
        robot_type: free text for info.json.
        video: encoder settings.
        workers: processes building and encoding episodes in parallel.
    """

    fps: int
    features: Mapping[str, dict]
    episodes: Sequence[Callable[[], EpisodeData]]
    robot_type: str = "unknown"
    video: VideoOptions = field(default_factory=VideoOptions)
    workers: int = 1
    chunks_size: int = DEFAULT_CHUNKS_SIZE

    def write(self, root: str | Path, overwrite: bool = False) -> LeRobotDatasetReader:
        """Write to ``root`` (replacing a dataset this project wrote there; anything
        else only with ``overwrite``, see :func:`adv_pipeline.outputs.check_output`)."""
        features = {**self.features, **INDEX_FEATURES}
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "fps": int(self.fps),
            "chunks_size": int(self.chunks_size),
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if video_keys(features) else None,
            "features": features,
        }
        with atomic_directory(root, DATASET, overwrite=overwrite) as tmp:
            jobs = list(enumerate(self.episodes))
            if self.workers > 1 and len(jobs) > 1:
                with ProcessPoolExecutor(self.workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                    futures = [pool.submit(_encode_episode, f, tmp, info, i, self.video) for i, f in jobs]
                    results = [fut.result() for fut in tqdm(futures, desc="episodes", unit="ep")]
            else:
                results = [_encode_episode(f, tmp, info, i, self.video) for i, f in tqdm(jobs, desc="episodes", unit="ep")]
            tasks: list[str] = []
            episodes, all_stats = [], []
            start = 0
            for i, res in enumerate(results):
                if res.task not in tasks:
                    tasks.append(res.task)
                cols = {**res.columns, **index_columns(res.length, self.fps, i, start, tasks.index(res.task))}
                write_parquet(tmp / data_relpath(info, i), episode_table(cols, features))
                episodes.append({"episode_index": i, "tasks": [res.task], "length": res.length})
                all_stats.append({**numeric_stats(cols, features), **res.video_stats})
                start += res.length
                failpoint("dataset.episode")
            write_meta(tmp, info, tasks, episodes, all_stats)
            failpoint("dataset.finalize")
        return LeRobotDatasetReader(root, check_files=False)  # just written and validated by construction


# ---------------------------------------------------------------------------- derived datasets
@dataclass(frozen=True)
class DerivedDataset:
    """A dataset derived from ``source``: same episodes and videos (linked), with
    columns replaced or added, and optionally a new task list (what a node returns).

    Attributes:
        source: the input dataset (never modified).
        columns: {name: (N,) or (N, D)} over all frames of ``source`` in episode order
            (rows ``source.offsets[e]:source.offsets[e+1]`` belong to episode e).
        tasks: the new tasks.jsonl (task_index k -> tasks[k]); None keeps the source's.
        features: info.json entries of new columns (inferred from the arrays if absent).
        workers: threads rewriting episode files in parallel (pyarrow releases the GIL;
            about one per CPU core is fastest).
    """

    source: LeRobotDatasetReader
    columns: Mapping[str, np.ndarray]
    tasks: Sequence[str] | None = None
    features: Mapping[str, dict] = field(default_factory=dict)
    workers: int = 2

    def write(self, root: str | Path, overwrite: bool = False) -> LeRobotDatasetReader:
        """Write to ``root``: never the source, inside it or a folder holding it; a
        dataset this project wrote there is replaced, anything else only with
        ``overwrite`` (see :func:`adv_pipeline.outputs.check_output`)."""
        src = self.source
        root = Path(root)
        n = src.num_frames
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} rows; the source {src.root} has {n} frames")
        tasks = list(self.tasks) if self.tasks is not None else list(src.tasks)
        features = dict(src.features)
        for name, values in self.columns.items():
            features[name] = dict(self.features.get(name) or src.features.get(name) or feature_spec(values))
        features = index_features_last(features)  # new columns before LeRobot's index columns
        info = {k: v for k, v in src.info.items()}
        info["features"] = features
        if "task_index" in self.columns:
            ti = np.asarray(self.columns["task_index"])
            if ti.size and (ti.min() < 0 or ti.max() >= len(tasks)):
                raise ValueError(f"task_index values span [{ti.min()}, {ti.max()}] but only {len(tasks)} tasks are given")
        numeric = [k for k, ft in features.items() if ft["dtype"] not in ("video", "image", "string")]
        # stats of the new columns for all episodes at once; the others carry over
        new_stats = {name: segment_stats(_as_feature_dtype(values, features[name]), src.offsets) for name, values in self.columns.items() if name in numeric}
        old_stats = src.episodes_stats_json
        episode_tasks = self._episode_tasks(tasks)

        def rewrite(pos: int) -> dict[str, Stats]:
            ep = src.episodes[pos]
            lo, hi = int(src.offsets[pos]), int(src.offsets[pos + 1])
            table = src.read_table(ep.episode_index)
            table = with_columns(table, {name: values[lo:hi] for name, values in self.columns.items()}, features)
            table = table.select([k for k in features if features[k]["dtype"] not in ("video", "image") and k in table.column_names])
            write_parquet(tmp / data_relpath(info, ep.episode_index), table)
            for key in src.video_keys:
                link_or_copy(src.video_path(ep.episode_index, key), tmp / video_relpath(info, ep.episode_index, key))
            stats = {k: v for k, v in old_stats.get(ep.episode_index, {}).items() if k in features and k not in new_stats}
            missing = [k for k in numeric if k not in stats and k not in new_stats]  # source without stats for them
            stats.update(numeric_stats({k: column_to_numpy(table[k]) for k in missing}, features))
            stats.update({k: v[pos] for k, v in new_stats.items()})
            failpoint("dataset.episode")
            return stats

        with atomic_directory(root, DATASET, inputs={"source dataset": src.root}, overwrite=overwrite) as tmp:
            with ThreadPoolExecutor(max(1, self.workers)) as pool:
                all_stats = list(tqdm(pool.map(rewrite, range(src.num_episodes)), total=src.num_episodes, desc="episodes", unit="ep"))
            rows = [{"episode_index": ep.episode_index, "tasks": t, "length": ep.length} for ep, t in zip(src.episodes, episode_tasks)]
            write_meta(tmp, info, tasks, rows, all_stats)
            failpoint("dataset.finalize")
        return LeRobotDatasetReader(root, check_files=False)  # just written and validated by construction

    def _episode_tasks(self, tasks: list[str]) -> list[list[str]]:
        """Each episode's task strings for episodes.jsonl, in task_index order."""
        src = self.source
        if "task_index" not in self.columns:
            if len(tasks) < len(src.tasks):
                raise ValueError(f"{len(tasks)} tasks given but the source's task_index goes up to {len(src.tasks) - 1}. Fix: give a task per source task, or a new task_index column")
            return [[tasks[src.tasks.index(t)] for t in ep.tasks] for ep in src.episodes]
        ti = np.asarray(self.columns["task_index"], dtype=np.int64).reshape(-1)
        present = np.zeros((src.num_episodes, len(tasks)), dtype=bool)
        present[np.repeat(np.arange(src.num_episodes), src.lengths), ti] = True
        return [[tasks[k] for k in np.flatnonzero(row)] for row in present]
