"""``type: adv_pipeline.datasets.LeRobotDataset``: a LeRobot v2.1 directory in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.lerobot import DerivedDataset, LeRobotDatasetReader, NewDataset
from adv_pipeline.lerobot.format import INFO_PATH
from adv_pipeline.outputs import DATASET


class LeRobotDataset(AbstractDataset[NewDataset | DerivedDataset | LeRobotDatasetReader, LeRobotDatasetReader]):
    """A LeRobot v2.1 dataset directory.

    ``load()`` validates the directory and returns a lightweight
    :class:`~adv_pipeline.lerobot.LeRobotDatasetReader` (metadata only; columns and
    frames are read on demand). ``save()`` takes the write plan a node returns
    (:class:`~adv_pipeline.lerobot.NewDataset` or
    :class:`~adv_pipeline.lerobot.DerivedDataset`) and writes it atomically to ``path``.

    ``overwrite`` lets ``save()`` replace what sits at ``path`` even when this project did
    not write it (never an input); a dataset this project wrote is replaced without it.

    Example catalog entry::

        raw_dataset:
          type: adv_pipeline.datasets.LeRobotDataset
          path: ${runtime_params:raw_dataset_path, data/01_raw/demo}
    """

    output_kind = DATASET

    def __init__(self, *, path: str, check_videos: bool = True, overwrite: bool = False, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._check_videos = check_videos
        self._overwrite = bool(overwrite)
        self.metadata = metadata
        # One reader per run: later nodes reuse it (no re-validation, shared table cache).
        self._reader: LeRobotDatasetReader | None = None
        self._stamp: int | None = None

    def _info_stamp(self) -> int | None:
        try:
            return (self._path / INFO_PATH).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def load(self) -> LeRobotDatasetReader:
        if self._reader is not None and self._stamp == self._info_stamp():
            return self._reader
        if not (self._path / INFO_PATH).is_file():
            raise DatasetError(
                f"{self._path}: no LeRobot dataset here ({INFO_PATH} missing). Fix: run the pipeline "
                "that writes it (e.g. `kedro run --pipeline demo`) or pass its path as a runtime "
                "parameter (`--params \"<dataset>_path=/path/to/dataset\"`)"
            )
        self._reader = LeRobotDatasetReader(self._path, check_videos=self._check_videos)
        self._stamp = self._info_stamp()
        return self._reader

    def save(self, data: NewDataset | DerivedDataset | LeRobotDatasetReader) -> None:
        if isinstance(data, LeRobotDatasetReader):
            if data.root.resolve() != self._path.resolve():
                raise DatasetError(f"{self._path}: got a dataset at {data.root}; return a NewDataset or DerivedDataset plan to write here")
            return
        if not hasattr(data, "write"):
            raise DatasetError(f"{self._path}: cannot save {type(data).__name__}; expected NewDataset or DerivedDataset")
        self._reader = data.write(self._path, overwrite=self._overwrite)
        self._stamp = self._info_stamp()

    def _exists(self) -> bool:
        return (self._path / INFO_PATH).is_file()

    @property
    def path(self) -> Path:
        return self._path

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "check_videos": self._check_videos, "overwrite": self._overwrite}
