"""``type: adv_pipeline.datasets.RunDirDataset``: a directory a node writes into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class RunDirDataset(AbstractDataset[None, Path]):
    """A working directory (e.g. where training writes checkpoints as it goes).

    ``load()`` returns the directory as a :class:`~pathlib.Path` (created if missing), so
    the path lives in catalog.yml and the node receives it. It is an input only.
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        self._path.mkdir(parents=True, exist_ok=True)
        return self._path

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path}: a RunDirDataset is an input only; nodes write inside the directory it gives them")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
