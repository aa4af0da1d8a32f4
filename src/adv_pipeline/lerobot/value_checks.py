"""Checks of a LeRobot dataset's column values that a stage asks for, with their refusals.

A stage needing a column calls :meth:`ValueChecks.require_column` (the files have it) or
:meth:`ValueChecks.check_values` / :meth:`ValueChecks.check_array` (every value finite, and
inside a range where given). A refusal is a :class:`DatasetFormatError` naming the first
bad episode's file, the column, the frame and value, how many frames and episodes are bad
in all, why the stage needs the column, and the fix. A check that passed is not repeated:
the files do not change under a reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from .columns import column_to_numpy, concat_columns
from .format import DatasetFormatError
from .metadata import DatasetMetadata, EpisodeMeta


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


def episode_faults(
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


def _why(why: str | Mapping[str, str], column: str) -> str:
    return why.get(column, "") if isinstance(why, Mapping) else why


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class ValueChecks(DatasetMetadata):
    """Column presence and value checks, each refusal worded with its why and its fix.

    A part of :class:`~adv_pipeline.lerobot.reader.LeRobotDatasetReader`: reads through
    :class:`~.columns.ColumnAccess`, and uses the non-finite values that
    :class:`~.file_checks.FileChecks` noted while opening the files."""

    _checked: set[tuple]  # (column, range) pairs check_values passed
    _faults: dict[str, list[tuple]]  # float column -> non-finite values found

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
                for _, fault in episode_faults(c, column_to_numpy(table[c]), [0], ranges.get(c))
            ]
            return (table.select(keep) if keep else None), found

        results = [scan(ep, t) for ep, t in zip(self.episodes, tables)]
        faults = [fault for _, found in results for fault in found]
        if faults:  # the first bad episode's first bad column, counted over all episodes
            column = faults[0][1][0]
            raise self._fault_error([f for f in faults if f[1][0] == column], why)
        self._checked.update((c, ranges.get(c)) for c in columns)  # files do not change
        return concat_columns([t for t, _ in results], keep) if keep else {}

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
        faults = episode_faults(column, values, self.offsets[:-1], value_range)
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
