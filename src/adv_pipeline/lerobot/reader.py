"""Read a LeRobot dataset directory (v2.1 or v3.0): validated metadata, columns, frames.

``LeRobotDatasetReader(root)`` checks the whole layout up front (info.json, episodes,
tasks, every parquet's row count, every video's presence and frame count, task_index
range) and raises :class:`DatasetFormatError` naming the file and the fix. Each episode
knows its file, its first row there and, per camera, its video file and first frame
(v2.1: one file per episode, from row and frame 0; v3.0: see :mod:`.meta_v30`). After that,
columns are read with pyarrow for all episodes at once or episode by episode, without
touching videos; frames are decoded on demand, streamed, never a whole video at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adv_pipeline.checkpoints import list_steps

from . import meta_v30
from .format import (
    ENCODERS_DIR,
    EPISODES_DIR,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    FORMATS,
    INFO_PATH,
    REQUIRED_INFO_FIELDS,
    TASKS_PARQUET_PATH,
    TASKS_PATH,
    TIMESTAMP_TOLERANCE_S,
    V30,
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
    """One episode: its metadata line and where its frames are.

    ``data_file`` is the parquet file (relative path) holding its rows from
    ``row_start``; ``videos`` holds ``(video_key, relative path, from_timestamp s,
    to_timestamp s)`` per camera, the episode's time range inside that video."""

    episode_index: int
    tasks: tuple[str, ...]
    length: int
    data_file: str = ""
    row_start: int = 0
    videos: tuple[tuple[str, str, float, float], ...] = ()

    def video(self, key: str) -> tuple[str, float]:
        """(relative path, from_timestamp s) of camera ``key``."""
        for k, rel, start, _ in self.videos:
            if k == key:
                return rel, start
        raise KeyError(key)


def _read_jsonl(root: Path, relpath: str) -> list[dict]:
    path = root / relpath
    if not path.is_file():
        raise format_error(
            root, relpath, "file is missing", "restore it or rewrite the dataset's metadata"
        )
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise format_error(
                root, relpath, f"line {n} is not valid JSON ({exc.msg})", "fix or remove that line"
            ) from exc
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


def _bad_rows(
    values: np.ndarray, value_range: tuple[float, float] | None
) -> tuple[np.ndarray, str] | None:
    """(rows with a non-finite or out-of-range value, what is wrong), or None if none."""
    x = values.reshape(len(values), -1)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            return bad, "NaN/inf"
    if value_range is not None:
        lo, hi = value_range
        bad = ((x < lo) | (x > hi)).any(axis=1)
        if bad.any():
            return bad, f"values outside [{lo}, {hi}]"
    return None


def _episode_faults(
    column: str,
    values: np.ndarray,
    starts: np.ndarray,
    value_range: tuple[float, float] | None = None,
) -> list[tuple[int, tuple]]:
    """Bad values of ``column`` over consecutive episodes ((N,) or (N, D), episode p's rows
    from ``starts[p]``): per episode with one, ``(p, (column, problem, its first bad row
    within the episode, that row's value, its bad rows))``, in episode order."""
    found = _bad_rows(values, value_range)
    if found is None:
        return []
    rows, problem = found
    where = np.flatnonzero(rows)
    positions = np.searchsorted(starts, where, side="right") - 1
    flat = values.reshape(len(values), -1)
    faults = []
    for pos in np.unique(positions):
        in_episode = where[positions == pos]
        r = int(in_episode[0])
        faults.append((int(pos), (column, problem, r - int(starts[pos]), flat[r], len(in_episode))))
    return faults


_T = TypeVar("_T")
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "task_index", "index")
CHECK_BATCH = 64  # episodes checked together when a dataset is opened


def _batch_column(tables: list[pa.Table], column: str) -> np.ndarray:
    """One column of several episode tables, concatenated, as numpy."""
    try:
        chunks = [chunk for t in tables for chunk in t.column(column).chunks]
        return column_to_numpy(pa.chunked_array(chunks, type=tables[0].schema.field(column).type))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # types differ between files (all allowed)
        return np.concatenate([column_to_numpy(t.column(column)) for t in tables])


def _concat(tables: list[pa.Table], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Episode tables concatenated in order, as numpy columns."""
    if not tables:
        return {c: np.zeros((0,)) for c in columns}
    table = pa.concat_tables(tables)
    return {c: column_to_numpy(table[c]) for c in columns}


def _why(why: str | Mapping[str, str], column: str) -> str:
    return why.get(column, "") if isinstance(why, Mapping) else why


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _kind(t: pa.DataType) -> str:
    if pa.types.is_floating(t):
        return "f"
    if pa.types.is_integer(t):
        return "i"
    if pa.types.is_boolean(t):
        return "b"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "U"
    return str(t)


def _type_problem(arrow_type: pa.DataType, spec: dict) -> str | None:
    """Why a parquet column's type does not fit its info.json feature, or None."""
    dtype, shape = str(spec.get("dtype")), list(spec.get("shape") or [1])
    width = int(np.prod(shape)) if shape else 1
    t = arrow_type
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        while pa.types.is_fixed_size_list(t.value_type):  # (T, A, B) features nest lists
            t = t.value_type
            size *= t.list_size
        if size != width:
            return f"has {size} values per frame, but shape {shape} means {width}"
        t = t.value_type
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    elif width != 1:
        return f"has one value per frame, but shape {shape} means {width}"
    want = {"f": "f", "i": "i", "u": "i", "b": "b", "U": "U", "O": "U"}.get(
        np.dtype(dtype).kind if dtype != "string" else "U"
    )
    if _kind(t) != want:
        return f"holds {t} values"
    if want == "f" and t.bit_width != np.dtype(dtype).itemsize * 8:
        # files of one column in two widths do not read as one column (pandas writes float64)
        return f"holds {t} values, not {dtype}"
    return None


def _empty_vector_column(path: Path, columns: Sequence[str]) -> str | None:
    """The first of ``columns`` of a parquet file that does not read because a row of
    its fixed-size lists is null (parquet stores it as an empty list), or None."""
    with pq.ParquetFile(path) as file:
        for column in [c for c in columns if c in file.schema_arrow.names]:
            try:
                file.read([column], use_threads=False)
            except pa.ArrowInvalid:
                return column
    return None


def _is_list(t: pa.DataType) -> bool:
    """Whether an Arrow type holds a list per row (variable, large or fixed size)."""
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def read_parquet(
    path: str | Path,
    columns: Sequence[str] | None = None,
    row_start: int = 0,
    rows: int | None = None,
) -> pa.Table:
    """A parquet file's rows ``row_start .. row_start + rows - 1`` (all by default) as an
    Arrow table, single-threaded (callers read files in parallel), reading only the row
    groups that hold them. ``ParquetFile.read`` skips ``pq.read_table``'s dataset layer:
    about 2x faster on small per-episode files (benchmarks/gt_labeling_throughput.py).
    Unknown ``columns`` are skipped, not an error: callers check."""
    cols = list(columns) if columns is not None else None
    with pq.ParquetFile(path) as file:
        n = file.metadata.num_rows
        if row_start == 0 and (rows is None or rows == n):
            return file.read(columns=cols, use_threads=False)
        stop = n if rows is None else row_start + rows
        sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
        ends = np.cumsum(sizes)
        first, last = (
            int(np.searchsorted(ends, row_start, side="right")),
            int(np.searchsorted(ends, stop - 1, side="right")),
        )
        table = file.read_row_groups(range(first, last + 1), columns=cols, use_threads=False)
        skip = row_start - (int(ends[first - 1]) if first else 0)
        return table.slice(skip, stop - row_start)


class LeRobotDatasetReader:
    """A validated, lazily read LeRobot dataset directory (v2.1 or v3.0).

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
        self.version: str = self.info["codebase_version"]
        self.features: dict[str, dict] = self.info["features"]
        self.fps: int = int(self.info["fps"])
        self.video_keys: list[str] = video_keys(self.features)
        self._episode_rows: pa.Table | None = None  # v3.0's meta/episodes rows
        self.tasks: list[str] = self._load_tasks()
        self.episodes: list[EpisodeMeta] = self._load_episodes()
        self._checked: set[tuple] = set()  # (column, range) pairs check_values passed
        self._memo: dict[Hashable, Any] = {}
        self._faults: dict[str, list[tuple]] = {}  # float column -> non-finite values found
        if check_files:
            self._check_parquet()
        if check_files and check_videos:
            self._check_videos()

    # ------------------------------------------------------------------ validation
    def _load_info(self) -> dict:
        path = self.root / INFO_PATH
        if not path.is_file():
            raise format_error(
                self.root,
                INFO_PATH,
                "file is missing",
                "this is not a LeRobot dataset root, or its meta/ folder is incomplete",
            )
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise format_error(
                self.root, INFO_PATH, f"not valid JSON ({exc.msg})", "repair the file"
            ) from exc
        missing = [f for f in REQUIRED_INFO_FIELDS if f not in info]
        if missing:
            raise format_error(
                self.root,
                INFO_PATH,
                f"missing fields {missing}",
                "add them (see LeRobot v2.1 info.json)",
            )
        fps = info["fps"]
        number = isinstance(fps, int | float) and not isinstance(fps, bool)
        whole = number and float(fps).is_integer()
        if not whole or fps <= 0:
            raise format_error(
                self.root,
                INFO_PATH,
                f"fps is {fps!r} ({type(fps).__name__}), not a positive whole number of frames "
                f"per second",
                'write the recording\'s rate as a number, e.g. "fps": 30',
            )
        version = info["codebase_version"]
        if version not in FORMATS:
            fix = (
                "convert it to v2.1 with LeRobot 0.3.x "
                "(lerobot.datasets.v21.convert_dataset_v20_to_v21)"
                if str(version).startswith("v2")
                else "convert it to v3.0 with LeRobot 0.4 or later "
                "(lerobot.datasets.v30.convert_dataset_v21_to_v30)"
            )
            raise format_error(
                self.root,
                INFO_PATH,
                f"codebase_version is {version!r}; this project reads {' and '.join(FORMATS)}",
                fix,
            )
        if video_keys(info["features"]) and "video_path" not in info:
            raise format_error(
                self.root,
                INFO_PATH,
                "has video features but no video_path",
                f"add the {version} video_path template",
            )
        if version == V30:
            meta_v30.check_info(self.root, info)
        return info

    def _load_tasks(self) -> list[str]:
        if self.version == V30:
            return self._counted_tasks(meta_v30.load_tasks(self.root), TASKS_PARQUET_PATH)
        rows = _read_jsonl(self.root, TASKS_PATH)
        by_index = {}
        for row in rows:
            if "task_index" not in row or "task" not in row:
                raise format_error(
                    self.root,
                    TASKS_PATH,
                    f"row {row} lacks task_index or task",
                    'each line must be {"task_index": k, "task": str}',
                )
            by_index[int(row["task_index"])] = str(row["task"])
        if sorted(by_index) != list(range(len(by_index))):
            raise format_error(
                self.root,
                TASKS_PATH,
                f"task_index values {sorted(by_index)} are not 0..{len(by_index) - 1}",
                "renumber the tasks contiguously from 0",
            )
        return self._counted_tasks([by_index[i] for i in range(len(by_index))], TASKS_PATH)

    def _counted_tasks(self, tasks: list[str], rel: str) -> list[str]:
        if len(tasks) != int(self.info["total_tasks"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_tasks is {self.info['total_tasks']} but {rel} has {len(tasks)} tasks",
                "make them agree",
            )
        return tasks

    def _episodes_v21(self) -> list[EpisodeMeta]:
        rows = _read_jsonl(self.root, EPISODES_PATH)
        episodes = []
        for row in rows:
            try:
                e = int(row["episode_index"])
                ep = EpisodeMeta(
                    e,
                    tuple(row.get("tasks", [])),
                    int(row["length"]),
                    data_relpath(self.info, e),
                    0,
                    tuple(
                        (k, video_relpath(self.info, e, k), 0.0, int(row["length"]) / self.fps)
                        for k in self.video_keys
                    ),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise format_error(
                    self.root,
                    EPISODES_PATH,
                    f"row {row} lacks episode_index or length",
                    'each line must be {"episode_index": i, "tasks": [...], "length": T}',
                ) from exc
            episodes.append(ep)
        return episodes

    def _load_episodes(self) -> list[EpisodeMeta]:
        episodes_path = self._episodes_file
        if self.version == V30:
            episodes, self._episode_rows = meta_v30.load_episodes(
                self.root, self.info, self.video_keys
            )
        else:
            episodes = self._episodes_v21()
        episodes.sort(key=lambda e: e.episode_index)
        empty = [e.episode_index for e in episodes if e.length < 1]
        if empty:
            raise format_error(
                self.root,
                episodes_path,
                f"episode(s) {empty[:10]} have no frames (length < 1)",
                "remove the empty episodes (and renumber the rest: `lerobot-doctor fix "
                "<dataset> --fixes reindex`), or restore their frames",
            )
        indices = [e.episode_index for e in episodes]
        if len(set(indices)) != len(indices):
            dup = sorted({i for i in indices if indices.count(i) > 1})
            raise format_error(
                self.root,
                episodes_path,
                f"repeats episode_index {dup}",
                "keep one line per episode",
            )
        if indices != list(range(len(indices))):
            gap = next(k for k, i in enumerate(indices) if i != k)
            raise format_error(
                self.root,
                episodes_path,
                f"episode indices are not 0..{len(indices) - 1} (no episode {gap}); LeRobot "
                f"indexes episodes by position",
                "renumber the episodes contiguously from 0 (e.g. `lerobot-doctor fix <dataset> "
                "--fixes reindex`)",
            )
        if len(episodes) != int(self.info["total_episodes"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_episodes is {self.info['total_episodes']} but {episodes_path} lists "
                f"{len(episodes)} episodes",
                "make them agree",
            )
        total = sum(e.length for e in episodes)
        if total != int(self.info["total_frames"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_frames is {self.info['total_frames']} but the episode lengths sum to "
                f"{total}",
                "make them agree",
            )
        return episodes

    def _check_parquet(self) -> None:
        """Every parquet file: readable, rows = episodes.jsonl length, columns typed as
        info.json says, ``episode_index`` = its episode, ``frame_index`` = 0..n-1,
        ``timestamp`` within 1e-4 s of frame_index / fps, ``task_index`` in tasks.jsonl.

        The float columns are read in the same pass and their non-finite values noted:
        :meth:`check_values` raises on them when a stage asks (saying why it needs the
        column) without reading the files again."""
        floats = self.float_columns()
        index_cols = [c for c in INDEX_COLUMNS if c in self.features]
        typed = {
            k: ft for k, ft in self.features.items() if ft.get("dtype") not in ("video", "image")
        }
        listed = {ep.data_file for ep in self.episodes}
        episodes_meta = self._episodes_file
        extra = sorted(
            rel
            for p in (self.root / "data").glob("**/*.parquet")
            if (rel := p.relative_to(self.root).as_posix()) not in listed
        )
        if extra:
            raise format_error(
                self.root,
                extra[0],
                f"this parquet file holds no episode of {episodes_meta} ({len(extra)} such "
                f"file(s)); its frames would be left out silently",
                f"add its episodes to {episodes_meta} (and info.json's totals), or move the "
                f"file out of the dataset",
            )
        schema_problems: dict[pa.Schema, tuple | None] = {}
        self._faults = {c: [] for c in floats}
        groups: dict[str, list[EpisodeMeta]] = {}
        for ep in self.episodes:  # v2.1: one episode per file; v3.0: several
            groups.setdefault(ep.data_file, []).append(ep)
        files = list(groups.items())
        per_batch = max(1, CHECK_BATCH // max(1, len(self.episodes) // max(1, len(files))))
        with ThreadPoolExecutor(IO_THREADS) as pool:
            # files are opened in parallel, then checked a batch at a time with array
            # operations (per-file numpy calls would cost more than reading the files)
            for start in range(0, len(files), per_batch):
                batch_files = files[start : start + per_batch]
                opened = list(
                    pool.map(
                        lambda f: self._check_file(
                            f[0], f[1], index_cols + floats, typed, schema_problems
                        ),
                        batch_files,
                    )
                )
                failed = next((i for i, (error, _) in enumerate(opened) if error), len(opened))
                batch = [ep for _, eps in batch_files[:failed] for ep in eps]
                tables = [t for _, ts in opened[:failed] for t in ts]
                error = self._check_batch(batch, tables, floats)
                if error is not None or failed < len(opened):
                    raise error or opened[failed][0]

    def _check_batch(
        self, batch: list[EpisodeMeta], tables: list[pa.Table], floats: list[str]
    ) -> DatasetFormatError | None:
        """The index columns of consecutive episodes checked at once (the first bad
        episode's error, as :meth:`_check_index_columns` words it); non-finite values of
        the float columns noted in ``self._faults``."""
        if not batch:
            return None
        lengths = np.array([ep.length for ep in batch], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        frames = np.arange(lengths.sum()) - np.repeat(starts, lengths)
        names = tables[0].column_names
        cols = {c: _batch_column(tables, c) for c in names if c in INDEX_COLUMNS}
        bad = np.zeros(len(frames), dtype=bool)
        if "episode_index" in cols:
            ids = np.array([ep.episode_index for ep in batch], dtype=np.int64)
            bad |= cols["episode_index"] != np.repeat(ids, lengths)
        if "frame_index" in cols:
            bad |= cols["frame_index"] != frames
        if "timestamp" in cols:
            bad |= ~(np.abs(cols["timestamp"] - frames / self.fps) <= TIMESTAMP_TOLERANCE_S)
        if "task_index" in cols:
            bad |= (cols["task_index"] < 0) | (cols["task_index"] >= len(self.tasks))
        if "index" in cols:  # the frame's row in the whole dataset
            first = int(self.offsets[batch[0].episode_index])
            bad |= cols["index"] != first + np.arange(len(frames))
        positions = np.unique(np.searchsorted(starts, np.flatnonzero(bad), side="right") - 1)
        for pos in positions:  # the first bad episode, worded episode by episode
            ep, table = batch[pos], tables[pos]
            one = {c: table.column(c).to_numpy() for c in cols}
            error = self._check_index_columns(ep, self.data_relpath(ep.episode_index), one)
            if error is not None:
                return error
        for c in floats:
            if c in names:
                faults = _episode_faults(c, _batch_column(tables, c), starts)
                self._faults[c].extend((batch[pos], fault) for pos, fault in faults)
        return None

    def _check_file(
        self,
        rel: str,
        eps: list[EpisodeMeta],
        columns: list[str],
        typed: dict[str, dict],
        schema_problems: dict[pa.Schema, tuple | None],
    ) -> tuple[DatasetFormatError | None, list[pa.Table]]:
        """One parquet file checked (see :meth:`_check_parquet`): (the error or None, the
        ``columns`` it has, read, sliced into its episodes ``eps``)."""
        path = self.root / rel
        ep = eps[0]
        which = (
            f"episode {ep.episode_index}"
            if len(eps) == 1
            else f"episodes {ep.episode_index}..{eps[-1].episode_index}"
        )
        if not path.is_file():
            return format_error(
                self.root,
                rel,
                f"parquet file of {which} is missing",
                f"restore it, or remove the episode(s) from {self._episodes_file} and fix "
                f"info.json totals",
            ), []
        try:
            with pq.ParquetFile(path) as file:
                n_rows, schema = file.metadata.num_rows, file.schema_arrow
                if schema not in schema_problems:  # files nearly always share one schema
                    schema_problems[schema] = self._schema_problem(schema, typed)
                present = [c for c in columns if c in schema.names]
                table = None if schema_problems[schema] else file.read(present, use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            empty = (
                _empty_vector_column(path, columns) if "lists to be of size" in str(exc) else None
            )
            if empty is not None:
                return format_error(
                    self.root,
                    rel,
                    f"{which}: column {empty} has a missing (null) row ({exc})",
                    "fill the missing rows (e.g. with the previous frame's values) or drop the "
                    "episode",
                ), []
            return format_error(
                self.root,
                rel,
                f"parquet file of {which} cannot be read ({exc})",
                "the file is truncated or not parquet: restore it from the source, or rewrite "
                "the episode",
            ), []
        if len(eps) == 1 and ep.row_start == 0 and n_rows != ep.length:
            return format_error(
                self.root,
                rel,
                f"episode {ep.episode_index} has {n_rows} rows but {EPISODES_PATH} says "
                f"length {ep.length}",
                f"set its length to {n_rows} in {EPISODES_PATH} (and total_frames in {INFO_PATH})",
            ), []
        past = next((e for e in eps if e.row_start + e.length > n_rows), None)
        if past is not None:
            return format_error(
                self.root,
                rel,
                f"episode {past.episode_index}: its rows {past.row_start}..."
                f"{past.row_start + past.length - 1} in this file run past its {n_rows} rows",
                f"restore the file, or correct the episode's dataset_from_index/"
                f"dataset_to_index and length in {EPISODES_DIR}",
            ), []
        covered = eps[-1].row_start + eps[-1].length
        if covered != n_rows:
            return format_error(
                self.root,
                rel,
                f"{n_rows - covered} rows after episode {eps[-1].episode_index} belong to no "
                f"episode of {EPISODES_DIR}; their frames would be left out silently",
                f"list their episode in {EPISODES_DIR} (and info.json's totals), or rewrite "
                f"the file without them",
            ), []
        if schema_problems[schema]:
            name, spec, problem = schema_problems[schema]
            return format_error(
                self.root,
                rel,
                f"{which}: column {name} {problem} (info.json: dtype "
                f"{spec.get('dtype')}, shape {spec.get('shape')})",
                f"rewrite the column as info.json declares it (e.g. pandas: "
                f"df[{name!r}] = df[{name!r}].astype({str(spec.get('dtype'))!r}) before "
                f"writing), or correct its entry in {INFO_PATH}",
            ), []
        return None, [table.slice(e.row_start, e.length) for e in eps]

    @staticmethod
    def _schema_problem(schema: pa.Schema, typed: dict[str, dict]) -> tuple | None:
        """(column, feature, problem) of the first column not as info.json declares it."""
        for name, spec in typed.items():
            problem = (
                "is missing"
                if name not in schema.names
                else _type_problem(schema.field(name).type, spec)
            )
            if problem:
                return name, spec, problem
        return None

    def _check_index_columns(
        self, ep: EpisodeMeta, rel: str, cols: dict[str, np.ndarray]
    ) -> DatasetFormatError | None:
        def first(bad: np.ndarray) -> int:
            return int(np.flatnonzero(bad)[0])

        n, e = ep.length, ep.episode_index
        if "episode_index" in cols and not (cols["episode_index"] == e).all():
            r = first(cols["episode_index"] != e)
            other = int(cols["episode_index"][r])
            return format_error(
                self.root,
                rel,
                f"episode {e}: its file has episode_index {other} at row {r}: two files claim "
                f"episode {other}",
                f"set episode_index to {e} in this file (or check which file holds which episode)",
            )
        frames = np.arange(n)
        if "frame_index" in cols and not np.array_equal(cols["frame_index"], frames):
            r = first(cols["frame_index"] != frames)
            return format_error(
                self.root,
                rel,
                f"episode {e}: frame_index is not 0, 1, 2, ... (row {r} has "
                f"{int(cols['frame_index'][r])})",
                "sort the rows by time and renumber frame_index from 0",
            )
        if "index" in cols:
            rows = int(self.offsets[e]) + frames
            if not np.array_equal(cols["index"], rows):
                r = first(cols["index"] != rows)
                return format_error(
                    self.root,
                    rel,
                    f"episode {e}: index (the frame's row in the whole dataset) is "
                    f"{int(cols['index'][r])} at frame {r}, expected {int(rows[r])} (the "
                    f"frames of the episodes before it, in order, then this frame)",
                    "renumber index over the whole dataset, episode by episode from 0 (e.g. "
                    "`lerobot-doctor fix <dataset> --fixes reindex`)",
                )
        if "timestamp" in cols:
            err = np.abs(cols["timestamp"] - frames / self.fps)
            if not (err <= TIMESTAMP_TOLERANCE_S).all():
                bad = ~(err <= TIMESTAMP_TOLERANCE_S)
                r = first(bad)
                step = np.median(np.diff(cols["timestamp"])) if n > 1 else 0.0
                other = round(1.0 / step) if step > 0 else 0
                if other > 0 and other != self.fps and abs(1.0 / step - other) < 1e-3:
                    fix = (
                        f"the timestamps advance 1/{other} s a frame: if the recording ran at "
                        f'{other} fps, set "fps": {other} in {INFO_PATH}; otherwise rewrite '
                        f"timestamp as frame_index / {self.fps}"
                    )
                else:
                    fix = (
                        f"rewrite timestamp as frame_index / {self.fps} (e.g. `lerobot-doctor "
                        f"fix <dataset> --fixes timestamps`)"
                    )
                return format_error(
                    self.root,
                    rel,
                    f"episode {e}: timestamp {float(cols['timestamp'][r]):.6f} s at frame {r} is "
                    f"{float(err[r]):.4g} s from frame_index / fps = {r / self.fps:.6f} s "
                    f"(tolerance {TIMESTAMP_TOLERANCE_S} s; {int(bad.sum())} frames off)",
                    fix,
                )
        if "task_index" in cols and n:
            lo, hi = int(cols["task_index"].min()), int(cols["task_index"].max())
            if lo < 0 or hi >= len(self.tasks):
                return format_error(
                    self.root,
                    rel,
                    f"episode {e} has task_index in [{lo}, {hi}] but {self._tasks_file} defines "
                    f"{len(self.tasks)} tasks (0..{len(self.tasks) - 1})",
                    f"add the missing tasks to {self._tasks_file} or relabel the episode",
                )
        return None

    def _check_videos(self) -> None:
        jobs = [(ep, key) for ep in self.episodes for key in self.video_keys]
        files = sorted({ep.video(key)[0] for ep, key in jobs})

        def frames(rel):
            path = self.root / rel
            try:
                return probe(path).n_frames if path.is_file() else None
            except av.FFmpegError as exc:
                return exc
            except IndexError:  # the container has no video stream
                return ValueError("no video stream in it")

        with ThreadPoolExecutor(IO_THREADS) as pool:
            counts = dict(zip(files, pool.map(frames, files)))
        for ep, key in jobs:
            rel = self.video_relpath(ep.episode_index, key)
            n = counts[rel]
            first = self.first_video_frame(ep, key)
            if isinstance(n, Exception):
                raise format_error(
                    self.root,
                    rel,
                    f"video {key} of episode {ep.episode_index} cannot be read ({n})",
                    "re-encode it from the episode's source frames, or drop the episode",
                )
            if n is None:
                raise format_error(
                    self.root,
                    rel,
                    f"video {key} of episode {ep.episode_index} is missing",
                    "restore it (derived datasets link the source's videos: is the source still "
                    "there?)",
                )
            if first + ep.length <= n:
                continue
            if first > 0 or self.version == V30:  # the episode's range inside a shared file
                _, _, start, stop = next(v for v in ep.videos if v[0] == key)
                raise format_error(
                    self.root,
                    rel,
                    f"video {key} of episode {ep.episode_index}: its time range "
                    f"{start:.3f}..{stop:.3f} s (frames {first}..{first + ep.length - 1}) "
                    f"runs past the file's {n} frames",
                    f"restore the video file, or correct videos/{key}/from_timestamp and "
                    f"to_timestamp of the episode in {EPISODES_DIR}",
                )
            raise format_error(
                self.root,
                rel,
                f"video {key} of episode {ep.episode_index} has {n} frames, shorter than its "
                f"parquet ({ep.length} rows)",
                "re-encode the video from the source frames or trim the episode's parquet",
            )

    # ------------------------------------------------------------------ layout
    @property
    def _tasks_file(self) -> str:
        return TASKS_PARQUET_PATH if self.version == V30 else TASKS_PATH

    @property
    def _episodes_file(self) -> str:
        return EPISODES_DIR if self.version == V30 else EPISODES_PATH

    def data_relpath(self, episode_index: int) -> str:
        """The parquet file holding the episode's rows (v3.0: with other episodes')."""
        return self.episode(episode_index).data_file

    def data_path(self, episode_index: int) -> Path:
        return self.root / self.data_relpath(episode_index)

    def video_relpath(self, episode_index: int, video_key: str) -> str:
        """The MP4 holding the episode's frames of camera ``video_key`` (v3.0: from
        :meth:`first_video_frame` on, after other episodes')."""
        return self.episode(episode_index).video(video_key)[0]

    def video_path(self, episode_index: int, video_key: str) -> Path:
        return self.root / self.video_relpath(episode_index, video_key)

    def first_video_frame(self, episode: EpisodeMeta | int, video_key: str) -> int:
        """Index in its video file of the episode's frame 0 (0 in v2.1)."""
        ep = self.episode(episode) if isinstance(episode, int | np.integer) else episode
        return int(round(ep.video(video_key)[1] * self.fps))

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
            raise KeyError(
                f"{self.root}: no episode {episode_index} (episodes are "
                f"{self.episode_indices.min()}..{self.episode_indices.max()})"
            )
        return self.episodes[pos]

    @cached_property
    def episodes_stats_json(self) -> dict[int, dict[str, dict[str, list]]]:
        """meta/episodes_stats.jsonl as parsed (v3.0: the episode rows' stats columns),
        {episode_index: {feature: {stat: nested list}}} ({} if absent): what a derived
        dataset carries over unchanged."""
        if self._episode_rows is not None:
            return meta_v30.episodes_stats_json(self._episode_rows)
        if not (self.root / EPISODES_STATS_PATH).is_file():
            return {}
        return {
            int(r["episode_index"]): r["stats"] for r in _read_jsonl(self.root, EPISODES_STATS_PATH)
        }

    @cached_property
    def episodes_stats(self) -> dict[int, dict[str, Stats]]:
        """meta/episodes_stats.jsonl as {episode_index: {feature: numpy stats}}."""
        return {e: stats_from_json(s) for e, s in self.episodes_stats_json.items()}

    def encoders(self) -> dict[str, Path]:
        """{column: checkpoint step folder} of the derived columns that carry the model
        computing them from the cameras (``meta/encoders/<column>/<step>/``)."""
        root = self.root / ENCODERS_DIR
        out = {}
        for col in sorted(p.name for p in root.iterdir()) if root.is_dir() else []:
            steps = list_steps(root / col)
            if col in self.features and steps:
                out[col] = root / col / str(steps[-1])
        return out

    def fingerprint(self) -> str:
        """Short hash of the metadata (info, episodes, tasks, per-episode stats, which
        change with any column's values): identifies the dataset's content."""
        import hashlib

        h = hashlib.sha256()
        v30 = (TASKS_PARQUET_PATH, *meta_v30.episode_files(self.root))
        for rel in (INFO_PATH, EPISODES_PATH, TASKS_PATH, EPISODES_STATS_PATH, *v30):
            if (self.root / rel).is_file():
                h.update((self.root / rel).read_bytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ columns
    @cached_property
    def _schema(self) -> pa.Schema:
        return (
            pq.read_schema(self.data_path(self.episodes[0].episode_index))
            if self.episodes
            else pa.schema([])
        )

    @property
    def _column_names(self) -> tuple[str, ...]:
        return tuple(self._schema.names)

    def is_vector_column(self, column: str) -> bool:
        """Whether the parquet column holds a list of floats per frame (a vector of any
        length, one included), from the first episode's schema."""
        t = self._schema.field(column).type
        return _is_list(t) and pa.types.is_floating(t.value_type)

    @cached_property
    def all_features(self) -> dict[str, dict]:
        """info.json's features plus an entry inferred from the parquet schema for each
        column the files hold but info.json does not declare (LeRobot's index columns
        last): what a dataset derived from this one declares, so no column is lost."""
        extra = {}
        for name in self._column_names:
            if name in self.features:
                continue
            t = self._schema.field(name).type
            if _is_list(t):
                first = self.read_table(self.episodes[0].episode_index, [name])[name]
                size = len(first[0]) if len(first) else 0
                dtype, shape = t.value_type, [int(getattr(t, "list_size", size))]
            else:
                dtype, shape = t, [1]
            kind = (
                "string"
                if pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
                else (
                    "bool" if pa.types.is_boolean(dtype) else str(np.dtype(dtype.to_pandas_dtype()))
                )
            )
            extra[name] = {"dtype": kind, "shape": shape, "names": None}
        declared = {k: v for k, v in self.features.items() if k not in INDEX_COLUMNS}
        index = {k: v for k, v in self.features.items() if k in INDEX_COLUMNS}
        return {**declared, **extra, **index}

    def column_names(self) -> list[str]:
        """Columns of the parquet files (from the first episode's schema, read once)."""
        return list(self._column_names)

    def require_column(self, column: str, why: str, fix: str) -> None:
        """Raise unless the parquet files have ``column``; the message names the first
        episode's file, then ``why`` (e.g. ", needed because stage_nums=2") and ``fix``."""
        if column not in self.column_names():
            first = self.episodes[0].episode_index
            raise DatasetFormatError(
                f"{self.data_path(first)}: episode {first} has no column {column}{why}. Fix: {fix}"
            )

    def _require_columns(self, columns: Sequence[str]) -> None:
        have = set(self.column_names())
        missing = [c for c in columns if c not in have]
        if missing:
            raise DatasetFormatError(
                f"{self.root}: parquet files have no column(s) {missing}; available: "
                f"{sorted(have)}. "
                "Fix: choose existing columns or produce them with the stage that writes them"
            )

    def read_table(self, episode_index: int, columns: Sequence[str] | None = None) -> pa.Table:
        """One episode's rows as an Arrow table (all columns, or ``columns`` in order)."""
        ep = self.episode(episode_index)
        return self.read_table_rows(ep, columns, ep.row_start, ep.length)

    def read_table_rows(
        self, ep: EpisodeMeta, columns: Sequence[str] | None, row_start: int, rows: int
    ) -> pa.Table:
        """Rows of ``ep``'s file (errors name ``ep``)."""
        path = self.root / ep.data_file
        try:
            table = read_parquet(path, columns, row_start, rows)
        except (pa.ArrowException, OSError) as exc:
            raise DatasetFormatError(
                f"{path}: episode {ep.episode_index} cannot be read ({exc}). Fix: rewrite the "
                f"episode from its source"
            ) from exc
        if columns is None:
            return table
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DatasetFormatError(
                f"{path}: episode {ep.episode_index} has no column(s) {missing}. Fix: rewrite "
                f"the episode or choose other columns"
            )
        return table.select(list(columns))

    def _tables(self, episodes: Sequence[int], columns: Sequence[str]) -> list[pa.Table]:
        """:meth:`read_table` of each episode, in order, each file read once (v3.0 files
        hold several episodes), files in parallel."""
        eps = [self.episode(int(e)) for e in episodes]
        by_file: dict[str, list[EpisodeMeta]] = {}
        for ep in eps:
            by_file.setdefault(ep.data_file, []).append(ep)

        def read(group: list[EpisodeMeta]) -> dict[int, pa.Table]:
            if len(group) == 1:
                return {group[0].episode_index: self.read_table(group[0].episode_index, columns)}
            lo = min(e.row_start for e in group)
            hi = max(e.row_start + e.length for e in group)
            table = self.read_table_rows(group[0], columns, lo, hi - lo)
            return {e.episode_index: table.slice(e.row_start - lo, e.length) for e in group}

        got: dict[int, pa.Table] = {}
        with ThreadPoolExecutor(IO_THREADS) as pool:
            for tables in pool.map(read, by_file.values()):
                got.update(tables)
        return [got[ep.episode_index] for ep in eps]

    def read_episode(self, episode_index: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """One episode's columns as numpy: scalars (T,), vectors (T, D)."""
        table = self.read_table(episode_index, columns)
        return {c: column_to_numpy(table[c]) for c in columns}

    def read_columns(
        self,
        columns: Sequence[str],
        episodes: Sequence[int] | None = None,
        check: Sequence[str] = (),
        why: str | Mapping[str, str] = "",
    ) -> dict[str, np.ndarray]:
        """Columns of many episodes at once, concatenated in episode order.

        Args:
            columns: column names.
            episodes: episode indices (default: all). Row ``offsets`` apply to all.
            check: columns to check as :meth:`check_values` does (finite floats) in the
                same pass over the files (all episodes; read, checked and dropped unless
                also in ``columns``); ``why``: the reason given in its message.

        Returns:
            {column: (N,) or (N, D) array}, N the total frames of those episodes.
        """
        columns = list(columns)
        self._require_columns(columns)
        if check:
            if episodes is not None:
                raise ValueError("read_columns: check= reads all episodes; give no episodes")
            return self._scan(list(check), why, {}, keep=columns)
        eps = self.episode_indices if episodes is None else np.asarray(episodes, dtype=np.int64)
        return _concat(self._tables(eps, columns), columns)

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()`` once per reader and ``key``; later calls return the same result.
        The files do not change under a reader, so a pre-run check and the node after it
        can share one read of the data."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def float_columns(self) -> list[str]:
        """Parquet features holding floating-point values (those that can be NaN/inf)."""
        floats = [
            k
            for k, ft in self.features.items()
            if ft.get("dtype") in ("float16", "float32", "float64")
        ]
        return [k for k in floats if k != "timestamp"]

    def check_values(
        self,
        columns: Sequence[str],
        why: str | Mapping[str, str] = "",
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """Raise :class:`DatasetFormatError` unless every value of ``columns`` is finite
        (floats) and inside ``ranges[column]`` (inclusive) where given.

        Reads the columns episode by episode in one pass (memory: one episode); the
        message names the first bad episode's file, the column, the frame and value, how
        many frames are bad in all, ``why`` the column is needed (one text, or one per
        column), and the fix. Columns already checked by this reader are skipped.
        """
        self._scan(list(columns), why, ranges or {})

    def _scan(
        self,
        columns: list[str],
        why: str | Mapping[str, str],
        ranges: Mapping[str, tuple[float, float]],
        keep: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """One pass over all episodes: check ``columns`` (see :meth:`check_values`), and
        return the ``keep`` columns concatenated (read in the same pass)."""
        columns = [c for c in dict.fromkeys(columns) if not self._was_checked(c, ranges.get(c))]
        keep = list(keep)
        self._require_columns(columns)
        for c in [c for c in columns if ranges.get(c) is None and c in self._faults]:
            if self._faults[c]:  # noted when the files were opened
                raise self._fault_error(self._faults[c], why)
            self._checked.add((c, None))
            columns.remove(c)
        if not columns:
            return self.read_columns(keep) if keep else {}
        read = list(dict.fromkeys([*keep, *columns]))

        try:
            tables = self._tables(self.episode_indices, read)
        except DatasetFormatError as exc:  # say why the missing column is needed
            missing = [c for c in read if repr(c) in str(exc)] or columns[:1]
            because = "".join(dict.fromkeys(_why(why, c) for c in missing))
            raise DatasetFormatError(str(exc).replace(". Fix:", f"{because}. Fix:", 1)) from exc

        def scan(ep: EpisodeMeta, table: pa.Table) -> tuple[pa.Table | None, list[tuple]]:
            found = [
                (ep, fault)
                for c in columns
                for _, fault in _episode_faults(c, column_to_numpy(table[c]), [0], ranges.get(c))
            ]
            return (table.select(keep) if keep else None), found

        results = [scan(ep, t) for ep, t in zip(self.episodes, tables)]
        faults = [fault for _, found in results for fault in found]
        if faults:  # the first bad episode's first bad column, counted over all episodes
            column = faults[0][1][0]
            raise self._fault_error([f for f in faults if f[1][0] == column], why)
        self._checked.update((c, ranges.get(c)) for c in columns)  # files do not change
        return _concat([t for t, _ in results], keep) if keep else {}

    def check_array(
        self,
        column: str,
        values: np.ndarray,
        why: str = "",
        value_range: tuple[float, float] | None = None,
    ) -> None:
        """:meth:`check_values` on a column already read for all episodes ((N,) or (N, D)
        in episode order, as :meth:`read_columns` returns it)."""
        if self._was_checked(column, value_range):
            return
        faults = _episode_faults(column, values, self.offsets[:-1], value_range)
        if faults:
            raise self._fault_error([(self.episodes[pos], f) for pos, f in faults], why)
        self._checked.add((column, value_range))

    def _was_checked(self, column: str, value_range: tuple[float, float] | None) -> bool:
        """A check passed before for ``column`` (with this range; any range covers none)."""
        return (column, value_range) in self._checked or (
            value_range is None and any(c == column for c, _ in self._checked)
        )

    def _fault_error(
        self, faults: list[tuple[EpisodeMeta, tuple]], why: str | Mapping[str, str]
    ) -> DatasetFormatError:
        """The error of one column's bad values (``(episode, (column, problem, row, value,
        bad rows))`` per episode, in order): the first, and the totals."""
        ep, (column, problem, row, value, _) = faults[0]
        frames = sum(f[4] for _, f in faults)
        return self._values_error(
            ep.episode_index, column, problem, row, value, frames, len(faults), _why(why, column)
        )

    def _values_error(
        self,
        episode: int,
        column: str,
        problem: str,
        frame: int,
        value: np.ndarray,
        frames: int,
        episodes: int,
        why: str,
    ) -> DatasetFormatError:
        value = value.tolist()
        value = value[0] if len(value) == 1 else value
        fix = (
            f"repair the column ({column} must lie in {problem.split('outside ', 1)[-1]}; a "
            f"progress column comes from the annotation: rerun it)"
            if problem.startswith("values")
            else "repair or drop those episodes (e.g. `lerobot-doctor fix <dataset> --fixes nan`)"
        )
        return DatasetFormatError(
            f"{self.data_path(episode)}: episode {episode}, column {column}: {problem} at frame "
            f"{frame} "
            f"(value {value}){why}; {_count(frames, 'bad frame')} in "
            f"{_count(episodes, 'episode')} in all. Fix: {fix}"
        )

    # ------------------------------------------------------------------ frames
    def _video_paths(
        self, episode_index: int, cameras: Sequence[str] | None
    ) -> dict[str, tuple[Path, int]]:
        """{video_key: (file, index of the episode's frame 0 in it)}."""
        ep = self.episode(episode_index)
        return {
            k: (self.video_path(episode_index, k), self.first_video_frame(ep, k))
            for k in self.resolve_cameras(cameras)
        }

    def resolve_cameras(self, cameras: Sequence[str] | None) -> list[str]:
        """Full video keys for camera names or keys (``top_head`` or
        ``observation.images.top_head``); all video keys when None."""
        if cameras is None:
            return list(self.video_keys)
        out = []
        for cam in cameras:
            match = [k for k in self.video_keys if k == cam or k.rsplit(".", 1)[-1] == cam]
            if not match:
                raise DatasetFormatError(
                    f"{self.root}: no camera {cam!r}; the dataset's video keys are "
                    f"{self.video_keys}. Fix: set the camera list to existing keys"
                )
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
        return iter_lockstep(
            self._video_paths(episode_index, cameras),
            start,
            stop,
            size,
            threads,
            f"episode {episode_index}",
        )

    def _frame_indices(self, episode_index: int, indices) -> np.ndarray:
        """``indices`` as int64, refused unless all are frames of the episode."""
        ep = self.episode(episode_index)
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= ep.length):
            raise IndexError(
                f"{self.root}: episode {episode_index} has {ep.length} frames; asked for "
                f"{idx.min()}..{idx.max()}"
            )
        return idx

    def iter_frames_at(
        self, episode_index: int, frames: np.ndarray, cameras: Sequence[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream ``{video_key: (H, W, 3) uint8}`` at the sorted distinct ``frames`` of one
        episode, cameras in step, each video decoded in one forward pass (gaps seeked
        over). Memory: one frame per camera."""
        frames = self._frame_indices(episode_index, frames)
        paths = self._video_paths(episode_index, cameras)
        streams = {
            k: VideoReader(p, context=f"episode {episode_index}").iter_at(frames + first)
            for k, (p, first) in paths.items()
        }
        for got in zip(*streams.values()):
            yield dict(zip(streams, got))

    def get_frames(
        self,
        episode_index: int,
        indices: Sequence[int] | np.ndarray,
        cameras: Sequence[str] | None = None,
        size: Size | None = None,
    ) -> dict[str, np.ndarray]:
        """Frames at ``indices`` for each camera: ``{video_key: (N, H, W, 3) uint8}``."""
        idx = self._frame_indices(episode_index, indices)
        return {
            k: VideoReader(p, size=size, context=f"episode {episode_index}").get(idx + first)
            for k, (p, first) in self._video_paths(episode_index, cameras).items()
        }

    def __repr__(self) -> str:
        return (
            f"LeRobotDatasetReader({str(self.root)!r}, episodes={self.num_episodes}, "
            f"frames={self.num_frames}, videos={self.video_keys})"
        )
