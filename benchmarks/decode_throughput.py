"""Decoding throughput of the LeRobot reader on the demo videos, next to raw PyAV.

    python benchmarks/decode_throughput.py [DATASET_DIR] [--repeats 3]

DATASET_DIR defaults to data/01_raw/demo (run `kedro run --pipelines demo` first).
Raw PyAV = open each MP4, decode every frame, convert to an RGB ndarray, nothing else.
Reader = ``LeRobotDatasetReader.iter_frames`` (all cameras in lockstep, per episode).
Prints frames/s (one frame = one camera image) and the reader/raw ratio (target >= 0.8).
"""

from __future__ import annotations

import argparse
import time

from raw_decode import raw_pyav

from adv_pipeline.lerobot import LeRobotDatasetReader


def reader_stream(ds: LeRobotDatasetReader) -> int:
    n = 0
    for ep in ds.episodes:
        for frames in ds.iter_frames(ep.episode_index):
            n += len(frames)
    return n


def best_rate(fn, repeats: int) -> tuple[float, int]:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best, n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", nargs="?", default="data/01_raw/demo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ds = LeRobotDatasetReader(args.dataset)
    paths = [ds.video_path(ep.episode_index, k) for ep in ds.episodes for k in ds.video_keys]
    raw, n_raw = best_rate(lambda: raw_pyav(paths), args.repeats)
    ours, n_ours = best_rate(lambda: reader_stream(ds), args.repeats)
    h, w = ds.features[ds.video_keys[0]]["shape"][:2]
    print(
        f"dataset: {ds.root} ({ds.num_episodes} episodes, {len(ds.video_keys)} cameras, {h}x{w}, "
        f"{len(paths)} files)"
    )
    print(f"raw PyAV decode      : {raw:10.0f} frames/s  ({n_raw} frames)")
    print(f"reader iter_frames   : {ours:10.0f} frames/s  ({n_ours} frames)")
    print(f"reader / raw         : {ours / raw:10.2f}  (target >= 0.80)")


if __name__ == "__main__":
    main()
