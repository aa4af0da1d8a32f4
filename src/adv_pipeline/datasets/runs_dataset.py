"""``type: adv_pipeline.datasets.RunsDataset``: a folder of training runs a node trains into."""

from __future__ import annotations

from typing import Any

from adv_pipeline.checkpoints import Runs
from adv_pipeline.outputs import RUNS

from .slot import OutputSlot


class RunsDataset(OutputSlot):
    """Where a training writes: ``load()`` gives the node a :class:`~adv_pipeline.checkpoints.Runs`
    handle (the folder, and the run named in ``run`` or None for a new one), creating
    nothing. The trainer picks or creates the run folder inside it, so the path lives in
    catalog.yml.

    Example catalog entry::

        estimator_runs:
          type: adv_pipeline.datasets.RunsDataset
          path: data/06_models/estimator
          run: ${runtime_params:estimator_run, null}
    """

    output_kind = RUNS

    def __init__(
        self, *, path: str, run: str | None = None, metadata: dict[str, Any] | None = None
    ):
        super().__init__(path=path, metadata=metadata)
        self._run = str(run) if run not in (None, "") else None

    def load(self) -> Runs:
        return Runs(self._path, self._run)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "run": self._run}
