"""Project pipelines."""

from __future__ import annotations

from importlib import resources

from kedro.framework import project
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from adv_pipeline.configs import closest
from adv_pipeline.errors import InputError

# not part of the default run: chains made of the other pipelines, and the seed sweep's summary
NOT_DEFAULT = ("metaworld", "seeds", "__default__")


def pipeline_names() -> list[str]:
    """The names of the project's pipelines (the packages under ``adv_pipeline.pipelines``)."""
    package = resources.files("adv_pipeline.pipelines")
    return sorted(p.name for p in package.iterdir() if (p / "pipeline.py").is_file())


def _check_requested() -> None:
    # Kedro 1.x imports only the pipelines named by --pipelines; a misspelled name would
    # surface as an ImportError of a module that does not exist.
    requested = getattr(project.pipelines, "_requested_pipelines", None) or []
    names = pipeline_names()
    for name in requested:
        if name != "__default__" and name not in names:
            raise InputError(
                f"--pipelines: no pipeline named {name!r}{closest(name, names)} The project's "
                f"pipelines: {', '.join(names)}. Fix: name one of them (or leave --pipelines "
                f"out to run them all)"
            )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    _check_requested()
    pipelines = find_pipelines(raise_errors=True)
    # the metaworld chain holds the other pipelines (Stage 0 reading the annotation's
    # output): the default run is the demo's
    pipelines["__default__"] = sum(p for name, p in pipelines.items() if name not in NOT_DEFAULT)
    return pipelines
