"""Stage 3 training data at a robot's resolution: training samples/s and peak memory for
N and 4N episodes, and the streaming loader next to a naive per-frame decoder.

    python benchmarks/awbc_loader.py [--episodes 8] [--length 60] [--steps 40] \
        [--dir /tmp/adv_awbc_bench]

Writes (once, reused afterwards) two robot-shaped datasets (tests/robot_fixtures.py: 14-D
state and action, three 480x640 AV1 cameras, two tasks) of N and 4N episodes. Then:
- trains the AWBC policy (all three cameras, 48 px, the shuffle buffer at 4 episodes x
  16 frames) for ``steps`` steps on each, each in a fresh process, and prints samples/s
  after compilation and the peak RSS of the trainer and of its loader worker. Target:
  4N's peak within 10% of N's (memory does not grow with the number of episodes);
- decodes one chunk's planned samples (every frame of each episode, then 16 per episode)
  with the project's decoder (one forward pass per episode) and with a naive loader that,
  as the seed's does, opens each video and seeks to each sample's frame; checks the
  images are equal and prints both rates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fixture generator lives with the tests

from adv_pipeline.lerobot import LeRobotDatasetReader  # noqa: E402
from adv_pipeline.policy import (  # noqa: E402
    DataConfig,
    HashTokenizer,
    ModelConfig,
    PolicyConfig,
    TokenizerConfig,
    TrainConfig,
)
from adv_pipeline.policy.data import (  # noqa: E402
    decode_samples,
    plan_stream,
    prepare_policy_data,
)
from adv_pipeline.policy.images import downsample  # noqa: E402

CAMERAS = ("top_head", "hand_left", "hand_right")
POLICY = PolicyConfig(
    model=ModelConfig(conv_channels=(16, 32, 32), image_features=64, width=256, depth=3),
    data=DataConfig(
        cameras=CAMERAS, state_key="observation.state", image_size=48, episodes_per_chunk=4,
        frames_per_episode=16,
        val_fraction=0.0,
    ),
    tokenizer=TokenizerConfig(),
)  # fmt: skip


def dataset(root: Path, episodes: int, length: int) -> Path:
    from tests.robot_fixtures import robot_dataset

    if not (root / "meta" / "info.json").is_file():
        t0 = time.perf_counter()
        robot_dataset(root, n_episodes=episodes, lengths=(length,), size=(480, 640))
        print(f"wrote {root} ({episodes} episodes) in {time.perf_counter() - t0:.0f} s")
    return root


def train_child(root: str, steps: int, out: str) -> None:
    """In a fresh process: train, then print samples/s and peak RSS as JSON."""
    from adv_pipeline.policy import train_policy

    config = TrainConfig(
        steps=steps, batch_size=32, save_interval=steps, log_interval=10, progress_bar=False,
        num_workers=1, warmup_steps=5,
    )  # fmt: skip
    result = train_policy(LeRobotDatasetReader(root), POLICY, config, out)
    for worker in multiprocessing.active_children():  # reaped, so RUSAGE_CHILDREN counts it
        worker.join(timeout=30)
    print(
        json.dumps(
            {
                "samples_per_s": result.steps_per_second * config.batch_size,
                "trainer_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def loader_vs_naive(root: Path, frames_per_episode: int | None) -> tuple[int, float, float]:
    """(samples, ours/s, naive/s) over one chunk of every episode's planned frames."""
    ds = LeRobotDatasetReader(root)
    data = prepare_policy_data(ds, POLICY.data, HashTokenizer(POLICY.tokenizer))
    config = dataclasses.replace(
        POLICY.data,
        episodes_per_chunk=len(data.train_episodes),
        frames_per_episode=frames_per_episode,
    )
    plan = next(plan_stream(data.lengths, data.train_episodes, config, seed=0, batch_size=32))
    n = len(plan)
    keys = data.spec.camera_keys
    t0 = time.perf_counter()
    ours = decode_samples(ds, plan, config, keys, data.task_prompt)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i, (ep, t) in enumerate(zip(plan.episode, plan.frame)):
        frames = [ds.get_frames(int(ep), [int(t)], [k])[k][0] for k in keys]
        img = downsample(np.stack(frames), config.image_size)
        assert np.array_equal(img, ours.images[i])
    t_naive = time.perf_counter() - t0
    return n, n / t_ours, n / t_naive


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--length", type=int, default=60)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/adv_awbc_bench"))
    ap.add_argument("--train-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train_child:
        root, steps, out = args.train_child
        return train_child(root, int(steps), out)
    sizes = (args.episodes, 4 * args.episodes)
    roots = [dataset(args.dir / f"robot_{n}", n, args.length) for n in sizes]
    print(f"\ntraining, {args.steps} steps of 32, 3 cameras at 480x640 -> 48 px, 1 worker:")
    peaks = []
    for n, root in zip(sizes, roots):
        out = args.dir / f"runs_{n}_{time.time_ns()}"
        proc = subprocess.run(
            [sys.executable, __file__, "--train-child", str(root), str(args.steps), str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        peaks.append(r["trainer_rss_mb"] + r["worker_rss_mb"])
        print(
            f"  {n:4d}-episode dataset: {r['samples_per_s']:7.1f} samples/s, peak RSS trainer "
            f"{r['trainer_rss_mb']:.0f} MB + worker {r['worker_rss_mb']:.0f} MB"
        )
    print(f"  peak RSS 4N / N: {peaks[1] / peaks[0]:.3f} (target <= 1.10)")
    print("\ndecoding one chunk's samples (3 cameras, one process, same images):")
    for k in (None, 16):
        n, ours, naive = loader_vs_naive(roots[0], k)
        print(
            f"  {'all' if k is None else k} frames per episode ({n} samples): ours {ours:.1f} "
            f"samples/s, naive per-frame seek {naive:.1f} samples/s ({ours / naive:.1f}x)"
        )


if __name__ == "__main__":
    main()
