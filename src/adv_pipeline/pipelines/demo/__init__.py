"""The ``demo`` pipeline: write the embedded demo dataset (data/01_raw/demo)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
