"""Read a LeRobot v2.1 dataset directory: validated metadata, columns, video frames.

``LeRobotDatasetReader(root)`` checks the whole layout up front (info.json, episodes,
tasks, every parquet's row count, every video's presence and frame count, task_index
range) and raises :class:`DatasetFormatError` naming the file and the fix. After that,
columns are read with pyarrow for all episodes at once or episode by episode, without
touching videos; frames are decoded on demand, streamed, never a whole video at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .format import (
    CODEBASE_VERSION,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    INFO_PATH,
    REQUIRED_INFO_FIELDS,
    TASKS_PATH,
    DatasetFormatError,
    data_relpath,
    format_error,
    video_keys,
    video_relpath,
)
from .stats import Stats, stats_from_json
from .video import Size, VideoReader, iter_lockstep, probe

IO_THREADS = 4  # files read in parallel (each single-threaded): more threads than cores pays


@dataclass(frozen=True)
class EpisodeMeta:
    """One line of meta/episodes.jsonl."""

    episode_index: int
    tasks: tuple[str, ...]
    length: int


def _read_jsonl(root: Path, relpath: str) -> list[dict]:
    path = root / relpath
    if not path.is_file():
        raise format_error(root, relpath, "file is missing", "restore it or rewrite the dataset's metadata")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise format_error(root, relpath, f"line {n} is not valid JSON ({exc.msg})", "fix or remove that line") from exc
    return rows


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A parquet column as numpy: scalars -> (N,), fixed or variable lists -> (N, D)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), -1) if len(arr) else flat.reshape(0, 0)
    return arr.to_numpy(zero_copy_only=False)


def read_parquet(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One parquet file as an Arrow table, single-threaded (callers read files in
    parallel). ``ParquetFile.read`` skips ``pq.read_table``'s dataset layer: about 2x
    faster on small per-episode files (benchmarks/gt_labeling_throughput.py). Unknown
    ``columns`` are skipped, not an error: callers check."""
    with pq.ParquetFile(path) as file:
        return file.read(columns=list(columns) if columns is not None else None, use_threads=False)


class LeRobotDatasetReader:
    """A validated, lazily read LeRobot v2.1 dataset directory.

    Args:
        root: the dataset directory (holding meta/, data/, videos/).
        check_videos: also check every video's presence and frame count (reads headers
            only; set False to skip on huge datasets whose videos you will not touch).
        check_files: check every parquet file (rows, task_index range) and video; False
            trusts the metadata (for a dataset this process has just written).
    """

    def __init__(self, root: str | Path, check_videos: bool = True, check_files: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetFormatError(
                f"{self.root}: dataset directory not found. Fix: check the path "
                "(catalog.yml or the <dataset>_path runtime parameter)"
            )
        self.info = self._load_info()
        self.features: dict[str, dict] = self.info["features"]
        self.fps: int = int(self.info["fps"])
        self.video_keys: list[str] = video_keys(self.features)
        self.tasks: list[str] = self._load_tasks()
        self.episodes: list[EpisodeMeta] = self._load_episodes()
        if check_files:
            self._check_parquet()
        if check_files and check_videos:
            self._check_videos()

    # ------------------------------------------------------------------ validation
    def _load_info(self) -> dict:
        path = self.root / INFO_PATH
        if not path.is_file():
            raise format_error(self.root, INFO_PATH, "file is missing", "this is not a LeRobot dataset root, or its meta/ folder is incomplete")
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise format_error(self.root, INFO_PATH, f"not valid JSON ({exc.msg})", "repair the file") from exc
        missing = [f for f in REQUIRED_INFO_FIELDS if f not in info]
        if missing:
            raise format_error(self.root, INFO_PATH, f"missing fields {missing}", "add them (see LeRobot v2.1 info.json)")
        version = info["codebase_version"]
        if version != CODEBASE_VERSION:
            fix = (
                "convert it to v2.1 with LeRobot 0.3.x (lerobot.datasets.v21.convert_dataset_v20_to_v21)"
                if str(version).startswith("v2")
                else "this project reads LeRobot v2.1; convert the dataset to v2.1 first"
            )
            raise format_error(self.root, INFO_PATH, f"codebase_version is {version!r}, expected {CODEBASE_VERSION!r}", fix)
        if video_keys(info["features"]) and "video_path" not in info:
            raise format_error(self.root, INFO_PATH, "has video features but no video_path", "add the v2.1 video_path template")
        return info

    def _load_tasks(self) -> list[str]:
        rows = _read_jsonl(self.root, TASKS_PATH)
        by_index = {}
        for row in rows:
            if "task_index" not in row or "task" not in row:
                raise format_error(self.root, TASKS_PATH, f"row {row} lacks task_index or task", "each line must be {\"task_index\": k, \"task\": str}")
            by_index[int(row["task_index"])] = str(row["task"])
        if sorted(by_index) != list(range(len(by_index))):
            raise format_error(self.root, TASKS_PATH, f"task_index values {sorted(by_index)} are not 0..{len(by_index) - 1}", "renumber the tasks contiguously from 0")
        if len(by_index) != int(self.info["total_tasks"]):
            raise format_error(self.root, INFO_PATH, f"total_tasks is {self.info['total_tasks']} but {TASKS_PATH} has {len(by_index)} tasks", "make them agree")
        return [by_index[i] for i in range(len(by_index))]

    def _load_episodes(self) -> list[EpisodeMeta]:
        rows = _read_jsonl(self.root, EPISODES_PATH)
        episodes = []
        for row in rows:
            try:
                ep = EpisodeMeta(int(row["episode_index"]), tuple(row.get("tasks", [])), int(row["length"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise format_error(self.root, EPISODES_PATH, f"row {row} lacks episode_index or length", "each line must be {\"episode_index\": i, \"tasks\": [...], \"length\": T}") from exc
            episodes.append(ep)
        episodes.sort(key=lambda e: e.episode_index)
        indices = [e.episode_index for e in episodes]
        if len(set(indices)) != len(indices):
            raise format_error(self.root, EPISODES_PATH, "repeats an episode_index", "keep one line per episode")
        if len(episodes) != int(self.info["total_episodes"]):
            raise format_error(self.root, INFO_PATH, f"total_episodes is {self.info['total_episodes']} but {EPISODES_PATH} lists {len(episodes)} episodes", "make them agree")
        total = sum(e.length for e in episodes)
        if total != int(self.info["total_frames"]):
            raise format_error(self.root, INFO_PATH, f"total_frames is {self.info['total_frames']} but the episode lengths sum to {total}", "make them agree")
        return episodes

    def _check_parquet(self) -> None:
        def rows_and_task_range(ep: EpisodeMeta):
            rel = self.data_relpath(ep.episode_index)
            path = self.root / rel
            if not path.is_file():
                return ep, rel, None, None
            md = pq.read_metadata(path)
            lo = hi = None
            names = md.schema.names
            if "task_index" in names and md.num_rows:
                col = names.index("task_index")
                mins, maxs = [], []
                for g in range(md.num_row_groups):
                    st = md.row_group(g).column(col).statistics
                    if st is None or not st.has_min_max:
                        t = pq.read_table(path, columns=["task_index"])["task_index"]
                        mins, maxs = [pc.min(t).as_py()], [pc.max(t).as_py()]
                        break
                    mins.append(st.min)
                    maxs.append(st.max)
                lo, hi = min(mins), max(maxs)
            return ep, rel, md.num_rows, (lo, hi)

        with ThreadPoolExecutor(IO_THREADS) as pool:
            results = list(pool.map(rows_and_task_range, self.episodes))
        for ep, rel, n_rows, task_range in results:
            if n_rows is None:
                raise format_error(self.root, rel, f"parquet file of episode {ep.episode_index} is missing", "restore it, or remove the episode from meta/episodes.jsonl and fix info.json totals")
            if n_rows != ep.length:
                raise format_error(self.root, rel, f"episode {ep.episode_index} has {n_rows} rows but {EPISODES_PATH} says length {ep.length}", f"set its length to {n_rows} in {EPISODES_PATH} (and total_frames in {INFO_PATH})")
            lo, hi = task_range
            if lo is not None and (lo < 0 or hi >= len(self.tasks)):
                raise format_error(self.root, rel, f"episode {ep.episode_index} has task_index in [{lo}, {hi}] but {TASKS_PATH} defines {len(self.tasks)} tasks (0..{len(self.tasks) - 1})", f"add the missing tasks to {TASKS_PATH} or relabel the episode")

    def _check_videos(self) -> None:
        jobs = [(ep, key) for ep in self.episodes for key in self.video_keys]

        def frames(job):
            ep, key = job
            path = self.video_path(ep.episode_index, key)
            return probe(path).n_frames if path.is_file() else None

        with ThreadPoolExecutor(IO_THREADS) as pool:
            counts = list(pool.map(frames, jobs))
        for (ep, key), n in zip(jobs, counts):
            rel = self.video_relpath(ep.episode_index, key)
            if n is None:
                raise format_error(self.root, rel, f"video {key} of episode {ep.episode_index} is missing", "restore it (derived datasets link the source's videos: is the source still there?)")
            if n < ep.length:
                raise format_error(self.root, rel, f"video {key} of episode {ep.episode_index} has {n} frames, shorter than its parquet ({ep.length} rows)", "re-encode the video from the source frames or trim the episode's parquet")

    # ------------------------------------------------------------------ layout
    def data_relpath(self, episode_index: int) -> str:
        return data_relpath(self.info, episode_index)

    def data_path(self, episode_index: int) -> Path:
        return self.root / self.data_relpath(episode_index)

    def video_relpath(self, episode_index: int, video_key: str) -> str:
        return video_relpath(self.info, episode_index, video_key)

    def video_path(self, episode_index: int, video_key: str) -> Path:
        return self.root / self.video_relpath(episode_index, video_key)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(sum(e.length for e in self.episodes))

    @cached_property
    def episode_indices(self) -> np.ndarray:
        """(E,) int64 episode indices, ascending."""
        return np.array([e.episode_index for e in self.episodes], dtype=np.int64)

    @cached_property
    def lengths(self) -> np.ndarray:
        """(E,) int64 frames per episode, in episode order."""
        return np.array([e.length for e in self.episodes], dtype=np.int64)

    @cached_property
    def offsets(self) -> np.ndarray:
        """(E + 1,) int64 start row of each episode in the concatenated columns."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def episode(self, episode_index: int) -> EpisodeMeta:
        pos = int(np.searchsorted(self.episode_indices, episode_index))
        if pos >= len(self.episodes) or self.episodes[pos].episode_index != episode_index:
            raise KeyError(f"{self.root}: no episode {episode_index} (episodes are {self.episode_indices.min()}..{self.episode_indices.max()})")
        return self.episodes[pos]

    @cached_property
    def episodes_stats_json(self) -> dict[int, dict[str, dict[str, list]]]:
        """meta/episodes_stats.jsonl as parsed, {episode_index: {feature: {stat: nested
        list}}} ({} if absent): what a derived dataset carries over unchanged."""
        if not (self.root / EPISODES_STATS_PATH).is_file():
            return {}
        return {int(r["episode_index"]): r["stats"] for r in _read_jsonl(self.root, EPISODES_STATS_PATH)}

    @cached_property
    def episodes_stats(self) -> dict[int, dict[str, Stats]]:
        """meta/episodes_stats.jsonl as {episode_index: {feature: numpy stats}}."""
        return {e: stats_from_json(s) for e, s in self.episodes_stats_json.items()}

    def fingerprint(self) -> str:
        """Short hash of the metadata (info, episodes, tasks): identifies the dataset."""
        import hashlib

        h = hashlib.sha256()
        for rel in (INFO_PATH, EPISODES_PATH, TASKS_PATH):
            h.update((self.root / rel).read_bytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ columns
    @cached_property
    def _column_names(self) -> tuple[str, ...]:
        return tuple(pq.read_schema(self.data_path(self.episodes[0].episode_index)).names) if self.episodes else ()

    def column_names(self) -> list[str]:
        """Columns of the parquet files (from the first episode's schema, read once)."""
        return list(self._column_names)

    def require_column(self, column: str, why: str, fix: str) -> None:
        """Raise unless the parquet files have ``column``; the message names the first
        episode's file, then ``why`` (e.g. ", needed because stage_nums=2") and ``fix``."""
        if column not in self.column_names():
            first = self.episodes[0].episode_index
            raise DatasetFormatError(f"{self.data_path(first)}: episode {first} has no column {column}{why}. Fix: {fix}")

    def _require_columns(self, columns: Sequence[str]) -> None:
        have = set(self.column_names())
        missing = [c for c in columns if c not in have]
        if missing:
            raise DatasetFormatError(
                f"{self.root}: parquet files have no column(s) {missing}; available: {sorted(have)}. "
                "Fix: choose existing columns or produce them with the stage that writes them"
            )

    def read_table(self, episode_index: int, columns: Sequence[str] | None = None) -> pa.Table:
        """One episode's parquet as an Arrow table (all columns, or ``columns`` in order)."""
        path = self.data_path(episode_index)
        try:
            table = read_parquet(path, columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DatasetFormatError(f"{path}: episode {episode_index} cannot be read ({exc}). Fix: rewrite the episode from its source") from exc
        if columns is None:
            return table
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DatasetFormatError(f"{path}: episode {episode_index} has no column(s) {missing}. Fix: rewrite the episode or choose other columns")
        return table.select(list(columns))

    def read_episode(self, episode_index: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """One episode's columns as numpy: scalars (T,), vectors (T, D)."""
        table = self.read_table(episode_index, columns)
        return {c: column_to_numpy(table[c]) for c in columns}

    def iter_episodes(self, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(episode_index, columns)`` episode by episode."""
        self._require_columns(columns)
        for ep in self.episodes:
            yield ep.episode_index, self.read_episode(ep.episode_index, columns)

    def read_columns(self, columns: Sequence[str], episodes: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Columns of many episodes at once, concatenated in episode order.

        Args:
            columns: column names.
            episodes: episode indices (default: all). Row ``offsets`` apply to all.

        Returns:
            {column: (N,) or (N, D) array}, N the total frames of those episodes.
        """
        columns = list(columns)
        self._require_columns(columns)
        eps = self.episode_indices if episodes is None else np.asarray(episodes, dtype=np.int64)
        with ThreadPoolExecutor(IO_THREADS) as pool:
            tables = list(pool.map(lambda e: self.read_table(int(e), columns), eps))
        if not tables:
            return {c: np.zeros((0,)) for c in columns}
        table = pa.concat_tables(tables)
        return {c: column_to_numpy(table[c]) for c in columns}

    # ------------------------------------------------------------------ frames
    def _video_paths(self, episode_index: int, cameras: Sequence[str] | None) -> dict[str, Path]:
        keys = self.resolve_cameras(cameras)
        return {k: self.video_path(episode_index, k) for k in keys}

    def resolve_cameras(self, cameras: Sequence[str] | None) -> list[str]:
        """Full video keys for camera names or keys (``top_head`` or
        ``observation.images.top_head``); all video keys when None."""
        if cameras is None:
            return list(self.video_keys)
        out = []
        for cam in cameras:
            match = [k for k in self.video_keys if k == cam or k.rsplit(".", 1)[-1] == cam]
            if not match:
                raise DatasetFormatError(f"{self.root}: no camera {cam!r}; the dataset's video keys are {self.video_keys}. Fix: set the camera list to existing keys")
            out.append(match[0])
        return out

    def iter_frames(
        self,
        episode_index: int,
        cameras: Sequence[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        size: Size | None = None,
        threads: int = 1,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream ``{video_key: (H, W, 3) uint8}`` for frames start..stop-1, cameras in step."""
        ep = self.episode(episode_index)
        stop = ep.length if stop is None else min(stop, ep.length)
        return iter_lockstep(self._video_paths(episode_index, cameras), start, stop, size, threads)

    def get_frames(
        self,
        episode_index: int,
        indices: Sequence[int] | np.ndarray,
        cameras: Sequence[str] | None = None,
        size: Size | None = None,
    ) -> dict[str, np.ndarray]:
        """Frames at ``indices`` for each camera: ``{video_key: (N, H, W, 3) uint8}``."""
        ep = self.episode(episode_index)
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= ep.length):
            raise IndexError(f"{self.root}: episode {episode_index} has {ep.length} frames; asked for {idx.min()}..{idx.max()}")
        return {k: VideoReader(p, size=size).get(idx) for k, p in self._video_paths(episode_index, cameras).items()}

    def __repr__(self) -> str:
        return f"LeRobotDatasetReader({str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames}, videos={self.video_keys})"
