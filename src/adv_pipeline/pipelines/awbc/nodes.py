"""Nodes of the awbc pipeline (thin: unpack parameters, call adv_pipeline.policy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Checkpoint
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.policy import (
    EvalConfig,
    awbc_conditions,
    configs_from_params,
    evaluate_conditions,
    load_policy,
    results_figure,
    results_metrics,
    results_table,
    train_policy,
)
from adv_pipeline.policy.config import config_from_dict


def _train(dataset: LeRobotDatasetReader, run_dir: Path, params: dict[str, Any], prompt_from_task: bool) -> tuple[Checkpoint, dict]:
    policy_config, train_config = configs_from_params(params, prompt_from_task=prompt_from_task)
    result = train_policy(dataset, policy_config, train_config, run_dir)
    return result.checkpoint, result.metrics


def train_awbc_policy(dataset: LeRobotDatasetReader, run_dir: Path, params: dict[str, Any]) -> tuple[Checkpoint, dict]:
    """AWBC: prompts ``tasks[task_index]``; returns the final checkpoint and metric history."""
    return _train(dataset, run_dir, params, prompt_from_task=True)


def train_bc_policy(dataset: LeRobotDatasetReader, run_dir: Path, params: dict[str, Any]) -> tuple[Checkpoint, dict]:
    """Plain BC baseline: same data, model and budget, every prompt the plain task text."""
    return _train(dataset, run_dir, params, prompt_from_task=False)


def evaluate_awbc(awbc_policy: Checkpoint, bc_policy: Checkpoint, params: dict[str, Any]) -> tuple[pd.DataFrame, dict, Figure]:
    """Closed-loop rollouts of AWBC (positive, negative, guided prompts) and BC."""
    config = config_from_dict(EvalConfig, params["eval"])
    conditions = awbc_conditions(load_policy(awbc_policy), load_policy(bc_policy), config.guidance_scale)
    table = results_table(evaluate_conditions(conditions, config))
    return table, results_metrics(table), results_figure(table)
