"""Stage 2: label a dataset with a trained estimator, episode by episode, resumably.

Each episode's parquet (the source's columns + ``relative_advantage`` (KAI0),
``absolute_value``, ``absolute_advantage``) is written atomically (temporary file, then
rename) with its videos hard-linked; a rerun skips episodes whose output exists, so a
crash loses nothing and recomputes nothing finished (``overwrite`` redoes them). The
metadata (info.json, episodes, stats) is written once all episodes are done. Under
torchrun, episode i goes to rank ``i % world_size`` and rank 0 writes the metadata::

    torchrun --nproc_per_node 8 -m adv_pipeline.estimator.estimation \\
        --source DATA --checkpoint RUN_DIR [--step 1200] --out OUT --config estimation.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from adv_pipeline.checkpoints import WEIGHTS_FILE, Checkpoint, load_checkpoint
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.lerobot.format import INFO_PATH, data_relpath, video_relpath
from adv_pipeline.lerobot.reader import column_to_numpy, read_parquet
from adv_pipeline.lerobot.writer import feature_spec, index_features_last, link_or_copy, numeric_stats, with_columns, write_meta, write_parquet

from .evaluate import load_estimator
from .inference import advantage_columns, predict_episode
from .launch import LaunchConfig
from .train import init_distributed

logger = logging.getLogger(__name__)

REPORT_PATH = "meta/estimation.json"  # our sidecar: what labelled this dataset, and how fast
NEW_COLUMNS = ("relative_advantage", "absolute_value", "absolute_advantage")


@dataclass(frozen=True)
class EstimationConfig:
    """Options of Stage 2.

    Attributes:
        interval: look-ahead I in frames (the seed's 50).
        batch_size: frames per model call.
        prefetch: batches prepared ahead by the decoding thread.
        overwrite: recompute episodes whose output already exists.
        threads: torch threads (0: torch's default).
        launch: torchrun layout; more than one process labels episodes in parallel.
    """

    interval: int = 50
    batch_size: int = 64
    prefetch: int = 2
    overwrite: bool = False
    threads: int = 0
    launch: LaunchConfig = field(default_factory=LaunchConfig)

    def __post_init__(self) -> None:
        if self.interval < 1 or self.batch_size < 1:
            raise ValueError("estimation interval and batch_size must be >= 1")


def _episode_done(out: Path, info: dict, episode: int, length: int) -> bool:
    path = out / data_relpath(info, episode)
    if not path.is_file():
        return False
    md = pq.read_metadata(path)
    return md.num_rows == length and "absolute_advantage" in md.schema.names


def label_episodes(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    out: str | Path,
    config: EstimationConfig,
    rank: int = 0,
    world_size: int = 1,
    on_episode: Callable[[int], None] | None = None,
) -> dict:
    """Label this rank's episodes (``i % world_size == rank``) into ``out``; returns
    ``{"computed", "skipped", "frames", "seconds"}``. ``on_episode(i)`` is called after
    each written episode (progress reporting; tests inject failures there)."""
    out = Path(out)
    if out.resolve() == source.root.resolve():
        raise ValueError(f"{out}: the estimation output cannot be its source dataset. Fix: choose another output path")
    if config.threads:
        torch.set_num_threads(config.threads)
    model, est_config = load_estimator(checkpoint)
    state = est_config.data.state
    if state is not None:
        source.require_column(
            state,
            f", needed because the estimator {checkpoint.path} takes the state ({state}) as input",
            "label a dataset with that column, or train an estimator with estimator.data.state: null",
        )
    source.resolve_cameras(est_config.data.cameras)
    if world_size == 1:  # under torchrun, EstimatedDataset.write did this before the ranks started
        _start_or_resume(out, _identity(source, checkpoint, config))
    mine = [ep for ep in source.episodes if ep.episode_index % world_size == rank]
    todo = [ep for ep in mine if config.overwrite or not _episode_done(out, source.info, ep.episode_index, ep.length)]
    stats = {"computed": 0, "skipped": len(mine) - len(todo), "frames": 0, "seconds": 0.0, "peak_window_frames": 0}
    t0 = time.perf_counter()
    for ep in tqdm(todo, desc=f"estimation rank {rank}" if world_size > 1 else "estimation", unit="ep", disable=not todo):
        values = predict_episode(model, est_config, source, ep.episode_index, config.interval, config.batch_size, config.prefetch)
        columns = advantage_columns(values, config.interval)
        table = source.read_table(ep.episode_index)
        table = with_columns(table, columns, {name: feature_spec(col) for name, col in columns.items()})
        for key in source.video_keys:
            dst = out / video_relpath(source.info, ep.episode_index, key)
            if not dst.exists():
                link_or_copy(source.video_path(ep.episode_index, key), dst)
        write_parquet(out / data_relpath(source.info, ep.episode_index), table, atomic=True)
        stats["computed"] += 1
        stats["frames"] += ep.length
        stats["peak_window_frames"] = max(stats["peak_window_frames"], values.peak_window)
        if on_episode is not None:
            on_episode(ep.episode_index)
    stats["seconds"] = time.perf_counter() - t0
    return stats


def finalize(source: LeRobotDatasetReader, checkpoint: Checkpoint, out: str | Path, config: EstimationConfig, runs: list[dict]) -> LeRobotDatasetReader:
    """Write the metadata of a fully labelled output (after every rank finished)."""
    out = Path(out)
    missing = [ep.episode_index for ep in source.episodes if not _episode_done(out, source.info, ep.episode_index, ep.length)]
    if missing:
        raise RuntimeError(f"{out}: episodes {missing[:10]} are not labelled yet; rerun the estimation to finish them")
    variant = checkpoint.metadata.get("variant", "KAI0")
    names = [c for c in NEW_COLUMNS if variant == "KAI0" or c != "relative_advantage"]
    features = dict(source.features)
    for c in names:
        features[c] = {"dtype": "float32", "shape": [1], "names": None}
    features = index_features_last(features)
    src_stats = source.episodes_stats_json  # carried over as parsed
    episodes, all_stats = [], []
    for ep in source.episodes:
        table = read_parquet(out / data_relpath(source.info, ep.episode_index), names)
        cols = {c: column_to_numpy(table[c]) for c in names}
        all_stats.append({**src_stats.get(ep.episode_index, {}), **numeric_stats(cols, features)})
        episodes.append({"episode_index": ep.episode_index, "tasks": list(ep.tasks), "length": ep.length})
    info = {**source.info, "features": features}
    write_meta(out, info, source.tasks, episodes, all_stats)
    computed = sum(r["computed"] for r in runs)
    frames = sum(r["frames"] for r in runs)
    seconds = max((r["seconds"] for r in runs), default=0.0)
    report = {
        "source": str(source.root),
        "checkpoint": str(checkpoint.path),
        "variant": variant,
        "step": checkpoint.step,
        "config": {k: v for k, v in asdict(config).items() if k != "launch"},
        "world_size": len(runs),
        "episodes_computed": computed,
        "episodes_skipped": sum(r["skipped"] for r in runs),
        "frames_computed": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds if seconds > 0 else None,
        "peak_window_frames": max((r["peak_window_frames"] for r in runs), default=0),
    }
    (out / REPORT_PATH).write_text(json.dumps(report, indent=2))
    return LeRobotDatasetReader(out, check_files=False)


IDENTITY_FILE = ".estimation_identity.json"  # what the finished episodes were labelled with


def _identity(source: LeRobotDatasetReader, checkpoint: Checkpoint, config: EstimationConfig) -> dict:
    """What decides an episode's labels: the source, the checkpoint's weights (path,
    size and modification time: a retrained checkpoint at the same step differs) and I."""
    weights = (checkpoint.path / WEIGHTS_FILE).stat()
    return {
        "source": source.fingerprint(),
        "checkpoint": str(checkpoint.path.resolve()),
        "weights_bytes": weights.st_size,
        "weights_mtime_ns": weights.st_mtime_ns,
        "interval": config.interval,
    }


def _start_or_resume(out: Path, identity: dict) -> None:
    """Keep finished episodes only if they were labelled with ``identity``; otherwise
    (another checkpoint, source or interval) clear the output and start afresh, so a
    resumed output never mixes labels of two estimators."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / IDENTITY_FILE
    previous = json.loads(stamp.read_text()) if stamp.is_file() else None
    if previous != identity and any(out.iterdir()):
        logger.warning("%s: earlier output came from another checkpoint, source or interval (%s); relabelling every episode", out, previous)
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    stamp.write_text(json.dumps(identity, indent=2))


def _invalidate(out: Path) -> None:
    """Mark an output as in progress: without info.json no reader accepts it."""
    (out / INFO_PATH).unlink(missing_ok=True)


@dataclass(frozen=True)
class EstimatedDataset:
    """Write plan of Stage 2's output (what the estimation node returns): labelling
    happens when the catalog saves it to its path, so that path lives in catalog.yml."""

    source: LeRobotDatasetReader
    checkpoint: Checkpoint
    config: EstimationConfig = field(default_factory=EstimationConfig)

    def write(self, root: str | Path, overwrite: bool = True) -> LeRobotDatasetReader:
        # ``overwrite`` (the catalog's) is ignored: outputs are resumed, and
        # ``config.overwrite`` decides whether finished episodes are recomputed.
        out = Path(root)
        out.mkdir(parents=True, exist_ok=True)
        _invalidate(out)
        if not self.config.launch.distributed:
            run = label_episodes(self.source, self.checkpoint, out, self.config)
            return finalize(self.source, self.checkpoint, out, self.config, [run])
        _start_or_resume(out, _identity(self.source, self.checkpoint, self.config))  # once, before the ranks start
        config_file = out / ".estimation_config.json"
        config_file.write_text(json.dumps({k: v for k, v in asdict(self.config).items() if k != "launch"}))
        launch = self.config.launch
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc_per_node={launch.nproc_per_node}", f"--nnodes={launch.nnodes}", f"--node_rank={launch.node_rank}",
            f"--master_addr={launch.master_addr}", f"--master_port={launch.master_port}",
            "-m", "adv_pipeline.estimator.estimation",
            "--source", str(self.source.root), "--checkpoint", str(self.checkpoint.run_dir), "--step", str(self.checkpoint.step),
            "--out", str(out), "--config", str(config_file),
        ]
        proc = subprocess.run(cmd)
        config_file.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun estimation failed with exit code {proc.returncode}: {' '.join(cmd)}")
        return LeRobotDatasetReader(out, check_files=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Label a LeRobot dataset with a trained estimator (torchrun-compatible).")
    parser.add_argument("--source", required=True)
    parser.add_argument("--checkpoint", required=True, help="the estimator's run directory")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default=None, help="JSON of EstimationConfig fields")
    args = parser.parse_args(argv)
    config = EstimationConfig(**json.loads(Path(args.config).read_text())) if args.config else EstimationConfig()
    env = init_distributed()
    source = LeRobotDatasetReader(args.source, check_files=env.is_main)
    checkpoint = load_checkpoint(args.checkpoint, args.step)
    run = label_episodes(source, checkpoint, args.out, config, env.rank, env.world_size)
    runs = [run]
    if env.world_size > 1:
        runs = [None] * env.world_size
        dist.all_gather_object(runs, run)
    if env.is_main:
        finalize(source, checkpoint, args.out, config, runs)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
