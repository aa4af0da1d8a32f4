"""Process layouts: one ``launch:`` shape for every multi-process stage, and the one way
to start (torchrun) and join (``torch.distributed``) them.

Stage 1 (training) and Stage 2 (labelling) run under torchrun with the seed's layout:
``nproc_per_node`` processes on each of ``nnodes`` nodes, this node being ``node_rank``,
rendezvous at ``master_addr:master_port``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .crash import child_dies_with_parent
from .outputs import delegate_locks


@dataclass(frozen=True)
class LaunchConfig:
    """A process layout, as the seed's train_estimator.sh (NPROC_PER_NODE, WORLD_SIZE =
    nnodes, RANK = node_rank, MASTER_ADDR, MASTER_PORT)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise ValueError(
                f"launch: need nproc_per_node >= 1, nnodes >= 1 and 0 <= node_rank < nnodes, got "
                f"{self}"
            )

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node * self.nnodes > 1


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun layout (rank 0 alone when not launched so)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Distributed:
    """Join the torchrun process group if launched by torchrun (env RANK/WORLD_SIZE):
    NCCL on GPUs (one per local rank), gloo on CPUs."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    info = Distributed(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    )
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def check_jax_launch(launch: LaunchConfig) -> None:
    """A JAX layout has one process per node (it drives all of the node's devices)."""
    if launch.nproc_per_node != 1:
        raise ValueError(
            f"launch.nproc_per_node={launch.nproc_per_node}: JAX runs one process per node, "
            "which uses all of the node's devices. Fix: set nproc_per_node to 1 (and nnodes "
            "to the number of hosts)"
        )


def init_jax_distributed(launch: LaunchConfig) -> None:
    """Join a multi-host JAX run (Stage 3) laid out as ``launch``: one process per node,
    ``node_rank`` its process id, the coordinator at ``master_addr:master_port``. A no-op
    on one node; call it before any other JAX computation of the process."""
    check_jax_launch(launch)
    if launch.nnodes == 1:
        return
    import jax

    # CPU processes all-reduce through gloo (GPU and TPU backends bring their own)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"{launch.master_addr}:{launch.master_port}",
        num_processes=launch.nnodes,
        process_id=launch.node_rank,
    )


def torchrun_command(module: str, args: Sequence[str], launch: LaunchConfig) -> list[str]:
    """``python -m torch.distributed.run <layout> -m <module> <args>``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={launch.nproc_per_node}",
        f"--nnodes={launch.nnodes}",
        f"--node_rank={launch.node_rank}",
        f"--master_addr={launch.master_addr}",
        f"--master_port={launch.master_port}",
        "-m",
        module,
        *map(str, args),
    ]


def torchrun(module: str, args: Sequence[str], launch: LaunchConfig) -> None:
    """Run ``module`` under torchrun with ``launch``'s layout and wait. Its processes die
    with this one and may write the outputs whose locks this process holds."""
    cmd = torchrun_command(module, args, launch)
    proc = subprocess.run(cmd, env=delegate_locks(), preexec_fn=child_dies_with_parent)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed with exit code {proc.returncode}: {' '.join(cmd)}")
