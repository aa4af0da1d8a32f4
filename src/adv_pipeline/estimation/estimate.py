"""Stage 2: label a dataset with a trained estimator, episode by episode, resumably.

Finished episodes collect in a work folder beside the output, ``.<output>.work/``: each
episode's parquet (the source's columns + ``relative_advantage`` (KAI0),
``absolute_value``, ``absolute_advantage``) is written atomically with its videos
hard-linked, so a crash loses nothing finished and a rerun skips it (``overwrite`` redoes
them). Once every episode is done, the metadata is written and the work folder is renamed
to the output: a half dataset is never visible at the output path. Under torchrun,
episode i goes to rank ``i % world_size``; rank 0 writes the metadata and publishes::

    torchrun --nproc_per_node 8 -m adv_pipeline.estimation.estimate \\
        --source DATA --checkpoint RUN_DIR [--step 1200] --out OUT --config estimation.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from adv_pipeline.checkpoints import WEIGHTS_FILE, Checkpoint, load_checkpoint
from adv_pipeline.configs import from_params, to_params
from adv_pipeline.crash import failpoint
from adv_pipeline.schema import ESTIMATED_COLUMNS, RELATIVE_ADVANTAGE, STAGE_PROGRESS
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.lerobot.format import INFO_PATH, data_relpath, video_relpath
from adv_pipeline.lerobot.reader import column_to_numpy, read_parquet
from adv_pipeline.lerobot.writer import feature_spec, index_features_last, link_or_copy, numeric_stats, with_columns, write_meta, write_parquet
from adv_pipeline.outputs import DATASET, check_output, output_lock, replace_path, sweep_debris, temporary_path, write_marker

from adv_pipeline.distributed import LaunchConfig, init_distributed, torchrun
from adv_pipeline.estimator.config import EstimatorConfig
from adv_pipeline.estimator.evaluate import load_estimator

from .inference import advantage_columns, predict_episode

logger = logging.getLogger(__name__)

REPORT_PATH = "meta/estimation.json"  # our sidecar: what labelled this dataset, and how fast


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


def work_dir(out: str | Path) -> Path:
    """Where the episodes of output ``out`` collect until it is published."""
    out = Path(out)
    return out.parent / f".{out.name}.work"


def check_estimation_inputs(source: LeRobotDatasetReader, checkpoint: Checkpoint) -> EstimatorConfig:
    """Every check of Stage 2's input, before anything is written: the estimator's cameras
    and state column exist in ``source``, and every float column (copied into the
    output) is finite. Returns the estimator's config."""
    est_config = from_params(EstimatorConfig, checkpoint.metadata["config"], f"estimator config of {checkpoint.path}")
    state = est_config.data.state
    if state is not None:
        source.require_column(
            state,
            f", needed because the estimator {checkpoint.path} takes the state ({state}) as input",
            "label a dataset with that column, or train an estimator with estimator.data.state: null",
        )
    source.resolve_cameras(est_config.data.cameras)
    why = {c: ", copied into the estimated dataset" for c in source.float_columns()}
    if state is not None:
        why[state] = ", read by the estimator and copied into the estimated dataset"
    ranges = {}
    if STAGE_PROGRESS in source.features:  # the AWBC labels split stages by it
        why[STAGE_PROGRESS] = ", copied into the estimated dataset, whose AWBC labels split stages by it"
        ranges[STAGE_PROGRESS] = (0.0, 1.0)
    source.check_values(list(why), why, ranges)
    return est_config


def label_episodes(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    work: str | Path,
    config: EstimationConfig,
    rank: int = 0,
    world_size: int = 1,
    on_episode: Callable[[int], None] | None = None,
) -> dict:
    """Label this rank's episodes (``i % world_size == rank``) into the work folder
    ``work`` (see :func:`start_work`); returns ``{"computed", "skipped", "frames",
    "seconds"}``. ``on_episode(i)`` is called after each written episode (progress
    reporting; tests inject failures there)."""
    work = Path(work)
    if config.threads:
        torch.set_num_threads(config.threads)
    check_estimation_inputs(source, checkpoint)
    model, est_config = load_estimator(checkpoint)
    mine = [ep for ep in source.episodes if ep.episode_index % world_size == rank]
    todo = [ep for ep in mine if config.overwrite or not _episode_done(work, source.info, ep.episode_index, ep.length)]
    stats = {"computed": 0, "skipped": len(mine) - len(todo), "frames": 0, "seconds": 0.0, "peak_window_frames": 0}
    t0 = time.perf_counter()
    for ep in tqdm(todo, desc=f"estimation rank {rank}" if world_size > 1 else "estimation", unit="ep", disable=not todo):
        values = predict_episode(model, est_config, source, ep.episode_index, config.interval, config.batch_size, config.prefetch)
        columns = advantage_columns(values, config.interval)
        bad = [name for name, col in columns.items() if not np.isfinite(col).all()]
        if bad:
            raise FloatingPointError(f"{source.data_path(ep.episode_index)}: episode {ep.episode_index}: the estimator {checkpoint.path} gave NaN/inf {bad}. Fix: check that checkpoint (its training diverged?) and this episode's inputs")
        table = source.read_table(ep.episode_index)
        table = with_columns(table, columns, {name: feature_spec(col) for name, col in columns.items()})
        for key in source.video_keys:
            dst = work / video_relpath(source.info, ep.episode_index, key)
            if not dst.exists():
                link_or_copy(source.video_path(ep.episode_index, key), dst)
        write_parquet(work / data_relpath(source.info, ep.episode_index), table, atomic=True)
        stats["computed"] += 1
        stats["frames"] += ep.length
        stats["peak_window_frames"] = max(stats["peak_window_frames"], values.peak_window)
        failpoint("estimation.episode")
        if on_episode is not None:
            on_episode(ep.episode_index)
    stats["seconds"] = time.perf_counter() - t0
    return stats


def finalize(source: LeRobotDatasetReader, checkpoint: Checkpoint, work: str | Path, config: EstimationConfig, runs: list[dict]) -> None:
    """Write the metadata of a fully labelled work folder (after every rank finished)."""
    work = Path(work)
    missing = [ep.episode_index for ep in source.episodes if not _episode_done(work, source.info, ep.episode_index, ep.length)]
    if missing:
        raise RuntimeError(f"{work}: episodes {missing[:10]} are not labelled yet; rerun the estimation to finish them")
    variant = checkpoint.metadata.get("variant", "KAI0")
    names = [c for c in ESTIMATED_COLUMNS if variant == "KAI0" or c != RELATIVE_ADVANTAGE]
    features = dict(source.features)
    for c in names:
        features[c] = {"dtype": "float32", "shape": [1], "names": None}
    features = index_features_last(features)
    src_stats = source.episodes_stats_json  # carried over as parsed
    episodes, all_stats = [], []
    for ep in source.episodes:
        table = read_parquet(work / data_relpath(source.info, ep.episode_index), names)
        cols = {c: column_to_numpy(table[c]) for c in names}
        all_stats.append({**src_stats.get(ep.episode_index, {}), **numeric_stats(cols, features)})
        episodes.append({"episode_index": ep.episode_index, "tasks": list(ep.tasks), "length": ep.length})
    info = {**source.info, "features": features}
    write_meta(work, info, source.tasks, episodes, all_stats)
    failpoint("estimation.finalize")
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
    (work / REPORT_PATH).write_text(json.dumps(report, indent=2))


IDENTITY_FILE = ".estimation_identity.json"  # what the finished episodes were labelled with


def labels_identity(source: LeRobotDatasetReader, checkpoint: Checkpoint, config: EstimationConfig) -> dict:
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


def _stamp(folder: Path) -> dict | None:
    path = folder / IDENTITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def start_work(out: Path, identity: dict, overwrite: bool) -> Path:
    """The work folder of ``out``, keeping its finished episodes only if they were labelled
    with ``identity`` (and not ``overwrite``); otherwise emptied, so an output never
    mixes labels of two estimators. Temporary files of dead writers inside are swept."""
    work = work_dir(out)
    if work.exists() and (overwrite or _stamp(work) != identity):
        if _stamp(work) not in (None, identity):
            logger.warning("%s: earlier episodes came from another checkpoint, source or interval (%s); relabelling every episode", work, _stamp(work))
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    sweep_debris(work, recursive=True)
    (work / INFO_PATH).unlink(missing_ok=True)  # metadata of an interrupted finalize
    (work / IDENTITY_FILE).write_text(json.dumps(identity, indent=2))
    return work


def publish(work: Path, out: Path) -> LeRobotDatasetReader:
    """Mark the finished work folder as a dataset and rename it to ``out`` (replacing
    the previous output, which this project wrote: see :func:`estimate`)."""
    write_marker(work, DATASET)
    replace_path(work, out)
    return LeRobotDatasetReader(out, check_files=False)


def estimate(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    out: str | Path,
    config: EstimationConfig = EstimationConfig(),
    overwrite_output: bool = False,
) -> LeRobotDatasetReader:
    """Label ``source`` with ``checkpoint`` into the dataset ``out`` (Stage 2).

    Checks the input and the output path first: ``out`` may not be, hold or lie in the
    source or the checkpoint, and is replaced only if this project wrote it (or
    ``overwrite_output``). An output already labelled with the same checkpoint, source
    and interval is kept as it is (unless ``config.overwrite``); otherwise the episodes
    are labelled in the work folder (resuming an interrupted run) and published. Under
    torchrun (``config.launch``) the ranks label in parallel.
    """
    out = Path(out)
    inputs = {"target dataset": source.root, "estimator checkpoint": checkpoint.path}
    check_output(out, DATASET, inputs=inputs, overwrite=overwrite_output)
    check_estimation_inputs(source, checkpoint)
    identity = labels_identity(source, checkpoint, config)
    with output_lock(out):
        sweep_debris(out.parent, out.name)
        if not config.overwrite and (out / INFO_PATH).is_file() and _stamp(out) == identity and not work_dir(out).exists():
            logger.info("%s: already labelled by %s with the same source and interval; nothing to do", out, checkpoint.path)
            return LeRobotDatasetReader(out, check_files=False)
        work = start_work(out, identity, config.overwrite)
        if not config.launch.distributed:
            run = label_episodes(source, checkpoint, work, config)
            finalize(source, checkpoint, work, config, [run])
            return publish(work, out)
        config_file = temporary_path(work / "estimation_config.json")
        config_file.write_text(json.dumps({k: v for k, v in to_params(config).items() if k != "launch"}))
        args = ["--source", source.root, "--checkpoint", checkpoint.run_dir, "--step", checkpoint.step, "--out", out, "--config", config_file]
        try:
            torchrun("adv_pipeline.estimation.estimate", args, config.launch)
        finally:
            config_file.unlink(missing_ok=True)
        return LeRobotDatasetReader(out, check_files=False)


@dataclass(frozen=True)
class EstimatedDataset:
    """Write plan of Stage 2's output (what the estimation node returns): labelling
    happens when the catalog saves it to its path, so that path lives in catalog.yml."""

    source: LeRobotDatasetReader
    checkpoint: Checkpoint
    config: EstimationConfig = field(default_factory=EstimationConfig)

    def write(self, root: str | Path, overwrite: bool = False) -> LeRobotDatasetReader:
        return estimate(self.source, self.checkpoint, root, self.config, overwrite)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Label a LeRobot dataset with a trained estimator (torchrun-compatible).")
    parser.add_argument("--source", required=True)
    parser.add_argument("--checkpoint", required=True, help="the estimator's run directory")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="the output dataset (published when complete)")
    parser.add_argument("--config", default=None, help="JSON of EstimationConfig fields")
    parser.add_argument("--overwrite-output", action="store_true", help="replace what sits at --out even if adv_pipeline did not write it")
    args = parser.parse_args(argv)
    config = from_params(EstimationConfig, json.loads(Path(args.config).read_text()) if args.config else {}, f"estimation ({args.config})")
    env = init_distributed()
    source = LeRobotDatasetReader(args.source, check_files=env.is_main)
    checkpoint = load_checkpoint(args.checkpoint, args.step)
    out = Path(args.out)
    if env.world_size == 1:
        estimate(source, checkpoint, out, config, args.overwrite_output)
        return
    with output_lock(out) if env.is_main else nullcontext():
        if env.is_main:
            check_output(out, DATASET, inputs={"target dataset": source.root, "estimator checkpoint": checkpoint.path}, overwrite=args.overwrite_output)
            start_work(out, labels_identity(source, checkpoint, config), False)  # keeps finished episodes of the same identity
        dist.barrier()
        run = label_episodes(source, checkpoint, work_dir(out), config, env.rank, env.world_size)
        runs = [None] * env.world_size
        dist.all_gather_object(runs, run)
        if env.is_main:
            finalize(source, checkpoint, work_dir(out), config, runs)
            publish(work_dir(out), out)
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
