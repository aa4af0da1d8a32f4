"""``type: adv_pipeline.datasets.RunsDataset``: a folder of training runs a node trains into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from adv_pipeline.checkpoints import Runs
from adv_pipeline.outputs import RUNS


class RunsDataset(AbstractDataset[None, Runs]):
    """Where a training writes: ``load()`` gives the node a :class:`~adv_pipeline.checkpoints.Runs`
    handle (the folder, and the run named in ``run`` or None for a new one), creating
    nothing. The trainer picks or creates the run folder inside it, so the path lives in
    catalog.yml. It is an input only, but an output for the safety checks (``output_kind``).

    Example catalog entry::

        estimator_runs:
          type: adv_pipeline.datasets.RunsDataset
          path: data/06_models/estimator
          run: ${runtime_params:estimator_run, null}
    """

    output_kind = RUNS
    workspace = True

    def __init__(
        self, *, path: str, run: str | None = None, metadata: dict[str, Any] | None = None
    ):
        self._path = Path(path)
        self._run = str(run) if run not in (None, "") else None
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> Runs:
        return Runs(self._path, self._run)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{self._path}: a RunsDataset is an input only; nodes train into the run folders it "
            f"gives them"
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "run": self._run}
