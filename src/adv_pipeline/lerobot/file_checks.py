"""The checks of a LeRobot dataset's parquet and video files when it is opened.

Every parquet file: present and readable, its rows exactly its episodes' (no row and no
file left out), its columns typed as info.json declares, and its index columns true
(``episode_index`` its episode, ``frame_index`` 0..n-1, ``index`` the dataset row,
``timestamp`` within 1e-4 s of frame_index / fps, ``task_index`` a defined task). Every
video: present, readable, long enough for its episodes. A failure is a
:class:`DatasetFormatError` naming the file, the episode and the fix. Files are read in
parallel and checked a batch of episodes at a time with array operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .columns import INDEX_COLUMNS, IO_THREADS, column_to_numpy
from .format import (
    EPISODES_DIR,
    EPISODES_PATH,
    INFO_PATH,
    TIMESTAMP_TOLERANCE_S,
    V30,
    DatasetFormatError,
    format_error,
)
from .metadata import DatasetMetadata, EpisodeMeta
from .value_checks import episode_faults
from .video import probe

CHECK_BATCH = 64  # episodes checked together when a dataset is opened


def _batch_column(tables: list[pa.Table], column: str) -> np.ndarray:
    """One column of several episode tables, concatenated, as numpy."""
    try:
        chunks = [chunk for t in tables for chunk in t.column(column).chunks]
        return column_to_numpy(pa.chunked_array(chunks, type=tables[0].schema.field(column).type))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # types differ between files (all allowed)
        return np.concatenate([column_to_numpy(t.column(column)) for t in tables])


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


class FileChecks(DatasetMetadata):
    """The whole-file checks run when a dataset is opened (see the module docstring).

    A part of :class:`~adv_pipeline.lerobot.reader.LeRobotDatasetReader`: the float
    columns' non-finite values are noted in ``_faults`` in the same pass, for
    :class:`~.value_checks.ValueChecks` to refuse when a stage asks for the column."""

    _faults: dict[str, list[tuple]]  # float column -> non-finite values found

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
                faults = episode_faults(c, _batch_column(tables, c), starts)
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
