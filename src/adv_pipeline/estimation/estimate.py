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
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.distributed as dist
from tqdm.auto import tqdm

from adv_pipeline.checkpoints import WEIGHTS_FILE, Checkpoint, load_checkpoint
from adv_pipeline.configs import from_params, to_params
from adv_pipeline.crash import failpoint
from adv_pipeline.distributed import init_distributed, torchrun
from adv_pipeline.estimator.evaluate import load_estimator
from adv_pipeline.lerobot import (
    DatasetWriter,
    LeRobotDatasetReader,
    derived_format,
    index_features_last,
    source_videos,
    with_columns,
    written_by,
)
from adv_pipeline.outputs import DATASET, check_output, shown_path, temporary_path
from adv_pipeline.schema import (
    ABSOLUTE_VALUE_SPREAD,
    ESTIMATED_COLUMNS,
    RELATIVE_ADVANTAGE,
    SUCCESS,
    base_task,
)
from adv_pipeline.torch_threads import use_torch_threads

from .checks import check_estimation_inputs
from .columns import EpisodeReturns
from .config import EstimationConfig
from .inference import advantage_columns, predict_episode

logger = logging.getLogger(__name__)

REPORT_PATH = "meta/estimation.json"  # our sidecar: what labelled this dataset
# and how fast: hidden, like every file that says when, where or how fast (not what), so
# that the same command writes the same visible bytes
TIMING_PATH = "meta/.estimation_timing.json"


def labels_identity(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    config: EstimationConfig,
    format: str | None = None,
) -> dict:
    """What decides an episode's labels: the source, the checkpoint's weights (path,
    size and modification time: a retrained checkpoint at the same step differs) and I."""
    weights = (checkpoint.path / WEIGHTS_FILE).stat()
    return {
        "source": source.fingerprint(),
        "checkpoint": str(checkpoint.path.resolve()),
        "weights_bytes": weights.st_size,
        "weights_mtime_ns": weights.st_mtime_ns,
        "interval": config.interval,
        "image_features": config.image_features,
        "format": format or source.version,
    }


def open_writer(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    out: str | Path,
    config: EstimationConfig,
    overwrite_output: bool = False,
    joined: bool = False,
    format: str | None = None,
) -> DatasetWriter:
    """The resumable writer of Stage 2's output: the source's features plus the
    estimated columns; episodes written before with the same checkpoint, source and
    interval are kept (unless ``config.overwrite``), others never mix in."""
    variant = checkpoint.metadata.get("variant", "KAI0")
    head = checkpoint.metadata.get("config", {}).get("model", {}).get("value_head", "tanh")
    features = dict(source.all_features)  # columns info.json forgot are kept, declared
    for c in (*ESTIMATED_COLUMNS, ABSOLUTE_VALUE_SPREAD):
        if c == RELATIVE_ADVANTAGE and variant != "KAI0":
            continue
        if c == ABSOLUTE_VALUE_SPREAD and head != "distributional":
            continue
        features[c] = {"dtype": "float32", "shape": [1], "names": None}
    encoders = {}
    if config.image_features is not None:
        est = checkpoint.metadata["config"]
        cameras = est["data"]["cameras"]
        features[config.image_features] = {
            "dtype": "float32",
            "shape": [len(cameras) * int(est["model"]["width"])],
            "names": None,
        }
        encoders[config.image_features] = checkpoint.path
    info = {
        **source.info,
        "features": index_features_last(features),
        "codebase_version": format or source.version,
    }
    inputs = {"target dataset": source.root, "estimator checkpoint": checkpoint.path}
    identity = labels_identity(source, checkpoint, config, format)
    return DatasetWriter(
        out,
        info,
        source.tasks,
        inputs=inputs,
        overwrite=overwrite_output,
        identity=identity,
        restart=config.overwrite,
        joined=joined,
        encoders=encoders,
    )


def episode_returns(
    source: LeRobotDatasetReader, checkpoint: Checkpoint
) -> dict[int, EpisodeReturns]:
    """Per episode of ``source``, what the n-step advantage on returns needs: its task's
    normaliser from the checkpoint's ``return_scales`` (a task the estimator never saw:
    the largest of them), whether it failed (``success`` = 0; unknown without the
    column: not failed) and C_fail."""
    scales: dict[str, float] = checkpoint.metadata["return_scales"]
    penalty = float(checkpoint.metadata["config"]["model"]["failure_penalty"])
    columns = ["task_index", *([SUCCESS] if SUCCESS in source.column_names() else [])]
    data = source.read_columns(columns)
    first = np.asarray(source.offsets[:-1], dtype=np.int64)
    tasks = [base_task(source.tasks[int(t)]) for t in np.asarray(data["task_index"])[first]]
    failed = (
        np.asarray(data[SUCCESS]).reshape(len(data[SUCCESS]), -1)[first, 0] == 0
        if SUCCESS in data
        else np.zeros(len(first), bool)
    )
    fallback = max(scales.values())
    return {
        ep.episode_index: EpisodeReturns(float(scales.get(t, fallback)), bool(f), penalty)
        for ep, t, f in zip(source.episodes, tasks, failed)
    }


def label_episodes(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    writer: DatasetWriter,
    config: EstimationConfig,
    rank: int = 0,
    world_size: int = 1,
    on_episode: Callable[[int], None] | None = None,
) -> dict:
    """Label this rank's episodes (``i % world_size == rank``) not yet in ``writer``;
    returns ``{"computed", "skipped", "frames", "seconds", "peak_window_frames"}``.
    ``on_episode(i)`` is called after each written episode (tests inject failures there)."""
    use_torch_threads(config.threads)
    check_estimation_inputs(source, checkpoint, config.image_features, config.target)
    model, est_config = load_estimator(checkpoint)
    returns = episode_returns(source, checkpoint) if est_config.model.target == "returns" else {}
    mine = [ep for ep in source.episodes if ep.episode_index % world_size == rank]
    todo = [ep for ep in mine if not writer.done(ep.episode_index)]
    carried = source.episodes_stats_json  # stats of the source's columns, as parsed
    stats = {
        "computed": 0,
        "skipped": len(mine) - len(todo),
        "frames": 0,
        "seconds": 0.0,
        "peak_window_frames": 0,
    }
    t0 = time.perf_counter()
    for ep in tqdm(
        todo,
        desc=f"estimation rank {rank}" if world_size > 1 else "estimation",
        unit="ep",
        disable=not todo,
    ):
        values = predict_episode(
            model,
            est_config,
            source,
            ep.episode_index,
            config.interval,
            config.batch_size,
            config.prefetch,
            decode_threads=config.decode_threads,
            features=config.image_features is not None,
        )
        columns = advantage_columns(values, config.interval, returns.get(ep.episode_index))
        if config.image_features is not None:
            columns[config.image_features] = values.features
        bad = [name for name, col in columns.items() if not np.isfinite(col).all()]
        if bad:
            raise FloatingPointError(
                f"{source.data_path(ep.episode_index)}: episode {ep.episode_index}: the estimator "
                f"{checkpoint.path} gave NaN/inf {bad}. Fix: check that checkpoint (its training "
                f"diverged?) and this episode's inputs"
            )
        table = with_columns(source.read_table(ep.episode_index), columns, writer.features)
        videos, placements = source_videos(source, ep.episode_index)
        writer.write_episode(
            ep.episode_index,
            table,
            stats=carried.get(ep.episode_index, {}),
            videos=videos,
            placements=placements,
        )
        stats["computed"] += 1
        stats["frames"] += ep.length
        stats["peak_window_frames"] = max(stats["peak_window_frames"], values.peak_window)
        failpoint("estimation.episode")
        if on_episode is not None:
            on_episode(ep.episode_index)
    stats["seconds"] = time.perf_counter() - t0
    return stats


def finalize(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    writer: DatasetWriter,
    config: EstimationConfig,
    runs: list[dict],
) -> LeRobotDatasetReader:
    """Publish the labelled dataset (after every rank finished), with its report
    ``meta/estimation.json`` (what labelled it) and its timing (how fast)."""
    frames = sum(r["frames"] for r in runs)
    seconds = max((r["seconds"] for r in runs), default=0.0)
    report = {
        "source": shown_path(source.root),
        "checkpoint": shown_path(checkpoint.path),
        "variant": checkpoint.metadata.get("variant", "KAI0"),
        "step": checkpoint.step,
        "config": {k: v for k, v in to_params(config).items() if k != "launch"},
        "world_size": len(runs),
        "episodes_computed": sum(r["computed"] for r in runs),
        "episodes_skipped": sum(r["skipped"] for r in runs),
        "frames_computed": frames,
        "peak_window_frames": max((r["peak_window_frames"] for r in runs), default=0),
    }
    timing = {"seconds": seconds, "frames_per_s": frames / seconds if seconds > 0 else None}

    def write_report(staging: Path) -> None:
        failpoint("estimation.finalize")
        (staging / REPORT_PATH).write_text(json.dumps(report, indent=2))
        (staging / TIMING_PATH).write_text(json.dumps(timing, indent=2))

    return writer.finalize([ep.episode_index for ep in source.episodes], extra=write_report)


def estimate(
    source: LeRobotDatasetReader,
    checkpoint: Checkpoint,
    out: str | Path,
    config: EstimationConfig = EstimationConfig(),
    overwrite_output: bool = False,
    format: str | None = None,
) -> LeRobotDatasetReader:
    """Label ``source`` with ``checkpoint`` into the dataset ``out`` (Stage 2).

    Checks the input and the output path first (:class:`DatasetWriter`: ``out`` may not
    be, hold or lie in the source or the checkpoint, and is replaced only if this project
    wrote it, or ``overwrite_output``). An output already labelled with the same
    checkpoint, source and interval is kept as it is (unless ``config.overwrite``);
    otherwise the episodes are labelled (resuming an interrupted run) and published.
    Under torchrun (``config.launch``) the ranks label in parallel.
    """
    out = Path(out)
    format = derived_format(source, format)
    check_estimation_inputs(source, checkpoint, config.image_features, config.target)
    check_output(
        out,
        DATASET,
        inputs={"target dataset": source.root, "estimator checkpoint": checkpoint.path},
        overwrite=overwrite_output,
    )
    if not config.overwrite and written_by(out) == labels_identity(
        source, checkpoint, config, format
    ):
        logger.info(
            "%s: already labelled by %s with the same source and interval; nothing to do",
            out,
            checkpoint.path,
        )
        return LeRobotDatasetReader(out, check_files=False)
    with open_writer(source, checkpoint, out, config, overwrite_output, format=format) as writer:
        if not config.launch.distributed:
            return finalize(
                source,
                checkpoint,
                writer,
                config,
                [label_episodes(source, checkpoint, writer, config)],
            )
        config_file = temporary_path(writer.staging / "estimation_config.json")
        config_file.write_text(
            json.dumps({k: v for k, v in to_params(config).items() if k != "launch"})
        )
        args = [
            "--source",
            source.root,
            "--checkpoint",
            checkpoint.run_dir,
            "--step",
            checkpoint.step,
            "--out",
            out,
            "--config",
            config_file,
            "--format",
            format or source.version,
        ]
        try:
            torchrun("adv_pipeline.estimation.estimate", args, config.launch)
        finally:
            config_file.unlink(missing_ok=True)
        return LeRobotDatasetReader(out, check_files=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Label a LeRobot dataset with a trained estimator (torchrun-compatible)."
    )
    parser.add_argument("--source", required=True)
    parser.add_argument("--checkpoint", required=True, help="the estimator's run directory")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="the output dataset (published when complete)")
    parser.add_argument("--config", default=None, help="JSON of EstimationConfig fields")
    parser.add_argument(
        "--format", default=None, help="LeRobot format written: v2.1 | v3.0 (default: --source's)"
    )
    parser.add_argument(
        "--overwrite-output",
        action="store_true",
        help="replace what sits at --out even if adv_pipeline did not write it",
    )
    args = parser.parse_args(argv)
    config = from_params(
        EstimationConfig,
        json.loads(Path(args.config).read_text()) if args.config else {},
        f"estimation ({args.config})",
    )
    env = init_distributed()
    source = LeRobotDatasetReader(args.source, check_files=env.is_main)
    checkpoint = load_checkpoint(args.checkpoint, args.step)
    if env.world_size == 1:
        estimate(source, checkpoint, args.out, config, args.overwrite_output, args.format)
        return
    # rank 0 opens the output (the parent that launched torchrun, if any, lends its lock);
    # the others join
    writer = (
        open_writer(source, checkpoint, args.out, config, args.overwrite_output, format=args.format)
        if env.is_main
        else None
    )
    dist.barrier()
    with writer or open_writer(
        source, checkpoint, args.out, config, joined=True, format=args.format
    ) as writer:
        run = label_episodes(source, checkpoint, writer, config, env.rank, env.world_size)
        runs = [None] * env.world_size
        dist.all_gather_object(runs, run)
        if env.is_main:
            finalize(source, checkpoint, writer, config, runs)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
