"""Parquet columns of a LeRobot dataset, read with pyarrow, without touching videos.

:func:`read_parquet` reads a file's rows single-threaded, only the row groups that hold
them (a v3.0 file holds several episodes); :class:`ColumnAccess` reads one episode's
columns or many episodes' at once (each file read once, files in parallel) as Arrow tables
or numpy arrays, and knows the files' schema: column names, vector columns, and the
features a derived dataset declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .format import DatasetFormatError
from .metadata import DatasetMetadata, EpisodeMeta

IO_THREADS = 4  # files read in parallel (each single-threaded): more threads than cores pays
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "task_index", "index")


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


def concat_columns(tables: list[pa.Table], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Episode tables concatenated in order, as numpy columns."""
    if not tables:
        return {c: np.zeros((0,)) for c in columns}
    table = pa.concat_tables(tables)
    return {c: column_to_numpy(table[c]) for c in columns}


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


class ColumnAccess(DatasetMetadata):
    """The parquet columns of the dataset's episodes: schema, tables, numpy columns.

    A part of :class:`~adv_pipeline.lerobot.reader.LeRobotDatasetReader`: the columns
    asked for are refused unless the files have them, and ``read_columns(check=...)``
    checks values in the same pass, both by :class:`~.value_checks.ValueChecks`."""

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
        return concat_columns(self._tables(eps, columns), columns)
