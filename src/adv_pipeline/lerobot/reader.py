"""Read a LeRobot dataset directory (v2.1 or v3.0): validated metadata, columns, frames.

``LeRobotDatasetReader(root)`` checks the whole layout up front (info.json, episodes,
tasks, every parquet's row count, every video's presence and frame count, task_index
range) and raises :class:`DatasetFormatError` naming the file and the fix. Each episode
knows its file, its first row there and, per camera, its video file and first frame
(v2.1: one file per episode, from row and frame 0; v3.0: see :mod:`.meta_v30`). After that,
columns are read with pyarrow for all episodes at once or episode by episode, without
touching videos; frames are decoded on demand, streamed, never a whole video at once.

The reader is put together from one part per concern, as LeRobot separates a dataset's
metadata from its data:

- :mod:`.metadata`: info.json, tasks, episodes, paths, stats, fingerprint;
- :mod:`.file_checks`: the parquet and video files checked when the dataset opens;
- :mod:`.value_checks`: column presence and value checks a stage asks for;
- :mod:`.columns`: parquet columns as Arrow tables or numpy arrays;
- :mod:`.frames`: camera frames decoded from the videos.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from .columns import INDEX_COLUMNS, IO_THREADS, ColumnAccess, column_to_numpy, read_parquet
from .file_checks import FileChecks
from .format import DatasetFormatError
from .frames import FrameAccess
from .metadata import DatasetMetadata, EpisodeMeta
from .value_checks import ValueChecks

__all__ = [
    "INDEX_COLUMNS",
    "IO_THREADS",
    "DatasetFormatError",
    "DatasetMetadata",
    "EpisodeMeta",
    "LeRobotDatasetReader",
    "column_to_numpy",
    "read_parquet",
]

_T = TypeVar("_T")


class LeRobotDatasetReader(FileChecks, ValueChecks, ColumnAccess, FrameAccess):
    """A validated, lazily read LeRobot dataset directory (v2.1 or v3.0).

    Args:
        root: the dataset directory (holding meta/, data/, videos/).
        check_videos: also check every video's presence and frame count (reads headers
            only; set False to skip on huge datasets whose videos you will not touch).
        check_files: check every parquet file (rows, task_index range) and video; False
            trusts the metadata (for a dataset this process has just written).
    """

    def __init__(self, root: str | Path, check_videos: bool = True, check_files: bool = True):
        super().__init__(root)
        self._checked: set[tuple] = set()  # (column, range) pairs check_values passed
        self._memo: dict[Hashable, Any] = {}
        self._faults: dict[str, list[tuple]] = {}  # float column -> non-finite values found
        if check_files:
            self._check_parquet()
        if check_files and check_videos:
            self._check_videos()

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()`` once per reader and ``key``; later calls return the same result.
        The files do not change under a reader, so a pre-run check and the node after it
        can share one read of the data."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def __repr__(self) -> str:
        return (
            f"LeRobotDatasetReader({str(self.root)!r}, episodes={self.num_episodes}, "
            f"frames={self.num_frames}, videos={self.video_keys})"
        )
