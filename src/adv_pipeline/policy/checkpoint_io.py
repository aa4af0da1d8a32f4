"""Policy checkpoints on top of :mod:`adv_pipeline.checkpoints`.

A step directory holds ``model.safetensors`` (parameters, keys ``a/b/c``),
``optimizer.safetensors`` (optax state leaves in tree order), ``policy.json`` (policy
config, tasks, tokenizer, camera keys, normalisation statistics), ``train_config.json``
and ``train_metrics.json`` (the logged history up to that step, for resumed runs).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import traverse_util
from safetensors.numpy import load_file, save_file

from adv_pipeline.checkpoints import Checkpoint, list_steps, write_checkpoint
from adv_pipeline.configs import from_params, to_params

from .config import PolicyConfig, TrainConfig
from .normalize import NormStats

OPTIMIZER_FILE = "optimizer.safetensors"
POLICY_FILE = "policy.json"
TRAIN_CONFIG_FILE = "train_config.json"
METRICS_FILE = "train_metrics.json"
ENCODERS = "encoders"  # <column>/<step>/: the estimator encoders of derived state columns


@dataclass(frozen=True)
class PolicyAssets:
    """What inference needs besides the weights.

    ``state_dims``: the length of each ``config.data.state_key`` column. ``encoders``:
    ``{column: checkpoint step folder}`` of the state columns derived from the cameras
    (Stage 2's image features): saved into each checkpoint (``encoders/<column>/<step>/``)
    and run on live images at inference.
    """

    config: PolicyConfig
    tasks: tuple[str, ...]
    camera_keys: tuple[str, ...]
    state_stats: NormStats
    action_stats: NormStats
    state_dims: tuple[int, ...] = ()
    encoders: Mapping[str, Path] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": to_params(self.config),
            "tasks": list(self.tasks),
            "camera_keys": list(self.camera_keys),
            "state_dims": list(self.state_dims),
            "norm_stats": {
                "state": self.state_stats.to_json(),
                "action": self.action_stats.to_json(),
            },
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PolicyAssets:
        return cls(
            config=from_params(PolicyConfig, d["config"], "policy config of a checkpoint"),
            tasks=tuple(d["tasks"]),
            camera_keys=tuple(d["camera_keys"]),
            state_stats=NormStats.from_json(d["norm_stats"]["state"]),
            action_stats=NormStats.from_json(d["norm_stats"]["action"]),
            state_dims=tuple(d.get("state_dims", ())),
        )


def flatten_params(params) -> dict[str, np.ndarray]:
    return {
        k: np.asarray(jax.device_get(v))
        for k, v in traverse_util.flatten_dict(params, sep="/").items()
    }


def unflatten_params(flat: Mapping[str, np.ndarray]):
    return traverse_util.unflatten_dict({k: np.asarray(v) for k, v in flat.items()}, sep="/")


def save_policy_checkpoint(
    run_dir: str | Path,
    step: int,
    params,
    opt_state,
    assets: PolicyAssets,
    train_config: TrainConfig,
    metrics: Mapping[str, list],
    metadata: Mapping[str, Any],
) -> Checkpoint:
    """Write step ``step`` of a run (atomically, see
    :func:`adv_pipeline.checkpoints.write_checkpoint`)."""
    leaves = [np.asarray(jax.device_get(x)) for x in jax.tree_util.tree_leaves(opt_state)]

    def extra(tmp: Path) -> None:
        save_file(
            {f"{i:05d}": np.ascontiguousarray(np.atleast_1d(x)) for i, x in enumerate(leaves)},
            str(tmp / OPTIMIZER_FILE),
        )
        (tmp / POLICY_FILE).write_text(json.dumps(assets.to_json(), indent=2))
        for column, step_dir in assets.encoders.items():
            shutil.copytree(step_dir, tmp / ENCODERS / column / Path(step_dir).name)
        (tmp / TRAIN_CONFIG_FILE).write_text(json.dumps(to_params(train_config), indent=2))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics))

    return write_checkpoint(
        run_dir, step, flatten_params(params), {**metadata, "policy": POLICY_FILE}, extra
    )


def load_assets(ckpt: Checkpoint) -> PolicyAssets:
    path = ckpt.path / POLICY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {ckpt.path} is not a policy checkpoint of adv_pipeline.policy. "
            f"Fix: point to an AWBC/BC run directory"
        )
    assets = PolicyAssets.from_json(json.loads(path.read_text()))
    encoders = {}
    for column in assets.config.data.state_key:
        steps = list_steps(ckpt.path / ENCODERS / column)
        if steps:
            encoders[column] = ckpt.path / ENCODERS / column / str(steps[-1])
    return dataclasses.replace(assets, encoders=encoders)


def load_optimizer_state(ckpt: Checkpoint, template):
    """The saved optax state, in the structure (and dtypes) of ``template``."""
    flat = load_file(str(ckpt.path / OPTIMIZER_FILE))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(flat) != len(leaves):
        raise ValueError(
            f"{ckpt.path / OPTIMIZER_FILE}: {len(flat)} optimizer arrays, the current optimizer "
            f"has {len(leaves)}. Fix: resume with the same model/optimizer config or use a new "
            f"run directory"
        )
    restored = [
        np.asarray(flat[f"{i:05d}"]).reshape(np.shape(x)).astype(np.asarray(x).dtype)
        for i, x in enumerate(leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, restored)


def load_metrics(ckpt: Checkpoint) -> dict[str, list]:
    path = ckpt.path / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
