"""The ``estimation`` pipeline (Stage 2): label data with the estimator, then the AWBC labels."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
