"""``type: adv_pipeline.datasets.LeRobotDataset``: a LeRobot v2.1 directory in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.lerobot import INFO_PATH, LeRobotDatasetReader, find_dataset
from adv_pipeline.outputs import DATASET, resolved


class LeRobotDataset(AbstractDataset[LeRobotDatasetReader, LeRobotDatasetReader]):
    """A LeRobot v2.1 dataset directory; it loads and saves, it never computes.

    ``load()`` validates the directory and returns a lightweight
    :class:`~adv_pipeline.lerobot.LeRobotDatasetReader` (metadata only; columns and
    frames are read on demand), reused by later nodes of the run. ``save()`` takes the
    dataset a node has written at ``path`` (through the :class:`LeRobotTarget` of the same
    path) and only checks that it is there: the work happened in the node.

    Example catalog entry::

        raw_dataset:
          type: adv_pipeline.datasets.LeRobotDataset
          path: ${runtime_params:raw_dataset_path, data/01_raw/demo}
    """

    output_kind = DATASET

    def __init__(
        self, *, path: str, check_videos: bool = True, metadata: dict[str, Any] | None = None
    ):
        self._path = Path(path)
        self._check_videos = check_videos
        self.metadata = metadata
        # One reader per run: later nodes reuse it (no re-validation, memoised checks).
        self._reader: LeRobotDatasetReader | None = None
        self._stamp: int | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _info_stamp(self) -> int | None:
        try:
            return (self._path / INFO_PATH).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def load(self) -> LeRobotDatasetReader:
        if self._reader is not None and self._stamp == self._info_stamp():
            return self._reader
        root = find_dataset(self._path)  # or the repo id under LeRobot's home
        self._reader = LeRobotDatasetReader(root, check_videos=self._check_videos)
        self._stamp = self._info_stamp()
        return self._reader

    def save(self, data: LeRobotDatasetReader) -> None:
        if not isinstance(data, LeRobotDatasetReader):
            raise DatasetError(
                f"{self._path}: expected the dataset a node wrote here (a LeRobotDatasetReader), "
                f"got {type(data).__name__}"
            )
        if resolved(data.root) != resolved(self._path):
            raise DatasetError(
                f"{self._path}: the node wrote its dataset to {data.root}, not here. Fix: write "
                f"through the LeRobotTarget of this path"
            )
        self._reader, self._stamp = data, self._info_stamp()

    def _exists(self) -> bool:
        return (self._path / INFO_PATH).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "check_videos": self._check_videos}
