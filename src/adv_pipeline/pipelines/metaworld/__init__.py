"""The ``metaworld`` pipeline: Meta-World from recording to closed-loop policy."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
