"""The ``awbc`` pipeline (Stage 3): train AWBC and plain BC on awbc_dataset, evaluate both."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
