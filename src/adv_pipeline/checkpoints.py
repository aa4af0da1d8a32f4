"""Training runs and their checkpoints.

Layout::

    <runs>/                        a folder of runs (e.g. data/06_models/estimator)
        <run>/                     one training run (e.g. 2026-11-26T14-35-01Z), marked with
                                   what it trains on (dataset fingerprint, config)
            <step>/                model.safetensors, metadata.json, ... (written atomically)

A new training run gets a new run folder, so an earlier run is never touched. Readers
take the latest run (by creation time) unless one is named, and its latest step unless
one is named. ``resume`` continues a run only when it trained on the same data with the
same config, and says what changed otherwise. Nothing here deletes a checkpoint except
:func:`prune_checkpoints` (``keep_period``) and the ``overwrite`` of a named run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from safetensors.numpy import load_file, save_file

from .crash import failpoint
from .errors import InputError
from .outputs import (
    RUN,
    RUNS,
    atomic_directory,
    check_output,
    output_lock,
    read_marker,
    sweep_debris,
    write_marker,
)

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
CHECKPOINT = "checkpoint"  # marker kind of a step folder

Resume = bool | Literal["auto"]


class RunError(InputError):
    """A run or checkpoint that is missing, exists already, or cannot be resumed; the
    message names it and the fix."""


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


@dataclass(frozen=True)
class Runs:
    """A folder of training runs and the run asked for (None: a new or the latest one)."""

    root: Path
    run: str | None = None


# ---------------------------------------------------------------------------- reading
def list_steps(run_dir: str | Path) -> list[int]:
    """Steps with a complete checkpoint (a metadata file) under ``run_dir``, ascending."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(
        int(p.name) for p in run_dir.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file()
    )


def list_runs(root: str | Path) -> list[Path]:
    """Run folders of ``root``, oldest first (by the creation time in their marker)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [
        (read_marker(p), p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    ]
    runs = [(m.get("created", 0.0), p.name, p) for m, p in runs if m and m.get("kind") == RUN]
    return [p for _, _, p in sorted(runs)]


def resolve_run(path: str | Path, run: str | None = None) -> Path:
    """The run folder to read checkpoints from.

    ``path/run`` when a run is named; ``path`` itself when it holds checkpoints (a run
    folder given directly, or the one-run layout of earlier versions); otherwise the
    latest run of ``path`` that has a checkpoint.
    """
    path = Path(path)
    if run:
        if not (path / run).is_dir():
            known = [p.name for p in list_runs(path)]
            raise RunError(
                f"{path / run}: no such run. Fix: name one of {known or 'none (train first)'}"
            )
        return path / run
    if list_steps(path):
        return path
    with_steps = [p for p in list_runs(path) if list_steps(p)]
    if not with_steps:
        raise RunError(
            f"{path}: no run with a checkpoint (expected <run>/<step>/{METADATA_FILE}). Fix: "
            f"train first or point to a run folder"
        )
    return with_steps[-1]


def load_checkpoint(
    path: str | Path, step: int | None = None, run: str | None = None
) -> Checkpoint:
    """The checkpoint at ``step`` (default: the latest) of run ``run`` (default: the
    latest) under ``path`` (a folder of runs, or a run folder)."""
    run_dir = resolve_run(path, run)
    steps = list_steps(run_dir)
    if not steps:
        raise RunError(
            f"{run_dir}: no checkpoints (expected <step>/{METADATA_FILE}). Fix: train first or "
            f"point to another run"
        )
    if step is None:
        step = steps[-1]
    if int(step) not in steps:
        raise RunError(f"{run_dir}: no checkpoint at step {step}; available steps: {steps}")
    meta = json.loads((run_dir / str(step) / METADATA_FILE).read_text())
    return Checkpoint(run_dir, int(step), meta)


# ---------------------------------------------------------------------------- writing
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
    with atomic_directory(
        run_dir / str(int(step)), CHECKPOINT, marker=False
    ) as tmp:  # an existing step is refused
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
        failpoint("checkpoint.write")
        if extra is not None:
            extra(tmp)
        (tmp / METADATA_FILE).write_text(
            json.dumps({"step": int(step), **metadata}, indent=2, default=str)
        )
    return load_checkpoint(run_dir, step)


def copy_checkpoint(ckpt: Checkpoint, root: str | Path) -> Checkpoint:
    """Copy one checkpoint into the folder of runs ``root``, as run ``<its run's name>``."""
    run_dir = Path(root) / ckpt.run_dir.name
    mark_runs(root)
    if read_marker(run_dir) is None:
        run_dir.mkdir(exist_ok=True)
        write_marker(
            run_dir,
            RUN,
            identity=(read_marker(ckpt.run_dir) or {}).get("identity"),
            copied_from=str(ckpt.run_dir),
        )
    with atomic_directory(run_dir / str(ckpt.step), CHECKPOINT, marker=False) as tmp:
        shutil.copytree(ckpt.path, tmp, dirs_exist_ok=True)
    return load_checkpoint(run_dir, ckpt.step)


def prune_checkpoints(
    run_dir: str | Path, keep_period: int | None, keep_last: int = 1
) -> list[int]:
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


# ---------------------------------------------------------------------------- runs
def identity_differences(old: Mapping | None, new: Mapping, prefix: str = "") -> list[str]:
    """What changed between two identities (nested dicts): ``["train.lr: 0.001 -> 0.002"]``."""
    if old is None:
        return ["the run records no dataset fingerprint or config (written by an earlier version)"]
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += identity_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def mark_runs(root: str | Path, overwrite: bool = False) -> Path:
    """Create (or check) the folder of runs ``root``: refused if it holds something this
    project did not write, unless ``overwrite`` (then runs are only added to it)."""
    root = Path(root)
    check_output(root, RUNS, overwrite=overwrite)
    root.mkdir(parents=True, exist_ok=True)
    if (read_marker(root) or {}).get("kind") != RUNS:
        write_marker(root, RUNS)
    return root


def begin_run(run_dir: str | Path, identity: Mapping, resume: bool) -> bool:
    """Check that a training may write into ``run_dir``, before anything is written.

    Returns True when the run continues (it has checkpoints and ``resume``). Refuses to
    train into a run that has checkpoints without ``resume`` (nothing is deleted), and to
    resume a run whose recorded identity (dataset fingerprint, config) differs from
    ``identity``, listing what changed. Marks the run folder with ``identity``.
    """
    run_dir = Path(run_dir)
    sweep_debris(run_dir)  # half-written steps of a killed run
    steps = list_steps(run_dir)
    marker = read_marker(run_dir)
    if steps and not resume:
        raise RunError(
            f"{run_dir}: this run already has checkpoints (steps {steps}), which are never "
            f"deleted implicitly. "
            "Fix: resume it (train.resume=true), or train into a new run"
        )
    if resume and marker is not None:
        diffs = identity_differences(marker.get("identity"), identity)
        if diffs:
            raise RunError(
                f"{run_dir}: cannot resume this run, it trained on other data or with another "
                f"config: {'; '.join(diffs)}. Fix: start a new run (train.resume=false) or "
                f"restore the original data and config"
            )
    elif resume and steps:
        diffs = identity_differences(None, identity)
        raise RunError(
            f"{run_dir}: cannot resume this run: {diffs[0]}. Fix: start a new run "
            f"(train.resume=false)"
        )
    if marker is None or marker.get("kind") != RUN or "identity" not in marker:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_marker(run_dir, RUN, identity=dict(identity))
    return bool(steps) and resume


def run_name(identity: Mapping, seed: int) -> str:
    """The name of a new run: its training seed and a hash of its identity (dataset,
    config), e.g. ``seed0-3f2a9c1b7e``: the same command names its run the same way."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return f"seed{seed}-{digest.hexdigest()[:10]}"


def open_run(
    runs: Runs, identity: Mapping, resume: Resume, overwrite: bool = False, seed: int = 0
) -> Path:
    """The run folder a new training writes into (created and marked with ``identity``).

    - ``resume=False``: a new run, named ``runs.run`` or :func:`run_name` (``-2``, ``-3``
      added while taken). An existing named run is refused unless ``overwrite``, which
      replaces it.
    - ``resume=True``: the named run, else the run of this identity, else the latest, if
      it trained on the same data with the same config (else refused, saying what
      changed); a new run if there is none.
    - ``resume="auto"``: the same run if it matches, else a new run.
    """
    root = mark_runs(runs.root, overwrite)
    name = runs.run or run_name(identity, seed)
    with output_lock(root):
        if resume:
            if runs.run or (root / name).is_dir():
                target = root / name
            else:
                target = next(iter(list_runs(root)[::-1]), None)
            if target is not None and target.is_dir():
                diffs = identity_differences((read_marker(target) or {}).get("identity"), identity)
                if not diffs:
                    log.info("%s: resuming this run", target)
                    return target
                if resume is True or runs.run:
                    raise RunError(
                        f"{target}: cannot resume this run, it trained on other data or with "
                        f"another config: {'; '.join(diffs)}. Fix: start a new run "
                        f"(train.resume=false) or restore the original data and config"
                    )
                log.info(
                    "%s: the latest run trained on other data or with another config (%s); "
                    "starting a new run",
                    target,
                    "; ".join(diffs),
                )
        path = root / name
        if runs.run and path.exists():
            if not overwrite:
                raise RunError(
                    f"{path}: this run already exists and is never replaced implicitly. Fix: "
                    f"resume it (train.resume=true), name another run, or pass --params "
                    f'"overwrite=true" to replace it'
                )
            log.warning("%s: replacing this run (overwrite=true)", path)
            shutil.rmtree(path)
        suffix = 1
        while not runs.run and path.exists():  # a new run of the same identity
            suffix += 1
            path = root / f"{name}-{suffix}"
        path.mkdir()
        write_marker(path, RUN, identity=dict(identity))
        return path
