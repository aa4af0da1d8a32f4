"""Stage 2 at a robot's resolution: labelling frames/s and peak memory on three 480x640
AV1 cameras, next to the raw decode rate of the same three streams.

    python benchmarks/estimation_robot.py [--dir /tmp/adv_bench_estimation_robot]
        [--episodes 8] [--length 60] [--decode-threads 1 0] [--format v2.1 v3.0]

Writes (once) a robot-shaped dataset (tests/robot_fixtures.py: 14-D state, three 480x640
AV1 cameras), in each LeRobot format asked (v3.0: each camera's episodes joined in one
file, decoded from the episode's offset), and a randomly initialised estimator of the
default configuration (parameters_estimator.yml: small_cnn, 64x64, three cameras +
state; throughput does not depend on the weights). Each labelling runs in a fresh
process that reports its peak RSS. "Raw decode" is the plain PyAV loop (open, decode
every frame, convert to a full-size RGB array), in episode frames per second (three
camera frames each). Target: labelling at >= 50% of raw decode.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from raw_decode import raw_pyav

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare(root: Path, episodes: int, length: int, fmt: str) -> tuple[Path, Path]:
    import torch
    from project_params import project_params

    from adv_pipeline.checkpoints import list_steps, write_checkpoint
    from adv_pipeline.configs import from_params, to_params
    from adv_pipeline.estimator import EstimatorConfig
    from adv_pipeline.estimator.model import AdvantageEstimator
    from tests.robot_fixtures import robot_plan

    data = root / f"robot_{episodes}x{length}_{fmt}"
    if not (data / "meta" / "info.json").is_file():
        t0 = time.perf_counter()
        robot_plan(n_episodes=episodes, lengths=(length,), size=(480, 640)).write(data, format=fmt)
        print(f"wrote {data} in {time.perf_counter() - t0:.0f} s")
    ckpt = root / "estimator"
    if not list_steps(ckpt):
        params = project_params()["estimator"]
        params["model"] |= {"variant": "KAI0", "state_dim": 14}
        config = from_params(EstimatorConfig, params, "estimator")
        torch.manual_seed(0)
        model = AdvantageEstimator(config.model, config.data)
        tensors = {k: v.numpy() for k, v in model.state_dict().items()}
        write_checkpoint(ckpt, 1, tensors, {"config": to_params(config), "variant": "KAI0"})
    return data, ckpt


def child(dataset: str, ckpt: str, out: str, threads: int) -> None:
    import shutil

    from adv_pipeline.checkpoints import load_checkpoint
    from adv_pipeline.estimation import EstimationConfig, estimate
    from adv_pipeline.lerobot import LeRobotDatasetReader

    src = LeRobotDatasetReader(dataset)
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    estimate(src, load_checkpoint(ckpt), out, EstimationConfig(decode_threads=threads))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"frames": src.num_frames, "seconds": seconds, "peak_rss_kb": peak,
                      "rss_before_kb": before}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/adv_bench_estimation_robot"))
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--length", type=int, default=60)
    parser.add_argument("--decode-threads", type=int, nargs="+", default=[1, 0])
    parser.add_argument("--format", nargs="+", default=["v2.1"], choices=["v2.1", "v3.0"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child[:3], int(args.child[3]))
        return
    for fmt in args.format:
        run_format(args, fmt)


def run_format(args: argparse.Namespace, fmt: str) -> None:
    data, ckpt = prepare(args.dir, args.episodes, args.length, fmt)
    files = sorted(data.glob("videos/**/*.mp4"))
    t0 = time.perf_counter()
    raw = raw_pyav(files) / 3 / (time.perf_counter() - t0)  # episode frames (3 cameras) / s
    print(f"LeRobot {fmt}, {len(files)} video files")
    print(f"raw PyAV decode of the same streams: {raw:.1f} frames/s (three 480x640 cameras)")
    print("decode threads | labelling frames/s | share of raw decode | peak RSS MB (before)")
    for threads in args.decode_threads:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(data), str(ckpt),
             str(args.dir / f"out_{fmt}_{threads}"), str(threads)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        fps = r["frames"] / r["seconds"]
        print(
            f"{threads:14d} | {fps:18.1f} | {fps / raw:19.0%} | "
            f"{r['peak_rss_kb'] / 1024:.0f} ({r['rss_before_kb'] / 1024:.0f})"
        )


if __name__ == "__main__":
    main()
