"""Training loop: optax AdamW (warm-up + cosine), data-parallel over all jax devices.

Parallelism: a 1-D mesh ``("data",)`` over ``jax.devices()``; each global batch is sharded
along its first axis, parameters and optimizer state are replicated, and XLA inserts the
gradient all-reduce. Data stream from :mod:`adv_pipeline.policy.data`: the global batch
of step ``s`` depends only on the seed, so a resumed run (which skips the planned samples
of the finished steps without decoding them) sees exactly the batches an uninterrupted
run would.

Several processes (hosts, or CPU processes in the tests): every process calls
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` first
(:func:`adv_pipeline.distributed.init_jax_distributed`, from ``awbc.launch``).
``jax.devices()`` then lists the devices of all processes, so the mesh spans them; each
process decodes only its slice of every global batch and feeds it with
``jax.make_array_from_process_local_data``; only process 0 writes checkpoints, which must
go to storage all processes can read for resuming.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from adv_pipeline.checkpoints import (
    Checkpoint,
    Runs,
    begin_run,
    list_steps,
    load_checkpoint,
    open_run,
    prune_checkpoints,
)
from adv_pipeline.configs import to_params
from adv_pipeline.crash import failpoint
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.outputs import output_lock, shown_path

from .checkpoint_io import (
    PolicyAssets,
    load_metrics,
    load_optimizer_state,
    save_policy_checkpoint,
    unflatten_params,
)
from .config import PolicyConfig, TrainConfig
from .data import PolicyData, PolicyLoader, prepare_policy_data, training_batch
from .model import ActionPolicy, build_model, training_loss
from .tokenizer import HashTokenizer

log = logging.getLogger(__name__)

Metrics = dict[str, list[dict[str, float]]]


@dataclass(frozen=True)
class TrainResult:
    """A finished training run.

    Attributes:
        checkpoint: the final checkpoint (step ``train_config.steps``).
        metrics: ``{"loss" | "grad_norm" | "lr": [{"value": v, "step": s}, ...]}``, one entry
            per logged step (the history of earlier, resumed segments included).
        seconds: wall time of this call's training loop (s), compilation included.
        steps_per_second: optimizer steps per second in this call (after compilation).
        start_step: the step this call started from (0 unless resumed).
    """

    checkpoint: Checkpoint
    metrics: Metrics
    seconds: float
    steps_per_second: float
    start_step: int


def make_optimizer(config: TrainConfig) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Global-norm clipping, then AdamW with linear warm-up and cosine decay."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.lr,
        warmup_steps=config.warmup_steps,
        decay_steps=max(config.steps, config.warmup_steps + 1),
        end_value=config.lr * config.end_lr_ratio,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )
    return tx, schedule


def model_for(config: PolicyConfig, data: PolicyData) -> ActionPolicy:
    return build_model(
        config.model,
        config.tokenizer.vocab_size,
        config.tokenizer.max_len,
        config.data.horizon,
        data.spec.action_dim,
    )


def init_params(model: ActionPolicy, config: PolicyConfig, data: PolicyData, seed: int):
    """Parameters initialised from ``seed`` for the dataset's shapes."""
    s, spec = config.data.image_size, data.spec
    # one compiled program: eager init compiles each of its ~200 small ops separately
    return jax.jit(model.init)(
        jax.random.PRNGKey(seed),
        np.zeros((1, len(spec.camera_keys), s, s, 3), np.uint8),
        np.zeros((1, spec.state_dim), np.float32),
        np.zeros((1, config.tokenizer.max_len), np.int32),
        np.zeros((1, config.data.horizon, spec.action_dim), np.float32),
        np.zeros((1,), np.float32),
    )["params"]


def data_mesh() -> Mesh:
    """1-D mesh ``("data",)`` over all devices of all processes."""
    return Mesh(np.asarray(jax.devices()), ("data",))


# the training settings the compiled step depends on (the optimizer and the average)
STEP_FIELDS = (
    "steps",
    "lr",
    "warmup_steps",
    "end_lr_ratio",
    "weight_decay",
    "grad_clip",
    "ema_decay",
)


def cached_train_step(
    policy_config: PolicyConfig, action_dim: int, train_config: TrainConfig, devices: tuple
) -> Callable:
    """One jitted step per network, optimizer and devices: repeated runs in a process
    compile once, whatever their data settings (prompts, weights, filters) or their
    checkpointing and logging."""
    return _compiled_step(
        policy_config.model,
        policy_config.tokenizer,
        policy_config.data.horizon,
        action_dim,
        tuple((f, getattr(train_config, f)) for f in STEP_FIELDS),
        devices,
    )


@functools.lru_cache(maxsize=8)
def _compiled_step(
    model_config, tokenizer, horizon: int, action_dim: int, step_fields: tuple, devices: tuple
) -> Callable:
    config = TrainConfig(**dict(step_fields))
    model = build_model(model_config, tokenizer.vocab_size, tokenizer.max_len, horizon, action_dim)
    return make_train_step(
        model, make_optimizer(config)[0], Mesh(np.asarray(devices), ("data",)), config.ema_decay
    )


def make_train_step(
    model: ActionPolicy,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    ema_decay: float | None = None,
) -> Callable:
    """The jitted ``(params, opt_state, ema, batch) -> (params, opt_state, ema, {"loss",
    "grad_norm"})``; ``ema`` (the parameters' moving average) is None without ``ema_decay``."""
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    def step(params, opt_state, ema, batch):
        loss, grads = jax.value_and_grad(lambda p: training_loss(model, p, batch))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if ema_decay is not None:
            ema = optax.incremental_update(params, ema, 1.0 - ema_decay)
        return params, opt_state, ema, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return jax.jit(
        step,
        in_shardings=(replicated, replicated, replicated, sharded),
        out_shardings=(replicated, replicated, replicated, replicated),
        donate_argnums=(0, 1, 2),
    )


def shard_batch(local: dict[str, np.ndarray], mesh: Mesh, batch_size: int) -> dict[str, jax.Array]:
    """This process's slice of the global batch -> global arrays sharded along axis 0."""
    sharding = NamedSharding(mesh, P("data"))
    return {
        k: jax.make_array_from_process_local_data(sharding, v, (batch_size, *v.shape[1:]))
        for k, v in local.items()
    }


def _append(metrics: Metrics, name: str, value: float, step: int) -> None:
    metrics.setdefault(name, []).append({"value": float(value), "step": int(step)})


# TrainConfig fields that change the trained weights (the others may differ when resuming);
# ema_decay joins them when set, so runs made before it existed still resume without it
_RESULT_FIELDS = (
    "steps",
    "batch_size",
    "lr",
    "warmup_steps",
    "end_lr_ratio",
    "weight_decay",
    "grad_clip",
    "seed",
)


def run_identity(
    reader: LeRobotDatasetReader, policy_config: PolicyConfig, train_config: TrainConfig, dhash: str
) -> dict:
    """What a run trains on: the training arrays' hash, the dataset's fingerprint, the
    policy config and the training settings that change the weights."""
    train = to_params(train_config)
    fields = _RESULT_FIELDS + (("ema_decay",) if train_config.ema_decay is not None else ())
    return {
        "data_hash": dhash,
        "dataset_fingerprint": reader.fingerprint(),
        "policy_config": to_params(policy_config),
        "train_config": {k: train.get(k) for k in fields},
    }


def train_policy(
    reader: LeRobotDatasetReader,
    policy_config: PolicyConfig,
    train_config: TrainConfig,
    run_dir: str | Path,
    stop_at: int | None = None,
    data: PolicyData | None = None,
) -> TrainResult:
    """Train (or resume training) a policy on a LeRobot dataset in the run folder ``run_dir``.

    A run with checkpoints is only continued (``train_config.resume``) on the same data
    and settings, never deleted (:func:`adv_pipeline.checkpoints.begin_run`); process 0
    holds the run's lock while training.

    Args:
        reader: the training dataset.
        policy_config / train_config: see :mod:`adv_pipeline.policy.config`.
        run_dir: the run folder; ``<run_dir>/<step>/`` every ``save_interval`` steps and at the end.
        stop_at: stop (and checkpoint) after this step instead of ``train_config.steps``,
            as an interrupted run would; the schedule still spans ``train_config.steps``.
        data: :func:`~adv_pipeline.policy.data.prepare_policy_data` of this reader and config.
    """
    run_dir = Path(run_dir)
    if train_config.batch_size % jax.device_count():
        raise ValueError(
            f"awbc.train.batch_size={train_config.batch_size} is not divisible by the "
            f"{jax.device_count()} devices. Fix: choose a multiple"
        )
    if data is None:
        data = prepare_policy_data(
            reader, policy_config.data, HashTokenizer(policy_config.tokenizer)
        )
    dhash = data.data_hash
    main = jax.process_index() == 0
    with output_lock(run_dir) if main else nullcontext():
        identity = run_identity(reader, policy_config, train_config, dhash)
        resumed = (
            begin_run(run_dir, identity, bool(train_config.resume))
            if main
            else bool(train_config.resume and list_steps(run_dir))
        )
        return _train_loop(
            reader, policy_config, train_config, run_dir, stop_at, data, dhash, resumed
        )


def train_policy_run(
    reader: LeRobotDatasetReader,
    policy_config: PolicyConfig,
    train_config: TrainConfig,
    runs: Runs,
    overwrite: bool = False,
) -> TrainResult:
    """Train in a run folder of ``runs``: a new run, or the one ``train_config.resume``
    continues (``"auto"``: the latest run when it trained on the same data and settings),
    see :func:`adv_pipeline.checkpoints.open_run`."""
    data = prepare_policy_data(reader, policy_config.data, HashTokenizer(policy_config.tokenizer))
    identity = run_identity(reader, policy_config, train_config, data.data_hash)
    run_dir = open_run(runs, identity, train_config.resume, overwrite, train_config.seed)
    resume = train_config.resume is True or (
        train_config.resume == "auto" and bool(list_steps(run_dir))
    )
    return train_policy(
        reader, policy_config, dataclasses.replace(train_config, resume=resume), run_dir, data=data
    )


def _train_loop(
    reader: LeRobotDatasetReader,
    policy_config: PolicyConfig,
    train_config: TrainConfig,
    run_dir: Path,
    stop_at: int | None,
    data: PolicyData,
    dhash: str,
    resumed: bool,
) -> TrainResult:
    model = model_for(policy_config, data)
    tx, schedule = make_optimizer(train_config)
    cfg, dc = train_config, policy_config.data
    end = cfg.steps if stop_at is None else min(int(stop_at), cfg.steps)
    params = init_params(model, policy_config, data, cfg.seed)
    opt_state = tx.init(params)
    averaged = cfg.ema_decay is not None
    ema = params if averaged else None
    metrics: Metrics = {}
    start = 0
    resume = load_checkpoint(run_dir) if resumed else None
    if resume is not None:
        weights = jax.tree_util.tree_map(jnp.asarray, unflatten_params(resume.load_weights()))
        if averaged:  # the weights are the average; the raw parameters follow the optimizer's
            ema = weights
            opt_state, params = load_optimizer_state(resume, (opt_state, params))
        else:
            params, opt_state = weights, load_optimizer_state(resume, opt_state)
        metrics = {
            k: [e for e in v if e["step"] <= resume.step] for k, v in load_metrics(resume).items()
        }
        start = resume.step
        log.info("%s: resuming from step %d", run_dir, start)
    encoders = reader.encoders()
    assets = PolicyAssets(
        policy_config,
        data.tasks,
        data.spec.camera_keys,
        data.state_stats,
        data.action_stats,
        data.spec.state_dims,
        {k: encoders[k] for k in policy_config.data.state_key if k in encoders},
    )
    metadata = {
        "data_hash": dhash,
        "dataset": shown_path(reader.root),
        "dataset_fingerprint": reader.fingerprint(),
        "policy_config": to_params(policy_config),
        "train_config": to_params(train_config),
        "tasks": list(data.tasks),
        "train_episodes": len(data.train_episodes),
        "val_episodes": list(data.val_episodes),
    }
    if start >= end:
        return TrainResult(resume, metrics, 0.0, 0.0, start)

    mesh = data_mesh()
    replicated = NamedSharding(mesh, P())
    params, opt_state, ema = jax.device_put((params, opt_state, ema), replicated)
    if averaged:  # its own buffers: the step donates both
        ema = jax.tree_util.tree_map(jnp.copy, ema)
    train_step = cached_train_step(
        policy_config, data.spec.action_dim, train_config, tuple(jax.devices())
    )

    def save(step: int) -> Checkpoint | None:
        ckpt = None
        if jax.process_index() == 0:
            weights, state = (ema, (opt_state, params)) if averaged else (params, opt_state)
            ckpt = save_policy_checkpoint(
                run_dir, step, weights, state, assets, train_config, metrics, metadata
            )
            prune_checkpoints(run_dir, cfg.keep_period)
        if jax.process_count() > 1:  # the others wait until the checkpoint is on disk
            multihost_utils.sync_global_devices(f"policy checkpoint {step}")
        return ckpt

    t0 = time.perf_counter()
    t_compiled, pending = None, []
    ckpt = None
    bar = tqdm(
        total=end,
        initial=start,
        desc=f"train {run_dir.parent.name}/{run_dir.name}",
        disable=not cfg.progress_bar,
        dynamic_ncols=True,
    )
    rank, world = jax.process_index(), jax.process_count()
    loader = PolicyLoader(
        reader, data, dc, cfg.batch_size, cfg.seed, start, cfg.num_workers,
        cfg.prefetch_chunks, rank, world,
    )  # fmt: skip
    batches = iter(loader)
    dropout = dc.prompt_dropout if dc.prompt_from_task else 0.0
    try:
        for step in range(start, end):
            local = training_batch(
                next(batches), data, step, cfg.batch_size, cfg.seed, dropout, rank, world
            )
            batch = shard_batch(local, mesh, cfg.batch_size)
            params, opt_state, ema, m = train_step(params, opt_state, ema, batch)
            pending.append(m)
            done = step + 1
            if t_compiled is None:
                jax.block_until_ready(m)
                t_compiled, first = time.perf_counter(), done
            if done % cfg.log_interval == 0 or done == cfg.steps:
                # mean over the steps since the last log (of this call)
                host = jax.device_get(pending)
                pending = []
                loss = float(np.mean([x["loss"] for x in host]))
                _append(metrics, "loss", loss, done)
                _append(metrics, "grad_norm", float(np.mean([x["grad_norm"] for x in host])), done)
                _append(metrics, "lr", float(schedule(done - 1)), done)
                elapsed = time.perf_counter() - t_compiled
                rate = (done - first) * cfg.batch_size / elapsed if elapsed > 0 else 0.0
                bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{rate:.0f}")
            bar.update(1)
            failpoint("policy.step")
            if done % cfg.save_interval == 0 or done == end:
                ckpt = save(done)
    finally:
        loader.close()
    bar.close()
    seconds = time.perf_counter() - t0
    after = time.perf_counter() - t_compiled
    sps = (end - first) / after if after > 0 and end > first else 0.0
    if ckpt is None:
        ckpt = load_checkpoint(run_dir, end)
    log.info(
        "%s: trained steps %d..%d in %.1f s (%.1f steps/s after compilation, batch %d, %d devices)",
        run_dir,
        start,
        end,
        seconds,
        sps,
        cfg.batch_size,
        jax.device_count(),
    )
    return TrainResult(ckpt, metrics, seconds, sps, start)
