"""Parameter namespaces and the configs they build: every parameters file goes through
:func:`adv_pipeline.configs.from_params`, and the hook checks them all before a run, so a
typo in ``conf/`` or in ``--params`` is refused naming the closest key."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from adv_pipeline.annotation import AnnotationConfig
from adv_pipeline.configs import ConfigError, closest, from_params
from adv_pipeline.estimation.config import EstimationConfig
from adv_pipeline.estimator.config import EstimatorConfig
from adv_pipeline.labeling import LabelingConfig
from adv_pipeline.policy.config import AwbcParams
from adv_pipeline.sim.dataset import DemoDatasetConfig
from adv_pipeline.sweep import SweepConfig
from adv_pipeline.worlds.metaworld.config import MetaWorldConfig

NAMESPACES: dict[str, type] = {
    "demo": DemoDatasetConfig,
    "metaworld": MetaWorldConfig,
    "annotation": AnnotationConfig,
    "gt_labeling": LabelingConfig,
    "awbc_labeling": LabelingConfig,
    "estimator": EstimatorConfig,
    "estimation": EstimationConfig,
    "awbc": AwbcParams,
    "sweep": SweepConfig,
}
SHARED = ("overwrite", "world")  # parameters.yml: the hook and trainers; the recorded world


def parse(namespace: str, values: Mapping[str, Any] | None):
    """The config of a parameters namespace (``estimator`` -> :class:`EstimatorConfig`)."""
    return from_params(NAMESPACES[namespace], values, namespace)


def check_parameters(parameters: Mapping[str, Any], runtime_names: Collection[str]) -> None:
    """Parse every namespace, and refuse a top-level key that is neither a namespace, a
    shared parameter, nor a runtime parameter the configuration reads (``raw_dataset_path``,
    ``estimator_steps``...)."""
    known = [*NAMESPACES, *SHARED, *runtime_names]
    for key, values in parameters.items():
        if key in NAMESPACES:
            parse(key, values)
        elif key not in known:
            raise ConfigError(
                f"parameters: unknown key {key}{closest(key, known)} It is neither a parameters "
                f"namespace "
                f"({', '.join(NAMESPACES)}) nor a runtime parameter of conf/ "
                f"({', '.join(sorted(runtime_names))}). Fix: correct its spelling in "
                f"--params or conf/base/parameters*.yml"
            )
