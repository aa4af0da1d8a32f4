"""``type: adv_pipeline.datasets.LeRobotTarget``: where a node writes a LeRobot dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.outputs import DATASET, OutputTarget


class LeRobotTarget(AbstractDataset[None, OutputTarget]):
    """The destination of a dataset a node writes episode by episode: ``load()`` gives
    the node an :class:`~adv_pipeline.outputs.OutputTarget` (path, overwrite) and creates
    nothing; the node writes there (:class:`~adv_pipeline.lerobot.DatasetWriter`) and
    returns the written dataset to the :class:`LeRobotDataset` of the same path. So the
    work happens in the node, the path lives in catalog.yml, and the output safety rules
    treat it as an output (``workspace``).

    Example catalog entry::

        raw_dataset_target:
          type: adv_pipeline.datasets.LeRobotTarget
          path: ${_raw_dataset_path}
          overwrite: ${_overwrite}
    """

    output_kind = DATASET
    workspace = True

    def __init__(
        self, *, path: str, overwrite: bool = False, metadata: dict[str, Any] | None = None
    ):
        self._path = Path(path)
        self._overwrite = bool(overwrite)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> OutputTarget:
        return OutputTarget(self._path, self._overwrite)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{self._path}: a LeRobotTarget is an input only; the node writes the dataset and "
            f"returns it to the LeRobotDataset of this path"
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "overwrite": self._overwrite}
