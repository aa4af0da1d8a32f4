"""Nodes of the awbc pipeline (thin: unpack parameters, call adv_pipeline.policy). JAX
loads when a node runs, not when the pipelines are registered."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint, Runs
from adv_pipeline.distributed import check_jax_launch, init_jax_distributed
from adv_pipeline.figures import offline_figure, results_figure, skipped_figure
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.pipelines.params import parse
from adv_pipeline.pipelines.preflight import checked_by
from adv_pipeline.policy.config import configs_from_params
from adv_pipeline.policy.data import check_policy_inputs, closed_loop_enabled
from adv_pipeline.policy.evaluate import results_table

log = logging.getLogger(__name__)


def _check(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> None:
    awbc = parse("awbc", params)
    check_jax_launch(awbc.launch)
    check_policy_inputs(dataset, awbc.data)
    closed_loop_enabled(dataset, awbc.eval.closed_loop)


def _train(
    dataset: LeRobotDatasetReader,
    runs: Runs,
    params: dict[str, Any],
    overwrite: bool,
    prompt_from_task: bool,
) -> tuple[Checkpoint, dict]:
    init_jax_distributed(parse("awbc", params).launch)  # several hosts: join them first
    from adv_pipeline.policy.train import train_policy_run

    policy_config, train_config = configs_from_params(params, prompt_from_task=prompt_from_task)
    result = train_policy_run(dataset, policy_config, train_config, runs, overwrite)
    return result.checkpoint, result.metrics


@checked_by(_check)
def train_awbc_policy(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint, dict]:
    """AWBC: prompts ``tasks[task_index]``; returns the final checkpoint and metric history."""
    return _train(dataset, runs, params, overwrite, prompt_from_task=True)


@checked_by(_check)
def train_bc_policy(
    dataset: LeRobotDatasetReader, runs: Runs, params: dict[str, Any], overwrite: bool
) -> tuple[Checkpoint, dict]:
    """Plain BC baseline: same data, model and budget, every prompt the plain task text."""
    return _train(dataset, runs, params, overwrite, prompt_from_task=False)


def evaluate_awbc(
    awbc_policy: Checkpoint, bc_policy: Checkpoint, dataset: LeRobotDatasetReader, params: dict
) -> tuple[pd.DataFrame, dict, Figure]:
    """Closed-loop rollouts of AWBC (positive, negative, guided prompts) and BC in the demo
    simulator, when the dataset was recorded in it (``awbc.eval.closed_loop``); otherwise
    an empty table and a figure saying why."""
    config = parse("awbc", params).eval
    if not closed_loop_enabled(dataset, config.closed_loop):
        reason = (
            f"closed-loop evaluation skipped: {dataset.root.name} was not recorded in the demo "
            f"simulator (robot_type {dataset.info.get('robot_type')!r}); see the offline metrics"
        )
        log.info(reason)
        return results_table([]), {}, skipped_figure(reason)
    from adv_pipeline.policy.evaluate import awbc_conditions, evaluate_conditions, results_metrics
    from adv_pipeline.policy.inference import load_policy

    conditions = awbc_conditions(
        load_policy(awbc_policy),
        load_policy(bc_policy),
        config.guidance_scale,
        config.guidance_reference,
    )
    table = results_table(evaluate_conditions(conditions, config))
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
