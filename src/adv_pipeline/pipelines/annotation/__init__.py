"""The ``annotation`` pipeline (step 0): stage boundaries -> progress columns."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
