"""Stage 0: per-frame advantage from annotated progress, per-stage thresholds, and its
discretisation into ``task_index`` with advantage prompts (docs/semantics.md, "Stage 0").
Pure numpy over whole datasets; no Kedro here."""

from .labels import (
    DISCRETIZATIONS,
    LabelingConfig,
    LabelInputs,
    assign_task_index,
    frame_advantage,
    label_statistics,
    labeled_dataset,
    progress_advantage,
    read_label_inputs,
    stage_cuts,
    stage_index,
)

__all__ = [
    "DISCRETIZATIONS",
    "LabelInputs",
    "LabelingConfig",
    "assign_task_index",
    "frame_advantage",
    "label_statistics",
    "labeled_dataset",
    "progress_advantage",
    "read_label_inputs",
    "stage_cuts",
    "stage_index",
]
