"""The ``estimator`` pipeline (Stage 1): train the advantage estimator."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
