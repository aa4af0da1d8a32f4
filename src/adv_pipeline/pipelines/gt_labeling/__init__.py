"""The ``gt_labeling`` pipeline (Stage 0): advantage from progress -> task_index -> prompts."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
