"""Nodes of the demo pipeline (thin: unpack parameters, call domain code): the recording of
the world named by the ``world`` parameter (``demo``: the embedded demo dataset;
``metaworld``: Meta-World's scripted experts at several qualities)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from adv_pipeline.annotation import EpisodeAnnotation
from adv_pipeline.configs import ConfigError, closest
from adv_pipeline.figures import dataset_overview_figure
from adv_pipeline.lerobot import LeRobotDatasetReader, NewDataset
from adv_pipeline.outputs import OutputTarget
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.reporting import dataset_summary, metrics_for_mlflow
from adv_pipeline.sim.dataset import demo_annotations, demo_dataset_plan

RECORDED_WORLDS = ("demo", "metaworld")


def _plan(world: str, demo: dict[str, Any], metaworld: dict[str, Any]) -> NewDataset:
    if world == "demo":
        return demo_dataset_plan(parse("demo", demo))
    if world == "metaworld":
        from adv_pipeline.worlds.metaworld import recording_plan

        return recording_plan(parse("metaworld", metaworld))
    raise ConfigError(
        f"parameters: world={world!r}{closest(str(world), RECORDED_WORLDS)} The recording "
        f"pipeline records {', '.join(RECORDED_WORLDS)}. Fix: set world in "
        f"conf/base/parameters.yml or --params (kedro run --env metaworld sets metaworld)"
    )


def _check(world: str, demo: dict, metaworld: dict, target: OutputTarget) -> None:
    _plan(world, demo, metaworld)  # the parameters and task names, before any work


@checked_by(_check)
def make_demo_dataset(
    world: str, demo: dict[str, Any], metaworld: dict[str, Any], target: OutputTarget
) -> LeRobotDatasetReader:
    """Record the episodes of ``world`` (``parameters_demo.yml`` or
    ``parameters_metaworld.yml``) and write them to ``target``."""
    return _plan(world, demo, metaworld).write(target.path, target.overwrite, target.format)


def demo_annotation_file(
    world: str, demo: dict[str, Any], metaworld: dict[str, Any], dataset: LeRobotDatasetReader
) -> list[EpisodeAnnotation]:
    """The boundary file of the recorded episodes: what the ``annotation`` pipeline turns
    into ``stage_progress_gt`` (the demo: its simulator's stages; Meta-World: the
    expert's phases, read from the recorded states, and each episode's success)."""
    if world == "metaworld":
        from adv_pipeline.worlds.metaworld import recording_annotations

        return recording_annotations(dataset, parse("metaworld", metaworld))
    return demo_annotations(parse("demo", demo))


def summarize_dataset(dataset: LeRobotDatasetReader) -> tuple[dict, dict, Figure]:
    """Summary JSON, MLflow metrics and an overview figure of a dataset."""
    summary = dataset_summary(dataset)
    return summary, metrics_for_mlflow(summary), dataset_overview_figure(dataset)
