"""Run estimator training in this process or under torchrun (many processes/nodes)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from adv_pipeline.checkpoints import Checkpoint, load_checkpoint
from adv_pipeline.lerobot import LeRobotDatasetReader

from .config import EstimatorConfig
from .train import train


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


def run_training(dataset: LeRobotDatasetReader, run_dir: str | Path, config: EstimatorConfig, launch: LaunchConfig = LaunchConfig()) -> Checkpoint:
    """Train in-process for one process, else launch torchrun and wait; returns the
    latest checkpoint of ``run_dir``."""
    run_dir = Path(run_dir)
    if not launch.distributed:
        return train(dataset.root, run_dir, config, dataset=dataset)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "launch_config.json"
    config_file.write_text(json.dumps(config.to_dict(), indent=2))
    cmd = torchrun_command(dataset.root, run_dir, config_file, launch)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed with exit code {proc.returncode}: {' '.join(cmd)}")
    return load_checkpoint(run_dir)
