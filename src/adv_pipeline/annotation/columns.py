"""Annotation records -> per-frame progress columns, vectorised over all frames."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from adv_pipeline.lerobot import DerivedDataset, LeRobotDatasetReader
from adv_pipeline.outputs import shown_path
from adv_pipeline.schema import STAGE_PROGRESS, SUCCESS

from .records import AnnotationFile, FrameAnnotation, resolve_annotations

log = logging.getLogger(__name__)

STAGE_INDEX = "stage_index_gt"
OUTSIDE = "outside_annotation"


@dataclass(frozen=True)
class AnnotationConfig:
    """``parameters_annotation.yml``: how records become columns.

    Attributes:
        stage_nums: stages every record must have (None: as many as the first record).
        allow_missing: leave episodes without a record out of the output (reported)
            instead of refusing the file.
        progress_columns: columns that receive the overall progress, linear from the
            task's start (0) to its end (1); e.g. ``[progress_gt, progress]`` to give
            Stage 0's default advantage source a column (on the command line, names
            separated by spaces: ``annotation.progress_columns=progress_gt progress``).
        workers: threads rewriting episode files.
    """

    stage_nums: int | None = None
    allow_missing: bool = False
    progress_columns: Sequence[str] = ("progress_gt",)
    workers: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.progress_columns, str):  # from --params: "progress_gt progress"
            object.__setattr__(self, "progress_columns", tuple(self.progress_columns.split()))
        object.__setattr__(self, "progress_columns", tuple(self.progress_columns))
        if self.stage_nums is not None and int(self.stage_nums) < 1:
            raise ValueError(f"stage_nums must be >= 1 or null, got {self.stage_nums}")
        if not self.progress_columns:
            raise ValueError("progress_columns must name at least one column, e.g. [progress_gt]")
        reserved = {STAGE_PROGRESS, STAGE_INDEX, OUTSIDE, SUCCESS}
        clash = sorted(set(self.progress_columns) & reserved)
        if clash:
            raise ValueError(f"progress_columns may not name {clash}: the pipeline writes those")


def annotation_columns(
    lengths: np.ndarray, annotations: Sequence[FrameAnnotation | None]
) -> dict[str, np.ndarray]:
    """Per-frame columns of consecutive episodes.

    Frame t of stage k (first frame b_k, length L_k) gets ``stage_progress_gt = k / K +
    ((t - b_k) / L_k) / K`` (float64 arithmetic, stored float32), and overall progress
    ``(t - start) / (end - start)``; frames before the start get 0, after the end 1,
    and ``outside_annotation = 1``. Episodes without an annotation (None) get zeros.

    Args:
        lengths: (E,) frames per episode.
        annotations: per episode, its frames (all with the same number of stages K).

    Returns:
        {``stage_progress_gt``: (N,) float32, ``progress``: (N,) float32 (overall),
        ``stage_index_gt``: (N,) int64, ``outside_annotation``: (N,) int64,
        ``success``: (N,) int64 1/0, -1 where not annotated}.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    present = [a for a in annotations if a is not None]
    stages = present[0].stages if present else 1
    edges = np.zeros((len(lengths), stages + 1), dtype=np.int64)
    success = np.full(len(lengths), -1, dtype=np.int64)
    for i, a in enumerate(annotations):  # per episode, not per frame
        if a is None:
            edges[i] = np.arange(stages + 1)  # any valid edges: its frames are dropped
        else:
            edges[i] = a.edges
            if a.success is not None:
                success[i] = int(a.success)
    ep = np.repeat(np.arange(len(lengths)), lengths)
    t = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    e = edges[ep]
    stage = (t[:, None] >= e[:, 1:stages]).sum(axis=1)
    lo = np.take_along_axis(e, stage[:, None], axis=1)[:, 0]
    span = np.take_along_axis(e, stage[:, None] + 1, axis=1)[:, 0] - lo
    sp = stage / stages + ((t - lo) / span) / stages
    start, end = e[:, 0], e[:, -1] - 1
    before, after = t < start, t > end
    sp[before], sp[after] = 0.0, 1.0
    stage[before], stage[after] = 0, stages - 1
    progress = np.clip((t - start) / np.maximum(end - start, 1), 0.0, 1.0)
    return {
        STAGE_PROGRESS: sp.astype(np.float32),
        "progress": progress.astype(np.float32),
        STAGE_INDEX: stage.astype(np.int64),
        OUTSIDE: (before | after).astype(np.int64),
        SUCCESS: success[ep],
    }


def annotated_dataset(
    dataset: LeRobotDatasetReader, annotations: AnnotationFile, config: AnnotationConfig
) -> tuple[DerivedDataset, dict]:
    """The write plan of ``dataset`` with the annotation columns, and a report.

    Raises (before anything is written):
        AnnotationError: see :func:`~.records.resolve_annotations`.
    """
    records = annotations.records
    lengths = dict(zip(dataset.episode_indices.tolist(), dataset.lengths.tolist()))
    frames, missing = resolve_annotations(
        records,
        lengths,
        dataset.fps,
        annotations.path,
        None if config.stage_nums is None else int(config.stage_nums),
        bool(config.allow_missing),
    )
    per_episode = [frames.get(int(e)) for e in dataset.episode_indices]
    cols = annotation_columns(dataset.lengths, per_episode)
    progress = cols.pop("progress")
    columns = {STAGE_PROGRESS: cols[STAGE_PROGRESS], STAGE_INDEX: cols[STAGE_INDEX]}
    columns.update({name: progress for name in config.progress_columns})
    columns[OUTSIDE] = cols[OUTSIDE]
    if any(a.success is not None for a in frames.values()):
        columns[SUCCESS] = cols[SUCCESS]
    keep = [int(e) for e in dataset.episode_indices if int(e) in frames]
    if missing:
        log.warning(
            "%d episode(s) without an annotation left out (annotation.allow_missing): %s",
            len(missing),
            missing,
        )
    replaced = sorted(set(columns) & set(dataset.column_names()))
    outside = columns[OUTSIDE].astype(bool)
    kept_rows = np.repeat(np.isin(dataset.episode_indices, keep), dataset.lengths)
    report = {
        "annotations": shown_path(annotations.path),
        "episodes": len(keep),
        "skipped_episodes": len(missing),
        "skipped": missing,
        "stages": per_episode_stages(frames),
        "frames": int(kept_rows.sum()),
        "frames_outside_annotation": int((outside & kept_rows).sum()),
        "replaced_columns": replaced,
        "written_columns": list(columns),
        "successes": sum(1 for a in frames.values() if a.success),
        "failures": sum(1 for a in frames.values() if a.success is False),
    }
    plan = DerivedDataset(
        dataset,
        columns,
        workers=config.workers,
        episodes=keep if missing else None,
    )
    return plan, report


def per_episode_stages(frames: Mapping[int, FrameAnnotation]) -> int:
    """The number of stages of the annotation (0 when nothing is annotated)."""
    return next(iter(frames.values())).stages if frames else 0
