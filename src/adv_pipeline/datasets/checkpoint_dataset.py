"""``type: adv_pipeline.datasets.CheckpointDirDataset``: a checkpoint in a folder of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.checkpoints import Checkpoint, RunError, copy_checkpoint, load_checkpoint
from adv_pipeline.outputs import RUNS, resolved


class CheckpointDirDataset(AbstractDataset[Checkpoint, Checkpoint]):
    """A checkpoint ``<path>/<run>/<step>/{model.safetensors, metadata.json, ...}``.

    ``load()`` returns the :class:`~adv_pipeline.checkpoints.Checkpoint` at ``step`` of
    ``run`` (defaults: the latest run, its latest step; ``path`` may also be a run folder).
    ``save(checkpoint)`` is a no-op when the checkpoint already lives under ``path``
    (training wrote it there) and copies it in otherwise. With ``optional`` (a training
    that may not run, e.g. the curated-BC baseline), ``save(False)`` (no checkpoint: Kedro
    saves no None) writes nothing and
    ``load()`` gives None where there is no checkpoint.
    """

    output_kind = RUNS

    def __init__(
        self,
        *,
        path: str,
        run: str | None = None,
        step: int | None = None,
        optional: bool = False,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = Path(path)
        self._run = str(run) if run not in (None, "", "latest") else None
        self._step = int(step) if step not in (None, "", "latest") else None
        self._optional = bool(optional)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> Checkpoint | None:
        if self._optional and not self._exists():
            return None
        try:
            return load_checkpoint(self._path, self._step, self._run)
        except RunError as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: Checkpoint | bool) -> None:
        if data is False and self._optional:
            return
        if not isinstance(data, Checkpoint):
            raise DatasetError(f"{self._path}: expected a Checkpoint, got {type(data).__name__}")
        root = resolved(self._path)
        if root not in (resolved(data.run_dir), resolved(data.run_dir.parent)):
            copy_checkpoint(data, self._path)

    def _exists(self) -> bool:
        try:
            load_checkpoint(self._path, self._step, self._run)
        except RunError:
            return False
        return True

    def _describe(self) -> dict[str, Any]:
        return {
            "path": str(self._path),
            "run": self._run,
            "step": self._step,
            "optional": self._optional,
        }
