"""Training loop of the advantage estimator; runs in-process or under torchrun.

One process::

    train(dataset_root, run_dir, EstimatorConfig(...))

Many (DDP; rank 0 validates, writes checkpoints and metrics)::

    torchrun --nproc_per_node 8 [--nnodes 2 --node_rank 0 --master_addr HOST --master_port 12345] \\
        -m adv_pipeline.estimator.train --dataset DATA_DIR --run-dir RUN_DIR --config config.json

Checkpoints: ``<run_dir>/<step>/{model.safetensors, optimizer.pt, metadata.json, assets/}``;
metrics: ``<run_dir>/metrics.jsonl`` (one ``{"step", "name", "value"}`` per line).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from scipy.stats import spearmanr
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from adv_pipeline.checkpoints import (
    Checkpoint,
    begin_run,
    list_steps,
    load_checkpoint,
    prune_checkpoints,
    write_checkpoint,
)
from adv_pipeline.configs import from_params, to_params
from adv_pipeline.crash import failpoint
from adv_pipeline.distributed import Distributed, init_distributed
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.loader import split_episodes
from adv_pipeline.outputs import output_lock, shown_path
from adv_pipeline.torch_threads import use_torch_threads

from .config import EstimatorConfig
from .data import (
    TrainLoader,
    ValidationSet,
    check_training_inputs,
    episode_returns,
    load_validation,
    state_statistics,
)
from .model import AdvantageEstimator, TaskPrompts, random_shift, to_model_input

METRICS_FILE = "metrics.jsonl"
OPTIMIZER_FILE = "optimizer.pt"


class WeightAverage:
    """Exponential moving average of a model's weights: after each optimiser step,
    ``average = decay * average + (1 - decay) * weights``; buffers (e.g. normalisation
    statistics) are copied. ``model`` is the averaged copy, in eval mode."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        torch._foreach_lerp_(
            list(self.model.parameters()),
            [p.detach() for p in model.parameters()],
            1.0 - self.decay,
        )
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)


def lr_lambda(config) -> callable:
    """Linear warmup to 1, then cosine decay to ``min_lr_ratio`` at ``steps``."""
    warm, total, floor = config.warmup_steps, config.steps, config.min_lr_ratio

    def fn(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn


def _timesteps(current: torch.Tensor, first: torch.Tensor, paired: bool) -> torch.Tensor:
    """(B, ...) current-frame inputs -> (B, T, ...): (frame 0, current) pairs for KAI0."""
    if paired:
        return torch.stack([first.expand(len(current), *first.shape), current], dim=1)
    return current[:, None]


def validate(
    model: torch.nn.Module,
    val: ValidationSet,
    paired: bool,
    device: torch.device,
    batch: int = 128,
    prompts: TaskPrompts | None = None,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """MSE of the absolute value and mean per-episode Spearman correlation between the
    predicted absolute value (KAI0: V(frame 0 -> n); PI06: V(n)) and stage progress.
    ``prompts`` gives the task text of text-taking models."""
    was_training = model.training
    model.eval()
    preds, sq, rhos = [], [], []
    with torch.no_grad():
        for imgs, first, sp, states, first_state, tasks in zip(
            val.images, val.first, val.progress, val.states, val.first_states, val.tasks
        ):
            out = []
            for i in range(0, len(imgs), batch):
                x = _timesteps(
                    torch.from_numpy(imgs[i : i + batch]), torch.from_numpy(first), paired
                )
                s = (
                    None
                    if states is None
                    else _timesteps(
                        torch.from_numpy(states[i : i + batch]),
                        torch.from_numpy(first_state),
                        paired,
                    ).to(device)
                )
                text = None if prompts is None else prompts(tasks[i : i + batch])
                out.append(model(to_model_input(x).to(device), s, text=text).float().cpu().numpy())
            v = np.concatenate(out)
            target = sp - sp[0] if paired else sp
            sq.append((v - target) ** 2)
            if np.ptp(sp) > 0 and np.ptp(v) > 0:
                rhos.append(spearmanr(v, sp).statistic)
            preds.append(v)
    model.train(was_training)
    metrics = {
        "val_mse": float(np.concatenate(sq).mean()) if sq else float("nan"),
        "val_spearman": float(np.mean(rhos)) if rhos else float("nan"),
    }
    return metrics, preds


def _log(run_dir: Path, step: int, metrics: dict[str, float]) -> None:
    with open(run_dir / METRICS_FILE, "a") as f:
        for name, value in metrics.items():
            f.write(json.dumps({"step": int(step), "name": name, "value": float(value)}) + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as ``{name: [(step, value), ...]}`` (last value wins per step)."""
    path = Path(run_dir) / METRICS_FILE
    out: dict[str, dict[int, float]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out.setdefault(row["name"], {})[int(row["step"])] = float(row["value"])
    return {k: sorted(v.items()) for k, v in out.items()}


def _truncate_metrics(run_dir: Path, step: int) -> None:
    path = run_dir / METRICS_FILE
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def _params_checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))


# Settings that may change when a run is resumed: they do not change what is learned.
_FREE_ON_RESUME = {
    "train": (
        "steps",
        "resume",
        "save_interval",
        "keep_period",
        "eval_interval",
        "log_interval",
        "threads",
    ),
    "data": ("num_workers", "prefetch_chunks", "val_episodes_max", "val_frame_stride"),
}


def run_identity(dataset: LeRobotDatasetReader, config: EstimatorConfig) -> dict:
    """What a run trains on: the dataset's fingerprint and every setting that changes the
    learned weights (resuming with a different identity is refused)."""
    cfg = to_params(config)
    cfg.pop("launch", None)  # the process layout does not change what is learned
    for section, keys in _FREE_ON_RESUME.items():
        for key in keys:
            cfg[section].pop(key, None)
    cfg["model"].pop("state_dim", None)  # derived from the data
    cfg["model"].pop("action_dim", None)
    return {"dataset_fingerprint": dataset.fingerprint(), "config": cfg}


def train(
    dataset_root: str | Path,
    run_dir: str | Path,
    config: EstimatorConfig,
    dataset: LeRobotDatasetReader | None = None,
    stop_after: int | None = None,
) -> Checkpoint:
    """Train (or resume) the estimator in the run folder ``run_dir``; returns the latest
    checkpoint (on every rank).

    The input is checked first (:func:`check_training_inputs`), then the run: a run with
    checkpoints is only continued (``train.resume``) on the same data and settings, never
    deleted (:func:`adv_pipeline.checkpoints.begin_run`). Rank 0 holds the run's lock.
    ``stop_after`` ends this call after that many steps (saving a checkpoint), as a
    preempted job would; a later call with ``resume`` continues exactly where it stopped.
    """
    env = init_distributed()
    run_dir = Path(run_dir)
    if config.train.resume == "auto":  # continue this run if it has checkpoints
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, resume=bool(list_steps(run_dir)))
        )
    tc = config.train
    use_torch_threads(tc.threads)
    device = (
        torch.device("cuda", env.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    )
    dataset = dataset or LeRobotDatasetReader(dataset_root)
    progress = check_training_inputs(dataset, config)
    identity = run_identity(dataset, config)
    with output_lock(run_dir) if env.is_main else nullcontext():
        if env.is_main:
            begin_run(run_dir, identity, tc.resume)
        if env.world_size > 1:
            dist.barrier()
        return _train(dataset, run_dir, config, progress, env, device, stop_after)


def _train(
    dataset: LeRobotDatasetReader,
    run_dir: Path,
    config: EstimatorConfig,
    progress: dict,
    env: Distributed,
    device: torch.device,
    stop_after: int | None,
) -> Checkpoint:
    tc, dc, mc = config.train, config.data, config.model
    train_eps, val_eps = split_episodes(list(progress), dc.val_fraction, tc.seed)
    paired = mc.timesteps == 2
    norm = None
    if dc.state is not None:
        norm = state_statistics(dataset, dc.state, train_eps)
        mc = dataclasses.replace(mc, state_dim=len(norm[0]))
        config = dataclasses.replace(config, model=mc)
    action_norm = None
    if dc.action is not None:
        action_norm = state_statistics(dataset, [dc.action], train_eps)
        mc = dataclasses.replace(mc, action_dim=len(action_norm[0]))
        config = dataclasses.replace(config, model=mc)
    torch.manual_seed(tc.seed)
    model = AdvantageEstimator(mc, dc).to(device)
    if norm is not None:
        model.state_encoder.set_normalization(*norm)
    if action_norm is not None:
        model.action_head.set_normalization(*action_norm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tc))
    start, saved = 0, None
    steps = list_steps(run_dir) if tc.resume else []
    if steps:
        ckpt = load_checkpoint(run_dir)
        saved = {k: torch.from_numpy(v) for k, v in ckpt.load_weights().items()}
        state = torch.load(ckpt.path / OPTIMIZER_FILE, map_location=device, weights_only=False)
        model.load_state_dict(state.get("model", saved))  # the raw weights, when averaged
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = ckpt.step
    average = WeightAverage(model, tc.ema_decay) if tc.ema_decay is not None else None
    if average is not None and saved is not None:
        average.model.load_state_dict(saved)
    final = model if average is None else average.model  # what is validated and saved
    if env.is_main:
        _truncate_metrics(run_dir, start)  # rows of steps after the last checkpoint (a killed run)
    ddp = DistributedDataParallel(model) if env.world_size > 1 else model

    meta = {
        "config": to_params(config),
        "variant": mc.variant,
        "target": mc.target,
        "backbone": mc.backbone,
        "dataset": shown_path(dataset.root),
        "dataset_fingerprint": dataset.fingerprint(),
        "train_episodes": train_eps,
        "val_episodes": val_eps,
        "world_size": env.world_size,
    }
    if mc.target == "returns":  # Stage 2's rewards are divided by the task's normaliser
        meta["return_scales"] = episode_returns(dataset, mc.failure_penalty)[1]

    def save(step: int) -> None:
        if env.world_size > 1:
            sums = [None] * env.world_size
            dist.all_gather_object(sums, _params_checksum(model))
        else:
            sums = [_params_checksum(model)]
        if not env.is_main:
            return

        def extra(tmp: Path) -> None:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            if average is not None:
                state["model"] = model.state_dict()
            torch.save(state, tmp / OPTIMIZER_FILE)
            (tmp / "assets").mkdir()
            (tmp / "assets" / "estimator_config.json").write_text(
                json.dumps(to_params(config), indent=2)
            )
            model.save_assets(tmp / "assets")

        tensors = {k: v.detach().float().cpu().numpy() for k, v in final.state_dict().items()}
        write_checkpoint(run_dir, step, tensors, {**meta, "rank_param_checksums": sums}, extra)
        prune_checkpoints(run_dir, tc.keep_period)

    val = load_validation(dataset, progress, val_eps, dc) if env.is_main and val_eps else None
    prompts = TaskPrompts(model, dict(enumerate(dataset.tasks)), device)

    def evaluate(step: int) -> None:
        if val is not None:
            metrics, _ = validate(final, val, paired, device, prompts=prompts)
            _log(run_dir, step, metrics)

    loader = TrainLoader(
        dataset,
        progress,
        train_eps,
        dc,
        paired,
        tc.batch_size,
        tc.seed,
        start,
        env.rank,
        env.world_size,
    )
    bar = tqdm(
        total=tc.steps,
        initial=start,
        desc=f"estimator {mc.variant}",
        unit="step",
        disable=not env.is_main,
    )
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=tc.bf16 and device.type == "cuda"
    )
    step, t0, seen = start, time.perf_counter(), 0
    try:
        for batch in loader:
            if step >= tc.steps or (stop_after is not None and step >= start + stop_after):
                break
            # augmentation draws from a generator seeded by (seed, step): resumes stay exact
            aug = torch.Generator().manual_seed(tc.seed * 1_000_003 + step)
            x = random_shift(
                to_model_input(torch.from_numpy(batch.images)), dc.augment_shift, aug
            ).to(device, non_blocking=True)
            y = torch.from_numpy(batch.target).to(device)
            state = None if batch.state is None else torch.from_numpy(batch.state).to(device)
            with autocast:
                action = None if batch.action is None else torch.from_numpy(batch.action)
                loss = ddp(
                    x,
                    state,
                    y,
                    prompts(batch.task),
                    None if action is None else action.to(device),
                    (tc.loss_value_weight, tc.loss_action_weight),
                    None
                    if batch.action_weight is None
                    else torch.from_numpy(batch.action_weight).to(device),
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(model)
            step += 1
            seen += len(y)
            if env.is_main and (step % tc.log_interval == 0 or step == tc.steps):
                rate = seen * env.world_size / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss.item():.4f}", samples_s=f"{rate:.0f}")
                _log(
                    run_dir,
                    step,
                    {
                        "train_loss": loss.item(),
                        "grad_norm": float(grad_norm),
                        "lr": scheduler.get_last_lr()[0],
                        "samples_per_s": rate,
                    },
                )
            bar.update(1)
            failpoint("estimator.step")
            if step % tc.eval_interval == 0 or step == tc.steps:
                evaluate(step)
            stopping = stop_after is not None and step == start + stop_after
            if step % tc.save_interval == 0 or step == tc.steps or stopping:
                save(step)
            if env.world_size > 1 and (
                step % tc.eval_interval == 0 or step % tc.save_interval == 0 or step == tc.steps
            ):
                dist.barrier()
    finally:
        loader.close()
        bar.close()
    if env.world_size > 1:
        dist.barrier()
    return load_checkpoint(run_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the advantage estimator (torchrun-compatible)."
    )
    parser.add_argument("--dataset", required=True, help="LeRobot v2.1 dataset directory")
    parser.add_argument("--run-dir", required=True, help="where checkpoints and metrics go")
    parser.add_argument(
        "--config",
        required=True,
        help="JSON file of EstimatorConfig (as parameters_estimator.yml's model/data/train)",
    )
    args = parser.parse_args(argv)
    config = from_params(
        EstimatorConfig, json.loads(Path(args.config).read_text()), f"estimator ({args.config})"
    )
    train(args.dataset, args.run_dir, config)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
