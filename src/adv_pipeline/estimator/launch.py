"""Run estimator training in this process or under torchrun (many processes/nodes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from adv_pipeline.checkpoints import Checkpoint, Runs, list_steps, load_checkpoint, open_run
from adv_pipeline.configs import to_params
from adv_pipeline.distributed import torchrun
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import temporary_path

from .config import EstimatorConfig
from .data import check_training_inputs
from .train import run_identity, train


def run_training(
    dataset: LeRobotDatasetReader,
    runs: Runs | str | Path,
    config: EstimatorConfig,
    overwrite: bool = False,
) -> Checkpoint:
    """Train in a run folder of ``runs`` (a new run, or the one ``train.resume`` continues,
    see :func:`adv_pipeline.checkpoints.open_run`) in this process for one process, else
    under torchrun (``config.launch``); returns the run's latest checkpoint. The input is
    checked before any folder is created."""
    runs = runs if isinstance(runs, Runs) else Runs(Path(runs))
    launch = config.launch
    check_training_inputs(dataset, config)
    if launch.nnodes > 1 and not runs.run:
        raise ValueError(
            f"{runs.root}: a training over {launch.nnodes} nodes needs a run name that every node "
            f"agrees on. "
            'Fix: --params "estimator_run=<name>" on every node'
        )
    identity = run_identity(dataset, config)
    if launch.node_rank > 0:  # node 0 creates the run; the others only join it
        run_dir = runs.root / str(runs.run)
    else:
        run_dir = open_run(runs, identity, config.train.resume, overwrite, config.train.seed)
    if config.train.resume == "auto":  # open_run chose: continue that run if it has checkpoints
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, resume=bool(list_steps(run_dir)))
        )
    if not launch.distributed:
        return train(dataset.root, run_dir, config, dataset=dataset)
    config_file = temporary_path(run_dir / "launch_config.json")
    config_file.write_text(json.dumps(to_params(config), indent=2))
    try:
        torchrun(
            "adv_pipeline.estimator.train",
            ["--dataset", dataset.root, "--run-dir", run_dir, "--config", config_file],
            launch,
        )
    finally:
        config_file.unlink(missing_ok=True)
    return load_checkpoint(run_dir)
