"""Kedro hooks: before a pipeline does any work (and before kedro-mlflow opens a run),
parse every parameters namespace (:mod:`adv_pipeline.pipelines.params`), check every
output path against every input, lock the outputs, sweep debris of killed runs, and run
the nodes' input checks (:mod:`adv_pipeline.pipelines.preflight`).

The rules themselves live in :mod:`adv_pipeline.outputs`; this module only finds the
paths of a pipeline's catalog entries and applies them.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from adv_pipeline.outputs import (
    DATASET,
    FILES,
    RUNS,
    OutputError,
    check_output,
    output_lock,
    path_fix,
    record_file,
    relation,
    remove_stale_locks,
    resolved,
    sweep_debris,
)
from adv_pipeline.pipelines.params import check_parameters
from adv_pipeline.pipelines.preflight import run_preflight

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A catalog entry with a local path: what it is, where, and its role in the run."""

    name: str
    path: Path
    kind: str


def catalog_target(name: str, dataset: Any) -> Target | None:
    """The local path and kind of a catalog dataset, or None (memory, MLflow metrics...)."""
    kind = getattr(dataset, "output_kind", None)
    if kind is not None and hasattr(dataset, "path"):
        return Target(name, Path(dataset.path), kind)
    filepath = getattr(dataset, "_filepath", None)
    if filepath is not None and getattr(dataset, "_protocol", "file") in ("file", None):
        return Target(name, Path(str(filepath)), FILES)
    return None


def _produced_upstream(pipeline: Pipeline, output: str, input_name: str) -> bool:
    """True if every node reading ``input_name`` runs after the node writing ``output``
    (the input is that output under another catalog name, as ``target_dataset`` and
    ``raw_dataset`` in the default run)."""
    producer = next(n for n in pipeline.nodes if output in n.outputs)
    consumers = {n.name for n in pipeline.nodes if input_name in n.inputs}
    downstream = {n.name for n in pipeline.from_nodes(producer.name).nodes} - {producer.name}
    return bool(consumers) and consumers <= downstream


def check_pipeline_outputs(pipeline: Pipeline, catalog, overwrite: bool) -> list[Target]:
    """Apply the output rules to every catalog output of ``pipeline`` (and to the run
    folders it trains into); returns the outputs. Raises :class:`OutputError`."""
    produced = set(pipeline.all_outputs())
    outputs, inputs = [], []
    for name in sorted(produced | set(pipeline.inputs())):
        if name.startswith("params:") or name == "parameters":
            continue
        target = catalog_target(name, catalog.get(name))
        if target is None:
            continue
        (
            outputs
            if name in produced or getattr(catalog.get(name), "workspace", False)
            else inputs
        ).append(target)
    for out in outputs:
        # the node output written at this path (a workspace's is the output sharing its path)
        written = next((o.name for o in outputs if o.name in produced and o.path == out.path), None)
        for inp in inputs:
            how = relation(resolved(out.path), resolved(inp.path))
            if how is None or (
                how == "equal to" and written and _produced_upstream(pipeline, written, inp.name)
            ):
                continue
            raise OutputError(
                f"{out.path}: the output {out.name} is {how} the input {inp.name} ({inp.path}); "
                f"writing it would "
                f"modify or delete that input. Fix: "
                f"{path_fix(_option_name(out, outputs), out.kind)}"
            )
    for i, a in enumerate(outputs):
        for b in outputs[i + 1 :]:
            how = relation(resolved(a.path), resolved(b.path))
            # a workspace (where a node writes) and the output it produces share a path
            pair = (
                how == "equal to"
                and a.kind == b.kind
                and (a.name in produced) != (b.name in produced)
            )
            if how and not pair:
                raise OutputError(
                    f"{a.path}: the outputs {a.name} and {b.name} ({b.path}) overlap ({how}); one "
                    f"would destroy the other. Fix: {path_fix(_option_name(a, outputs), a.kind)}"
                )
    for out in outputs:
        check_output(out.path, out.kind, overwrite=overwrite, name=_option_name(out, outputs))
    return outputs


def _option_name(target: Target, outputs: list[Target]) -> str | None:
    """The catalog name whose ``<name>_path`` runtime parameter sets this path: the
    folder of runs (``estimator_runs``), or the dataset (``raw_dataset``, not its target)."""
    if target.kind == FILES:
        return None
    names = [o.name for o in outputs if o.path == target.path]
    runs = [n for n in names if n.endswith("_runs")]
    datasets = [n for n in names if not n.endswith("_target")]
    return (runs or datasets or [target.name.removesuffix("_target")])[0]


def runtime_parameter_names(conf: Path) -> set[str]:
    """Names the configuration reads with ``${runtime_params:<name>, ...}``."""
    names: set[str] = set()
    for path in conf.rglob("*.yml"):
        names |= set(re.findall(r"runtime_params:\s*([\w.-]+)", path.read_text()))
    return names


def _param(catalog, name: str, default: Any) -> Any:
    key = f"params:{name}"
    return catalog.load(key) if key in catalog else default


class SafetyHooks:
    """Output rules, locks, debris sweeping and input checks around every run."""

    def __init__(self) -> None:
        self._locks: ExitStack | None = None
        self._catalog = None

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens its run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        if "parameters" in catalog:
            check_parameters(
                catalog.load("parameters"),
                runtime_parameter_names(Path(run_params["project_path"]) / "conf"),
            )
        outputs = check_pipeline_outputs(
            pipeline, catalog, bool(_param(catalog, "overwrite", False))
        )
        every = (catalog_target(n, catalog.get(n)) for n in catalog.keys())
        for lock in remove_stale_locks(t.path for t in every if t is not None):
            log.info("%s: removed the lock file of a run that ended without releasing it", lock)
        locks = ExitStack()
        try:
            # datasets and runs are locked: one writer each. Reports are not: two runs that
            # write different datasets both write the same report paths, and both finish
            # (the file holds the last run's; each run's copy is in its MLflow run)
            for out in sorted(outputs, key=lambda o: str(o.path)):
                path = resolved(out.path)
                if out.kind != FILES:
                    locks.enter_context(output_lock(path))
                sweep_debris(path.parent, path.name)
            run_preflight(pipeline, catalog)
        except BaseException:
            locks.close()
            raise
        self._locks, self._catalog = locks, catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if self._catalog is None:
            return
        target = catalog_target(dataset_name, self._catalog.get(dataset_name))
        if target is not None and target.kind == FILES and target.path.is_file():
            record_file(target.path)

    def _release(self) -> None:
        if self._locks is not None:
            self._locks.close()
        self._locks, self._catalog = None, None

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._release()


class TrackingHooks:
    """After kedro-mlflow opens its run: name it after what ran (``<pipelines> <given
    parameters> <time>``, e.g. ``gt_labeling raw_dataset_path=raw gt_labeling.threshold=30
    2026-11-26 17:50``), log each input dataset's path and fingerprint as parameters,
    and tag a run that writes no dataset (the seed's ``--dry-run``) as statistics only."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        # paths by their last part: the full paths are logged below as input.*.path
        given = " ".join(
            f"{k}={Path(str(v)).name if k.endswith('_path') else v}"
            for k, v in _flatten(run_params.get("runtime_params") or {}).items()
        )
        names = "+".join(run_params.get("pipeline_names") or ["__default__"])
        mlflow.set_tag(
            "mlflow.runName",
            " ".join(filter(None, [names, given[:200], time.strftime("%Y-%m-%d %H:%M")])),
        )
        # a dataset another node of this run writes (under another catalog name) is no input
        written = {
            resolved(path)
            for o in pipeline.all_outputs()
            if (path := getattr(catalog.get(o), "path", None)) is not None
        }
        inputs = {}
        for name in sorted(pipeline.inputs()):
            dataset = catalog.get(name)
            if (
                getattr(dataset, "output_kind", None) == DATASET
                and not getattr(dataset, "workspace", False)
                and resolved(dataset.path) not in written
            ):
                reader = catalog.load(name)
                inputs[f"input.{name}.path"] = str(resolved(reader.root))
                inputs[f"input.{name}.fingerprint"] = reader.fingerprint()
        if inputs:
            mlflow.log_params(inputs)
        writes = [
            o
            for o in pipeline.all_outputs()
            if getattr(catalog.get(o), "output_kind", None) in (DATASET, RUNS)
        ]
        mlflow.set_tag("statistics_only", str(not writes).lower())


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


__all__ = [
    "OutputError",
    "SafetyHooks",
    "Target",
    "TrackingHooks",
    "catalog_target",
    "check_pipeline_outputs",
]
