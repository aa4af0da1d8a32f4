"""Stage 0: per-frame advantage from annotated progress, thresholds per stage (or per task
and stage), and its discretisation into ``task_index`` with advantage prompts; every
episode keeps its own task (docs/semantics.md, "Stage 0"). Pure numpy over whole
datasets; no Kedro here."""

from .labels import (
    FrameLabels,
    LabelGroups,
    LabelingConfig,
    LabelInputs,
    assign_labels,
    frame_advantage,
    group_cuts,
    label_frames,
    label_groups,
    label_statistics,
    labeled_dataset,
    output_tasks,
    progress_advantage,
    read_label_inputs,
    stage_index,
    task_index,
)

__all__ = [
    "FrameLabels",
    "LabelGroups",
    "LabelInputs",
    "LabelingConfig",
    "assign_labels",
    "frame_advantage",
    "group_cuts",
    "label_frames",
    "label_groups",
    "label_statistics",
    "labeled_dataset",
    "output_tasks",
    "progress_advantage",
    "read_label_inputs",
    "stage_index",
    "task_index",
]
