"""``type: adv_pipeline.datasets.AnnotationsDataset``: an annotation file in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from adv_pipeline.annotation.records import AnnotationFile, EpisodeAnnotation, write_annotations


class AnnotationsDataset(AbstractDataset[AnnotationFile, list[EpisodeAnnotation]]):
    """A boundary file (``.jsonl`` or ``.csv``, see :mod:`adv_pipeline.annotation.records`).

    ``load()`` reads and parses it (an :class:`AnnotationFile`); ``save()`` writes
    records atomically. Written files follow the output rules of any report: a file this
    project did not write is replaced only with ``overwrite=true``.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> AnnotationFile:
        return AnnotationFile.read(self._filepath)

    def save(self, data: list[EpisodeAnnotation]) -> None:
        write_annotations(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
