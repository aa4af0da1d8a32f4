"""Checks that run before a pipeline does any work (called by :mod:`adv_pipeline.hooks`).

A node declares its input checks with ``@checked_by(check)``: ``check`` takes the node's
inputs (same order) and raises on bad input. Before the pipeline starts, and before an
MLflow run exists, every check whose inputs are already on disk (inputs of the
pipeline, not produced by it) runs on them; the others run when their node does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Pipeline


def checked_by(check: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Mark a node function with the check of its inputs."""

    def mark(func: Callable) -> Callable:
        func.preflight = check
        return func

    return mark


def run_preflight(pipeline: Pipeline, catalog) -> list[str]:
    """Run the checks of every node whose inputs exist before the run; returns the
    names of the nodes checked."""
    available = set(pipeline.inputs())
    checked = []
    for node in pipeline.nodes:
        check = getattr(node.func, "preflight", None)
        if check is None or not set(node.inputs) <= available:
            continue
        check(*[catalog.load(name) for name in node.inputs])
        checked.append(node.name)
    return checked
