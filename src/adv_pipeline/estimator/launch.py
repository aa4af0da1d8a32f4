"""Run estimator training in this process or under torchrun (many processes/nodes)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from adv_pipeline.checkpoints import Checkpoint, Runs, list_steps, load_checkpoint, open_run
from adv_pipeline.crash import child_dies_with_parent
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import temporary_path

from .config import EstimatorConfig
from .data import check_training_inputs
from .train import run_identity, train


@dataclass(frozen=True)
class LaunchConfig:
    """torchrun settings, as the seed's train_estimator.sh (NPROC_PER_NODE, WORLD_SIZE
    = nnodes, RANK = node_rank, MASTER_ADDR, MASTER_PORT)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node * self.nnodes > 1


def torchrun_command(dataset_root: Path, run_dir: Path, config_file: Path, launch: LaunchConfig) -> list[str]:
    """The torchrun command line that trains with ``launch``'s process layout."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nproc_per_node={launch.nproc_per_node}",
        f"--nnodes={launch.nnodes}",
        f"--node_rank={launch.node_rank}",
        f"--master_addr={launch.master_addr}",
        f"--master_port={launch.master_port}",
        "-m", "adv_pipeline.estimator.train",
        "--dataset", str(dataset_root),
        "--run-dir", str(run_dir),
        "--config", str(config_file),
    ]


def run_training(
    dataset: LeRobotDatasetReader,
    runs: Runs | str | Path,
    config: EstimatorConfig,
    launch: LaunchConfig = LaunchConfig(),
    overwrite: bool = False,
) -> Checkpoint:
    """Train in a run folder of ``runs`` (a new run, or the one ``train.resume`` continues,
    see :func:`adv_pipeline.checkpoints.open_run`) in this process for one process, else
    under torchrun; returns the run's latest checkpoint. The input is checked before any
    folder is created."""
    runs = runs if isinstance(runs, Runs) else Runs(Path(runs))
    check_training_inputs(dataset, config)
    if launch.nnodes > 1 and not runs.run:
        raise ValueError(
            f"{runs.root}: a training over {launch.nnodes} nodes needs a run name that every node agrees on. "
            'Fix: --params "estimator_run=<name>" on every node'
        )
    identity = run_identity(dataset, config)
    if launch.node_rank > 0:  # node 0 creates the run; the others only join it
        run_dir = runs.root / str(runs.run)
    else:
        run_dir = open_run(runs, identity, config.train.resume, overwrite)
    if config.train.resume == "auto":  # open_run chose: continue that run if it has checkpoints
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, resume=bool(list_steps(run_dir))))
    if not launch.distributed:
        return train(dataset.root, run_dir, config, dataset=dataset)
    config_file = temporary_path(run_dir / "launch_config.json")
    config_file.write_text(json.dumps(config.to_dict(), indent=2))
    cmd = torchrun_command(dataset.root, run_dir, config_file, launch)
    try:
        proc = subprocess.run(cmd, preexec_fn=child_dies_with_parent)
    finally:
        config_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed with exit code {proc.returncode}: {' '.join(cmd)}")
    return load_checkpoint(run_dir)
