"""Nodes of the seeds pipeline (thin)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from adv_pipeline.errors import InputError
from adv_pipeline.figures import seed_sweep_figure
from adv_pipeline.pipelines.params import parse
from adv_pipeline.sweep import stack_tables, summarize, sweep_metrics


def summarize_seed_sweep(
    tables: Mapping[str, Callable[[], pd.DataFrame]], params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict, Figure]:
    """The seeds' closed-loop tables (partition id = seed) -> summary, paired
    differences, MLflow metrics and the plot, over ``sweep.seeds``."""
    config = parse("sweep", params)
    seeds = config.seed_list()
    missing = [s for s in seeds if str(s) not in tables]
    if missing:
        have = sorted(int(k) for k in tables if k.isdigit())
        raise InputError(
            f"sweep: no closed-loop table for training seed(s) {missing} under the seeds "
            f"folder (seed_eval_tables; seeds with one: {have or 'none'}). Fix: run them "
            f"(kedro sweep --seeds {','.join(map(str, seeds))}), or summarise the seeds "
            f"there are (--params sweep.seeds=...)"
        )
    per_seed = stack_tables({s: tables[str(s)]() for s in seeds})
    summary, differences = summarize(per_seed, config)
    figure = seed_sweep_figure(per_seed, summary, differences, config.metric)
    return summary, differences, sweep_metrics(summary, differences), figure
