"""The ``seeds`` pipeline: the summary of a seed sweep (``kedro sweep``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
