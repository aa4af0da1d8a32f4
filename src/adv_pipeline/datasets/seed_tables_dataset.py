"""``type: adv_pipeline.datasets.SeedTablesDataset``: each training seed's table of a sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class SeedTablesDataset(PartitionedDataset):
    """Kedro's ``PartitionedDataset`` (partition id: the seed; values: loaders), that
    loads ``{}`` from a folder no sweep wrote yet instead of raising, so that the node
    reading it can say which seeds to run."""

    def load(self) -> dict[str, Callable[[], Any]]:
        if not self._list_partitions():
            return {}
        return super().load()
