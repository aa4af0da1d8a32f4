"""What the slot datasets share: a place in catalog.yml that a node writes into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class OutputSlot(AbstractDataset):
    """An input-only dataset giving a node the place it writes an output into (it
    creates nothing). The output safety rules treat it as an output (``workspace``)."""

    workspace = True
    output_kind: str

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"{self._path}: {type(self).__name__} is an input only; the node writes into the "
            "place it gives and returns the result to the output dataset of this path"
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
