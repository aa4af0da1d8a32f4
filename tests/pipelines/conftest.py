"""The toy default run, shared by the tests that read its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import project_copy, run_kedro

# the default `kedro run` at toy sizes (seconds, not minutes)
TOY = ",".join(
    [
        "demo.n_episodes=8",
        "estimator_steps=12",
        "estimator.train.eval_interval=6",
        "estimator.train.save_interval=6",
        "estimator.data.samples_per_episode=16",
        "awbc.train.steps=12",
        "awbc.train.save_interval=12",
        "awbc.train.log_interval=4",
        "awbc.eval.n_episodes=3",
        "awbc.eval.max_steps=24",
    ]
)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """A copy of the project after `kedro run --params TOY` (the CLI, a process of its own)."""
    project = project_copy(tmp_path_factory.mktemp("default_run") / "project")
    run_kedro(project, "run", "--params", TOY)
    return project
