"""``type: adv_pipeline.datasets.LeRobotTarget``: where a node writes a LeRobot dataset."""

from __future__ import annotations

from typing import Any

from kedro.io import DatasetError

from adv_pipeline.lerobot import FORMATS
from adv_pipeline.outputs import DATASET, OutputTarget

from .slot import OutputSlot


class LeRobotTarget(OutputSlot):
    """The destination of a dataset a node writes episode by episode: ``load()`` gives
    the node an :class:`~adv_pipeline.outputs.OutputTarget` (path, overwrite) and creates
    nothing; the node writes there (:class:`~adv_pipeline.lerobot.DatasetWriter`) and
    returns the written dataset to the :class:`LeRobotDataset` of the same path. So the
    work happens in the node and the path lives in catalog.yml.

    Example catalog entry::

        raw_dataset_target:
          type: adv_pipeline.datasets.LeRobotTarget
          path: ${_raw_dataset_path}
          overwrite: ${_overwrite}
          format: ${_dataset_format}   # input (the input dataset's) | v2.1 | v3.0
    """

    output_kind = DATASET

    def __init__(
        self,
        *,
        path: str,
        overwrite: bool = False,
        format: str = "input",
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(path=path, metadata=metadata)
        self._overwrite = bool(overwrite)
        if str(format) not in ("input", *FORMATS):
            raise DatasetError(
                f"{self._path}: dataset_format {format!r} is not a LeRobot format we write. "
                f'Fix: --params "dataset_format=<input|{"|".join(FORMATS)}>" (input: the '
                f"input dataset's format)"
            )
        self._format = None if str(format) == "input" else str(format)

    def load(self) -> OutputTarget:
        return OutputTarget(self._path, self._overwrite, self._format)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "overwrite": self._overwrite, "format": self._format}
