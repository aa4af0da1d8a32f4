"""Estimator training data: our loader's samples/s next to a naive seek-per-frame loader,
and the training step rate.

    python benchmarks/estimator_loader.py [DATASET_DIR] [--samples 2000]

DATASET_DIR defaults to data/01_raw/demo. Both loaders produce the same KAI0 samples
(comparison + current frame, all cameras, resized as in parameters_estimator.yml).
The naive loader does what the seed's loader does: for every sample and camera, open the
video, seek to the frame and decode it, twice per pair. Target: ours >= 10x naive.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from project_params import project_params

from adv_pipeline.configs import from_params
from adv_pipeline.estimator import EstimatorConfig
from adv_pipeline.estimator.data import TrainLoader, episode_progress, plan_stream
from adv_pipeline.estimator.model import AdvantageEstimator, to_model_input, value_loss
from adv_pipeline.lerobot import LeRobotDatasetReader, VideoReader


def ours(ds, progress, config, n_samples: int, workers: int) -> float:
    data = type(config.data)(**{**config.data.__dict__, "num_workers": workers})
    loader = TrainLoader(ds, progress, list(progress), data, True, config.train.batch_size, seed=0)
    t0 = time.perf_counter()
    seen = 0
    for batch in loader:
        seen += len(batch.target)
        if seen >= n_samples:
            break
    rate = seen / (time.perf_counter() - t0)
    loader.close()
    return rate


def naive(ds, progress, config, n_samples: int) -> float:
    plan = next(plan_stream(progress, list(progress), config.data, True, seed=0))
    keys = ds.resolve_cameras(config.data.cameras)
    size = tuple(config.data.image_size)
    t0 = time.perf_counter()
    for i in range(min(n_samples, len(plan))):
        for t in (plan.compare[i], plan.current[i]):
            for key in keys:
                VideoReader(ds.video_path(int(plan.episode[i]), key), size=size).get([int(t)])
    return min(n_samples, len(plan)) / (time.perf_counter() - t0)


def step_rate(config, steps: int = 20) -> float:
    torch.manual_seed(0)
    model = AdvantageEstimator(config.model, config.data)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    h, w = config.data.image_size
    x = torch.randint(
        0, 255, (config.train.batch_size, 2, len(config.data.cameras), h, w, 3), dtype=torch.uint8
    )
    state = (
        torch.randn(config.train.batch_size, 2, config.model.state_dim)
        if config.model.state_dim
        else None
    )
    y = torch.rand(config.train.batch_size)
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        loss = value_loss(model(to_model_input(x), state), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", nargs="?", default="data/01_raw/demo")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--naive-samples", type=int, default=100)
    args = parser.parse_args()
    params = project_params()["estimator"]
    config = from_params(EstimatorConfig, params, "estimator")
    ds = LeRobotDatasetReader(args.dataset)
    if config.data.state:  # as the trainer does: the state's width comes from the dataset
        config = dataclasses.replace(
            config,
            model=dataclasses.replace(
                config.model, state_dim=int(np.prod(ds.features[config.data.state]["shape"]))
            ),
        )
    progress = episode_progress(ds)
    print(
        f"dataset: {ds.root} ({ds.num_episodes} episodes, {ds.num_frames} frames), cameras "
        f"{config.data.cameras}, images {config.data.image_size}"
    )
    rates = {w: ours(ds, progress, config, args.samples, w) for w in (0, 1, 2)}
    slow = naive(ds, progress, config, args.naive_samples)
    for w, r in rates.items():
        print(f"our loader, {w} worker(s):  {r:8.1f} samples/s  ({r / slow:5.1f}x naive)")
    print(f"naive seek-per-frame:      {slow:8.1f} samples/s")
    sr = step_rate(config)
    print(
        f"training step rate:        {sr:8.2f} steps/s ({sr * config.train.batch_size:.0f} "
        f"samples/s, batch {config.train.batch_size}, no data loading)"
    )


if __name__ == "__main__":
    main()
