"""Model checkpoint directories: ``<run_dir>/<step>/{model.safetensors, metadata.json, ...}``.

A checkpoint is written to a temporary directory and renamed into place, so a run that
dies while saving leaves the previous checkpoints intact and no half step directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .lerobot.writer import atomic_directory

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class Checkpoint:
    """One saved step of a run: ``path = run_dir / str(step)``."""

    run_dir: Path
    step: int
    metadata: Mapping = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.run_dir / str(self.step)

    def load_weights(self) -> dict[str, np.ndarray]:
        """The safetensors weights as numpy arrays."""
        return load_file(self.path / WEIGHTS_FILE)


def list_steps(run_dir: str | Path) -> list[int]:
    """Steps with a complete checkpoint (a metadata file) under ``run_dir``, ascending."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(int(p.name) for p in run_dir.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file())


def load_checkpoint(run_dir: str | Path, step: int | None = None) -> Checkpoint:
    """The checkpoint at ``step`` (default: the latest) of ``run_dir``."""
    run_dir = Path(run_dir)
    steps = list_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoints (expected <step>/{METADATA_FILE}). Fix: train first or point to a run directory")
    if step is None:
        step = steps[-1]
    if int(step) not in steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoint at step {step}; available steps: {steps}")
    meta = json.loads((run_dir / str(step) / METADATA_FILE).read_text())
    return Checkpoint(run_dir, int(step), meta)


def write_checkpoint(
    run_dir: str | Path,
    step: int,
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping,
    extra: Callable[[Path], None] | None = None,
) -> Checkpoint:
    """Write ``<run_dir>/<step>/`` atomically: weights, metadata, and whatever ``extra``
    writes into the (temporary) step directory (optimizer state, assets...)."""
    run_dir = Path(run_dir)
    with atomic_directory(run_dir / str(int(step))) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
        if extra is not None:
            extra(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps({"step": int(step), **metadata}, indent=2, default=str))
    return load_checkpoint(run_dir, step)


def copy_checkpoint(ckpt: Checkpoint, run_dir: str | Path) -> Checkpoint:
    """Copy one checkpoint into another run directory (atomically)."""
    with atomic_directory(Path(run_dir) / str(ckpt.step)) as tmp:
        shutil.copytree(ckpt.path, tmp, dirs_exist_ok=True)
    return load_checkpoint(run_dir, ckpt.step)


def prune_checkpoints(run_dir: str | Path, keep_period: int | None, keep_last: int = 1) -> list[int]:
    """Delete checkpoints whose step is not a multiple of ``keep_period``, except the
    ``keep_last`` newest. Returns the deleted steps."""
    steps = list_steps(run_dir)
    if not keep_period:
        return []
    protected = set(steps[-keep_last:]) if keep_last > 0 else set()
    doomed = [s for s in steps if s % keep_period != 0 and s not in protected]
    for s in doomed:
        shutil.rmtree(Path(run_dir) / str(s), ignore_errors=True)
    return doomed
