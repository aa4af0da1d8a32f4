"""Stage 2 labelling: frames/s and peak memory for a 1,000- and an 8,000-frame episode,
next to the raw decode rate of the same videos.

    python benchmarks/estimation_throughput.py [--dir /tmp/adv_bench_estimation]

Writes (once) two one-episode datasets, three 96x96 cameras, and a randomly initialised
estimator of the default configuration (parameters_estimator.yml; throughput and memory
do not depend on the weights). Each labelling runs in a fresh process that reports its
peak RSS. Target: peak RSS within 10% between the two episode lengths.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from raw_decode import raw_pyav

CAMERAS = ("top_head", "hand_left", "hand_right")
STATE_DIM = 12  # as the demo's observation.state


@dataclass(frozen=True)
class _Episode:
    length: int
    task: str = "benchmark"

    @property
    def columns(self):
        t = np.arange(self.length) / (self.length - 1)
        state = np.stack([np.sin(t * (k + 1)) for k in range(STATE_DIM)], axis=1).astype(np.float32)
        return {
            "observation.state": state,
            "stage_progress_gt": t.astype(np.float32),
            "progress": t.astype(np.float32),
        }

    def iter_frames(self):
        y, x = np.mgrid[0:96, 0:96]
        for t in range(self.length):
            img = np.empty((96, 96, 3), np.uint8)
            img[..., 0] = (x + t) % 256
            img[..., 1] = (y * 2 + t // 3) % 256
            img[..., 2] = 128
            p = t % 80
            img[p % 88 : p % 88 + 8, 40:48] = 255
            yield {c: img for c in CAMERAS}


def _make(length: int) -> _Episode:
    return _Episode(length)


def prepare(root: Path, lengths=(1000, 8000)) -> dict[int, Path]:
    import torch
    from project_params import project_params

    from adv_pipeline.checkpoints import list_steps, write_checkpoint
    from adv_pipeline.configs import from_params, to_params
    from adv_pipeline.estimator import EstimatorConfig
    from adv_pipeline.estimator.model import AdvantageEstimator
    from adv_pipeline.lerobot import NewDataset, VideoOptions, feature_spec, video_feature_spec

    out = {}
    for n in lengths:
        path = root / f"episode_{n}"
        if not (path / "meta/info.json").is_file():
            probe = _Episode(2)
            feats = {k: feature_spec(v) for k, v in probe.columns.items()}
            for c in CAMERAS:
                feats[f"observation.images.{c}"] = video_feature_spec(96, 96, 30, VideoOptions())
            NewDataset(30, feats, [partial(_make, n)]).write(path)
        out[n] = path
    ckpt_dir = root / "estimator"
    if not list_steps(ckpt_dir):
        params = project_params()["estimator"]
        params["model"]["variant"] = "KAI0"
        params["train"]["steps"] = 1
        params["data"]["state"] = "observation.state"
        params["model"]["state_dim"] = STATE_DIM
        config = from_params(EstimatorConfig, params, "estimator")
        torch.manual_seed(0)
        model = AdvantageEstimator(config.model, config.data)
        write_checkpoint(
            ckpt_dir,
            1,
            {k: v.numpy() for k, v in model.state_dict().items()},
            {"config": to_params(config), "variant": "KAI0"},
        )
    return out


def child(dataset: str, ckpt: str, out: str) -> None:
    import shutil

    from adv_pipeline.checkpoints import load_checkpoint
    from adv_pipeline.estimation import EstimationConfig, estimate
    from adv_pipeline.lerobot import LeRobotDatasetReader

    src = LeRobotDatasetReader(dataset)
    checkpoint = load_checkpoint(ckpt)
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    estimate(src, checkpoint, out, EstimationConfig(overwrite=True))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "frames": src.num_frames,
                "seconds": seconds,
                "rss_before_kb": before,
                "peak_rss_kb": peak,
            }
        )
    )


def raw_decode_rate(dataset: Path) -> float:
    files = sorted(dataset.glob("videos/*/*/*.mp4"))
    t0 = time.perf_counter()
    n = raw_pyav(files)
    return n / len(files) / (time.perf_counter() - t0)  # episode frames (all cameras) per second


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/adv_bench_estimation"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    datasets = prepare(args.dir)
    rows = {}
    for n, path in datasets.items():
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(path),
                str(args.dir / "estimator"),
                str(args.dir / f"out_{n}"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[n] = json.loads(proc.stdout.strip().splitlines()[-1])
        rows[n]["raw_decode_fps"] = raw_decode_rate(path)
    print(
        "episode frames | labelling frames/s | raw decode frames/s (3 cameras) | peak RSS MB "
        "(before labelling)"
    )
    for n, r in rows.items():
        print(
            f"{n:14d} | {r['frames'] / r['seconds']:18.1f} | {r['raw_decode_fps']:31.1f} | "
            f"{r['peak_rss_kb'] / 1024:8.1f} ({r['rss_before_kb'] / 1024:.1f})"
        )
    a, b = (rows[k]["peak_rss_kb"] for k in sorted(rows))
    print(f"peak RSS ratio 8000 / 1000 frames: {b / a:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
