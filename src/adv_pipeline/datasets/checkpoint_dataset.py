"""``type: adv_pipeline.datasets.CheckpointDirDataset``: a run directory of checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.checkpoints import Checkpoint, copy_checkpoint, list_steps, load_checkpoint


class CheckpointDirDataset(AbstractDataset[Checkpoint, Checkpoint]):
    """A run directory ``<path>/<step>/{model.safetensors, metadata.json, ...}``.

    ``load()`` returns the :class:`~adv_pipeline.checkpoints.Checkpoint` at ``step``
    (default: the latest). ``save(checkpoint)`` is a no-op when the checkpoint already
    lives in ``path`` (training wrote it there) and copies it in otherwise.
    """

    def __init__(self, *, path: str, step: int | None = None, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._step = int(step) if step not in (None, "", "latest") else None
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> Checkpoint:
        try:
            return load_checkpoint(self._path, self._step)
        except FileNotFoundError as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: Checkpoint) -> None:
        if not isinstance(data, Checkpoint):
            raise DatasetError(f"{self._path}: expected a Checkpoint, got {type(data).__name__}")
        if data.run_dir.resolve() != self._path.resolve():
            copy_checkpoint(data, self._path)

    def _exists(self) -> bool:
        return bool(list_steps(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "step": self._step}
