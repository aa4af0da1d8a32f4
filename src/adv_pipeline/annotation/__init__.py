"""Step 0: stage boundaries marked by a person -> the progress columns Stage 0 needs.

An annotation file (JSON Lines or CSV, one record per episode) gives each episode's start
frame, end frame and stage boundaries (in frames or seconds) and optionally a success
flag; :func:`annotation_columns` turns them into ``stage_progress_gt`` (linear in time
inside each stage, as kai0 annotates), overall progress (linear from start to end) and
each frame's stage. No Kedro here.
"""

from .columns import AnnotationConfig, annotated_dataset, annotation_columns
from .records import (
    ANNOTATION_FIELDS,
    AnnotationError,
    AnnotationFile,
    EpisodeAnnotation,
    read_annotations,
    resolve_annotations,
    write_annotations,
)

__all__ = [
    "ANNOTATION_FIELDS",
    "AnnotationError",
    "AnnotationFile",
    "AnnotationConfig",
    "EpisodeAnnotation",
    "annotated_dataset",
    "annotation_columns",
    "read_annotations",
    "resolve_annotations",
    "write_annotations",
]
