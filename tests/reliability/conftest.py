"""Helpers of the reliability tests: Kedro runs in this process, tree digests, a tiny
trained estimator, and the processes of a run."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from adv_pipeline.estimator.train import train

from ..estimator.test_estimator import tiny_config


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones too) -> content hash, "dir" or link target."""
    root = Path(root)
    if not os.path.lexists(root):
        return {}
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def debris(root: Path) -> list[str]:
    """Temporary files, lock files and work folders left under ``root``."""
    return sorted(
        str(p.relative_to(root))
        for p in Path(root).rglob("*")
        if ".tmp-" in p.name or ".old-" in p.name or p.name.endswith((".lock", ".work"))
    )


@pytest.fixture(scope="session")
def robot_estimator(robot_source, tmp_path_factory) -> Path:
    """A folder of runs holding a tiny estimator trained on ``robot_source``."""
    from adv_pipeline.checkpoints import Runs, open_run
    from adv_pipeline.estimator.train import run_identity
    from adv_pipeline.lerobot import LeRobotDatasetReader

    root = tmp_path_factory.mktemp("estimator") / "runs"
    config = robot_config()
    ds = LeRobotDatasetReader(robot_source)
    run_dir = open_run(Runs(root), run_identity(ds, config), resume=False)
    train(robot_source, run_dir, config, dataset=ds)
    return root


def robot_config(steps: int = 2):
    """The tiny estimator config of the tests, on the robot fixture's three cameras."""
    import dataclasses

    config = tiny_config(steps=steps)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, cameras=("top_head", "hand_left", "hand_right")),
    )


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
