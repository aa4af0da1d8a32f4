"""gt_labeling on a large video-less dataset, next to its I/O floor.

    python benchmarks/gt_labeling_throughput.py [--episodes 2000] [--frames 1500] \
        [--dir /tmp/adv_bench]

Generates (once, reused afterwards) a LeRobot v2.1 dataset of ``episodes`` x ``frames``
frames with 14-D state/action, progress, stage_progress_gt and intervention, no videos.
Then prints:
- the I/O floor: reading and rewriting the same parquet files with pyarrow, nothing else
  (pq.read_table + pq.write_table, best of 2 or 4 threads), and the same floor with the
  project's own read and write calls (what the labelling's I/O costs by itself);
- gt_labeling's whole process: open + validate the dataset, read the columns, advantage,
  per-stage thresholds, labels, statistics, and the derived dataset written atomically
  with its metadata and stats (the same functions the Kedro nodes call);
- optionally (``--kedro``) the wall time of ``kedro run --pipelines gt_labeling`` on it,
  in each interleaved round, and that of the same run on a 20-episode dataset (the
  fixed cost: Kedro, kedro-mlflow and MLflow starting, the plot, the logging);
- optionally (``--reference gt_label.py``) the wall time of the reference script (kai0's
  ``stage_advantage/annotation/gt_label.py``, which you fetch yourself; it labels a copy
  in place) on the same data with the same options, interleaved with our runs.
Targets: whole process within 1.3x of the floor, >= 4x faster than the reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from adv_pipeline import labeling as lab
from adv_pipeline.lerobot import LeRobotDatasetReader, NewDataset, feature_spec
from adv_pipeline.lerobot.writer import write_parquet


@dataclass(frozen=True)
class _Episode:
    columns: dict
    task: str = "fold the cloth"

    @property
    def length(self) -> int:
        return len(self.columns["progress"])

    def iter_frames(self):
        return iter([{}] * self.length)


def _make_episode(seed: int, frames: int) -> _Episode:
    rng = np.random.default_rng(seed)
    n = int(frames * rng.uniform(0.8, 1.2))
    t = np.arange(n) / (n - 1)
    progress = np.clip(np.cumsum(rng.normal(1.0 / n, 2.0 / n, n)), 0, 1)
    return _Episode(
        {
            "observation.state": rng.normal(size=(n, 14)).astype(np.float32),
            "action": rng.normal(size=(n, 14)).astype(np.float32),
            "progress": progress.astype(np.float32),
            "progress_gt": t.astype(np.float32),
            "stage_progress_gt": t.astype(np.float32),
            "intervention": (rng.random(n) < 0.05).astype(np.int64),
        }
    )


def generate(root: Path, episodes: int, frames: int) -> LeRobotDatasetReader:
    if (root / "meta/info.json").is_file():
        return LeRobotDatasetReader(root)
    probe = _make_episode(0, 10)
    features = {k: feature_spec(v) for k, v in probe.columns.items()}
    plan = NewDataset(
        fps=30,
        features=features,
        episodes=[partial(_make_episode, i, frames) for i in range(episodes)],
        workers=2,
    )
    return plan.write(root)


def io_floor(src: LeRobotDatasetReader, out: Path, workers: int, same_calls: bool = False) -> float:
    """Read and rewrite every parquet file, ``workers`` files at a time.

    Default: the issue's floor, ``pq.read_table`` + ``pq.write_table`` (snappy, pyarrow's
    other defaults). ``same_calls``: the reader's and writer's own calls (ParquetFile.read,
    dictionaries only on integer columns), i.e. gt_labeling's pure I/O.
    """
    _settle(out)
    t0 = time.perf_counter()

    def copy(ep):
        dst = out / src.data_relpath(ep.episode_index)
        if same_calls:
            write_parquet(dst, src.read_table(ep.episode_index))
            return
        table = pq.read_table(src.data_path(ep.episode_index))
        dst.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, dst, compression="snappy")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(copy, src.episodes))
    return time.perf_counter() - t0


def _settle(out: Path) -> None:
    """Remove ``out`` and flush dirty pages, so that one measurement's writes are not
    paid for by the next (this machine's disk is slow to write back)."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()


def whole_process(root: Path, out: Path, config: lab.LabelingConfig) -> tuple[float, dict]:
    _settle(out)
    t0 = time.perf_counter()
    ds = LeRobotDatasetReader(root)
    inputs = lab.read_label_inputs(ds, config)
    adv = lab.frame_advantage(inputs, config)
    stage = lab.stage_index(inputs.stage_progress, config.stage_nums, len(adv))
    groups = lab.label_groups(inputs, stage, config)
    cuts = lab.group_cuts(adv, groups, config)
    labels = lab.assign_labels(adv, groups, cuts, config, inputs.intervention)
    stats = lab.label_statistics(adv, groups, cuts, labels, config, inputs)
    lab.labeled_dataset(ds, inputs, labels, config).write(out)
    return time.perf_counter() - t0, stats


def reference(script: Path, root: Path, copy: Path, config: lab.LabelingConfig) -> float:
    """Wall time of the reference script labelling a fresh copy of ``root`` in place
    (``config``'s threshold and stage_nums, as ours); the copy is not timed."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    _settle(copy / "nothing")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(copy),
            "--threshold",
            str(config.threshold),
            "--stage-nums",
            str(config.stage_nums),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def kedro_run(root: Path, out: Path, config: lab.LabelingConfig) -> float:
    """Wall time of ``kedro run --pipelines gt_labeling`` labelling ``root`` into ``out``
    (``config``'s threshold and stage_nums, as ours), MLflow logging included."""
    _settle(out)
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "kedro"),
            "run",
            "--pipelines",
            "gt_labeling",
            "--params",
            f"raw_dataset_path={root},gt_labeled_dataset_path={out},"
            f"gt_labeling.threshold={config.threshold},gt_labeling.stage_nums={config.stage_nums}",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=1500, help="mean frames per episode")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/adv_bench"))
    parser.add_argument("--workers", type=int, default=2, help="threads rewriting episode files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--kedro", action="store_true", help="also time `kedro run --pipelines gt_labeling`"
    )
    parser.add_argument(
        "--reference", type=Path, help="the reference gt_label.py, to time it side by side"
    )
    args = parser.parse_args()
    root = args.dir / f"large_{args.episodes}x{args.frames}"
    t0 = time.perf_counter()
    src = generate(root, args.episodes, args.frames)
    print(
        f"dataset: {root}: {src.num_episodes} episodes, {src.num_frames:,} frames, 14-D "
        f"state/action, no videos (ready in {time.perf_counter() - t0:.1f} s)"
    )
    config = lab.LabelingConfig(threshold=30, stage_nums=2, workers=args.workers)
    # interleaved repeats, best of each: this machine's timings vary by +-30% run to run
    small = generate(args.dir / "small_20x100", 20, 100) if args.kedro else None
    floors, own_floors, totals, references, kedros, fixed = [], [], [], [], [], []
    for _ in range(args.repeats):
        if args.reference:
            references.append(reference(args.reference, root, args.dir / "reference", config))
        floors.append(
            min(io_floor(src, args.dir / "floor", w) for w in (2, 4))
        )  # best thread count
        own_floors.append(
            min(io_floor(src, args.dir / "floor", w, same_calls=True) for w in (2, 4))
        )
        total, stats = whole_process(root, args.dir / "labeled", config)
        totals.append(total)
        if small is not None:
            kedros.append(kedro_run(root, args.dir / "labeled_kedro", config))
            fixed.append(kedro_run(small.root, args.dir / "labeled_small", config))
    floor, own_floor, total = min(floors), min(own_floors), min(totals)
    n = src.num_frames
    print(
        f"I/O floor, pq.read_table + pq.write_table (2 or 4 threads): {floor:6.2f} s  "
        f"({n / floor:,.0f} frames/s)"
    )
    print(
        f"I/O floor with the project's own read/write calls:          {own_floor:6.2f} s  "
        f"({n / own_floor:,.0f} frames/s)"
    )
    print(
        f"gt_labeling whole process ({args.workers} threads):                   {total:6.2f} s  "
        f"({n / total:,.0f} frames/s)"
    )
    print(
        f"ratio whole / floor:                                          {total / floor:6.2f}  "
        f"(target <= 1.30)"
    )
    print(
        f"ratio whole / own-calls floor (labelling overhead over pure I/O): "
        f"{total / own_floor:6.2f}"
    )
    print(
        f"positive fraction per stage (before forcing): "
        f"{[round(s['unforced_positive_fraction'], 4) for s in stats['stages']]}"
    )
    if references:
        ref = min(references)
        print(
            f"reference gt_label.py (in place on a copy, copy not timed):  {ref:6.2f} s  "
            f"({n / ref:,.0f} frames/s); ours is {ref / total:.1f}x faster (target >= 4)"
        )
    if kedros:
        run, start = min(kedros), min(fixed)
        print(
            f"kedro run --pipelines gt_labeling (start-up, checks, MLflow, plot): "
            f"{run:6.2f} s; on 20 episodes (the fixed cost): {start:5.2f} s"
        )
        if references:
            print(
                f"reference / kedro run: {min(references) / run:.2f}x (target >= 4); a run "
                f"of {min(references) / 4:.2f} s would meet it"
            )


if __name__ == "__main__":
    main()
