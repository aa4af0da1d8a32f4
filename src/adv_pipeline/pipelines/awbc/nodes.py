"""Nodes of the awbc pipeline (thin: unpack parameters, call adv_pipeline.policy). JAX
loads when a node runs, not when the pipelines are registered."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

import pandas as pd
from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint, Runs
from adv_pipeline.distributed import check_jax_launch, init_jax_distributed
from adv_pipeline.figures import offline_figure, results_figure, skipped_figure
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.policy.data import check_policy_inputs, eval_world
from adv_pipeline.policy.evaluate import results_table

log = logging.getLogger(__name__)


def _check(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> None:
    awbc = parse("awbc", params)
    check_jax_launch(awbc.launch)
    spec = check_policy_inputs(dataset, awbc.method_policy().data)  # the strictest run's
    world_name = eval_world(dataset, awbc.eval)
    if world_name is not None:  # the closed loop's adapter gives what the policy will read
        from adv_pipeline.worlds import check_world_columns, make_world

        world = make_world(world_name, {"eval": awbc.eval, "metaworld": None})
        dims = dict(zip(awbc.data.state_key, spec.state_dims))
        check_world_columns(world, "", dims, list(dataset.encoders()))


def _train(
    dataset: LeRobotDatasetReader,
    runs: Runs,
    params: dict[str, Any],
    overwrite: bool,
    run: Literal["main", "bc", "curated"],
) -> tuple[Checkpoint, dict]:
    """Train one run: ``main`` (``awbc.method``), ``bc`` (plain prompts) or ``curated``
    (plain BC on the episodes ``awbc.curated`` keeps)."""
    awbc = parse("awbc", params)
    init_jax_distributed(awbc.launch)  # several hosts: join them first
    from adv_pipeline.policy.train import train_policy_run

    policy_config = awbc.method_policy() if run == "main" else awbc.policy(prompt_from_task=False)
    if run == "curated":
        data = dataclasses.replace(
            policy_config.data, keep_column=awbc.curated.column, keep_values=awbc.curated.keep
        )
        policy_config = dataclasses.replace(policy_config, data=data)
    result = train_policy_run(dataset, policy_config, awbc.train, runs, overwrite)
    return result.checkpoint, result.metrics


@checked_by(_check)
def train_awbc_policy(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint, dict]:
    """The advantage-using run, by ``awbc.method``: ``prompt`` (AWBC: prompts
    ``tasks[task_index]``), ``weighted`` or ``filtered``; returns the final checkpoint and
    metric history."""
    return _train(dataset, runs, params, overwrite, "main")


@checked_by(_check)
def train_bc_policy(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint, dict]:
    """Plain BC baseline: same data, model and budget, every prompt the plain task text."""
    return _train(dataset, runs, params, overwrite, "bc")


@checked_by(_check)
def train_curated_bc_policy(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint | bool, dict]:
    """Curated BC: plain BC on the episodes ``awbc.curated`` keeps (what a perfect curator
    of the data would train on); no checkpoint (False: Kedro saves no None) when
    ``awbc.curated.column`` is null."""
    if parse("awbc", params).curated.column is None:
        return False, {}
    return _train(dataset, runs, params, overwrite, "curated")


def evaluate_awbc(
    awbc_policy: Checkpoint,
    bc_policy: Checkpoint,
    curated_bc_policy: Checkpoint | bool | None,
    dataset: LeRobotDatasetReader,
    params: dict,
    metaworld: dict,
) -> tuple[pd.DataFrame, dict, Figure]:
    """Closed-loop rollouts of AWBC (positive, negative, guided prompts), BC and curated
    BC in the world of ``awbc.eval.env`` (``auto``: the one that recorded the dataset),
    every training task on the same seeds; when there is none (``awbc.eval.closed_loop``),
    an empty table and a figure saying why. ``metaworld``: Meta-World's parameters (its
    tasks' texts and time limit)."""
    awbc = parse("awbc", params)
    config = awbc.eval
    world_name = eval_world(dataset, config)
    if world_name is None:
        reason = (
            f"closed-loop evaluation skipped: no world recorded {dataset.root.name} "
            f"(robot_type {dataset.info.get('robot_type')!r}) and awbc.eval.env is auto; "
            f"see the offline metrics"
        )
        log.info(reason)
        return results_table([]), {}, skipped_figure(reason)
    from adv_pipeline.policy.evaluate import awbc_conditions, evaluate_conditions, results_metrics
    from adv_pipeline.policy.inference import load_policy
    from adv_pipeline.worlds import make_world

    world = make_world(world_name, {"eval": config, "metaworld": metaworld})
    # False (the node trained nothing) or None (no checkpoint): no curated run
    curated = (curated_bc_policy or None) if awbc.curated.column is not None else None
    conditions = awbc_conditions(
        load_policy(awbc_policy),
        load_policy(bc_policy),
        config.guidance,
        load_policy(curated) if curated is not None else None,
    )
    try:
        table = results_table(evaluate_conditions(conditions, config, world))
    finally:
        getattr(world, "close", lambda: None)()  # e.g. the cameras' GL contexts
    return table, results_metrics(table), results_figure(table)


def evaluate_awbc_offline(
    awbc_policy: Checkpoint, bc_policy: Checkpoint, dataset: LeRobotDatasetReader, params: dict
) -> tuple[pd.DataFrame, dict, Figure]:
    """Held-out episodes' action error per dimension and prompt, and how far the positive
    and negative prompts move the chunk (:mod:`adv_pipeline.policy.offline`)."""
    from adv_pipeline.policy.inference import load_policy
    from adv_pipeline.policy.offline import load_held_out, offline_metrics, offline_table

    config = parse("awbc", params).eval
    awbc, bc = load_policy(awbc_policy), load_policy(bc_policy)
    held = load_held_out(dataset, awbc, config.val_episodes_max, config.val_frame_stride)
    table = offline_table(awbc, bc, held, config.sample_seed)
    frames, episodes = len(held.samples), len(held.episodes)
    return (
        table,
        offline_metrics(table, frames, episodes),
        offline_figure(table, f"{episodes} held-out episodes, {frames} frames"),
    )
