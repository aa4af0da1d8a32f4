"""``type: adv_pipeline.datasets.LeRobotTarget``: where a node writes a LeRobot dataset."""

from __future__ import annotations

from typing import Any

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
    """

    output_kind = DATASET

    def __init__(
        self, *, path: str, overwrite: bool = False, metadata: dict[str, Any] | None = None
    ):
        super().__init__(path=path, metadata=metadata)
        self._overwrite = bool(overwrite)

    def load(self) -> OutputTarget:
        return OutputTarget(self._path, self._overwrite)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "overwrite": self._overwrite}
