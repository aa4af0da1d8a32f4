"""Shared fixtures: tiny LeRobot datasets written by the project's own writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# one JAX compilation cache for the whole session, workers and `kedro run` subprocesses
# alike (they inherit the environment): the policy's XLA programs are compiled once, not
# once per process. A size limit turns on JAX's file lock, so concurrent writers are safe.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="adv_pipeline_jax_")
    os.environ["ADV_PIPELINE_TEST_JAX_CACHE"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2**30))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from adv_pipeline.lerobot import (  # noqa: E402
    NewDataset,
    VideoOptions,
    feature_spec,
    video_feature_spec,
)

CAMERAS = ("top_head", "hand_left")
SIZE = 32


def synthetic_frame(seed: int, t: int, cam: int) -> np.ndarray:
    """A smooth, frame-dependent (SIZE, SIZE, 3) image: a bright square moving over a gradient."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    img[..., 0] = (x * 4 + 40 * cam) % 256
    img[..., 1] = (y * 4 + 3 * t) % 256
    img[..., 2] = 60 + 20 * seed
    p = (t * 2 + 5 * cam) % (SIZE - 8)
    img[p : p + 8, p : p + 8] = 250
    return img


@dataclass(frozen=True)
class SyntheticEpisode:
    seed: int
    length: int
    task: str = "do the thing"

    @property
    def columns(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        t = np.arange(self.length)
        return {
            "observation.state": rng.normal(size=(self.length, 3)).astype(np.float32),
            "action": rng.normal(size=(self.length, 3)).astype(np.float32),
            "stage_progress_gt": (t / max(self.length - 1, 1)).astype(np.float32),
        }

    def iter_frames(self):
        for t in range(self.length):
            yield {cam: synthetic_frame(self.seed, t, i) for i, cam in enumerate(CAMERAS)}


def make_episode(seed: int, length: int) -> SyntheticEpisode:
    return SyntheticEpisode(seed, length)


def synthetic_plan(lengths=(40, 25, 33), workers: int = 1) -> NewDataset:
    probe = SyntheticEpisode(0, 2)
    features = {k: feature_spec(v) for k, v in probe.columns.items()}
    opts = VideoOptions(crf=10, gop=10)
    for cam in CAMERAS:
        features[f"observation.images.{cam}"] = video_feature_spec(SIZE, SIZE, 30, opts)
    return NewDataset(
        fps=30,
        features=features,
        episodes=[partial(make_episode, i, n) for i, n in enumerate(lengths)],
        video=opts,
        workers=workers,
    )


@pytest.fixture
def tiny_dataset(tmp_path: Path):
    """A freshly written 3-episode dataset (2 cameras, 32x32) in a temporary folder."""
    return synthetic_plan().write(tmp_path / "tiny")


# ---------------------------------------------------------------------------- Kedro runs
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def doctor_failures(dataset_dir: Path) -> list[str]:
    """FAIL messages of ``lerobot-doctor check`` on a dataset directory."""
    assert (Path(dataset_dir) / "meta/info.json").is_file(), f"{dataset_dir}: no dataset there"
    out = subprocess.run(
        [str(BIN / "lerobot-doctor"), "check", str(dataset_dir), "--json"],
        capture_output=True,
        text=True,
    )
    report = json.loads(out.stdout)
    return [
        f"{c['name']}: {m['message']}"
        for c in report["checks"]
        for m in c["messages"]
        if m["severity"] == "FAIL"
    ]


def project_copy(proj: Path) -> Path:
    """A throw-away copy of the project's configuration at ``proj`` (the package itself
    is installed), where a real ``kedro run`` writes its data/ and mlflow.db."""
    proj.mkdir(parents=True)
    for name in ("conf", "pyproject.toml", ".telemetry"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, proj / name)
    (proj / "src").mkdir()
    (proj / "conf" / "local").mkdir(exist_ok=True)
    return proj


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    """A copy of the project (:func:`project_copy`) under tmp_path, not the repo."""
    return project_copy(tmp_path / "project")


def run_kedro(
    project: Path, *args: str, timeout: int = 900, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the ``kedro`` CLI in ``project`` (with ``env`` added to the environment); fail
    the test with its output if it fails (unless ``check`` is false)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg", **(env or {})}
    proc = subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"kedro {' '.join(args)} failed "
            f"({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


# ---------------------------------------------------------------------------- column-only datasets
@dataclass(frozen=True)
class ColumnEpisode:
    """An episode given by its columns only (no cameras)."""

    columns: dict
    task: str = "do the thing"

    @property
    def length(self) -> int:
        return len(next(iter(self.columns.values())))

    def iter_frames(self):
        return iter([{}] * self.length)


def _column_episode(columns: dict) -> ColumnEpisode:
    return ColumnEpisode(columns)


def write_column_dataset(root: Path, episodes: list[dict[str, np.ndarray]]):
    """Write a video-less LeRobot dataset whose episodes have exactly these columns."""
    features = {k: feature_spec(v) for k, v in episodes[0].items()} if episodes else {}
    plan = NewDataset(
        fps=30, features=features, episodes=[partial(_column_episode, e) for e in episodes]
    )
    return plan.write(root)


def stage0_labelled(session_run, raw: Path, project: Path) -> Path:
    """Stage 0 (two annotated stages) of the robot-shaped dataset ``raw`` by a real
    ``gt_labeling`` run of ``project``; returns the labelled dataset's path."""
    labeled = project / "labeled"
    session_run(
        "gt_labeling",
        raw_dataset_path=str(raw),
        gt_labeled_dataset_path=str(labeled),
        gt_labeling={"stage_nums": 2},
    )
    return labeled


def mlflow_runs(project: Path) -> list:
    """The MLflow runs a Kedro run of ``project`` recorded (none if there is no database)."""
    import mlflow

    db = project / "mlflow.db"
    if not db.is_file():
        return []
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def use_project(project: Path, monkeypatch, envs: tuple[str, ...] = ()) -> None:
    """Make ``project`` the one that Kedro sessions of this process run (its MLflow
    database, for conf/local and each environment of ``envs``)."""
    from kedro.framework.startup import bootstrap_project

    monkeypatch.chdir(project)
    uri = f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # an absolute URI: MLflow caches its store by URI, so the relative default of an
    # earlier test's session in this process would receive this project's runs
    server = yaml.safe_load((project / "conf/base/mlflow.yml").read_text())["server"]
    mlflow_yml = yaml.safe_dump({"server": {**server, "mlflow_tracking_uri": uri}})
    for env in ("local", *envs):  # an environment replaces conf/local
        (project / "conf" / env / "mlflow.yml").write_text(mlflow_yml)
    bootstrap_project(project)


@pytest.fixture
def session_run(kedro_project, monkeypatch):
    """``session_run(pipeline, env=None, **runtime_params)``: a real ``kedro run --env env``
    of the project copy, in this process (seconds faster than the CLI; the CLI is tested
    elsewhere)."""
    import mlflow
    from kedro.framework.session import KedroSession

    use_project(kedro_project, monkeypatch)

    def run(pipeline: str, env: str | None = None, **params):
        use_project(kedro_project, monkeypatch, (env,) if env else ())
        try:
            with KedroSession.create(
                project_path=kedro_project, env=env, runtime_params=params
            ) as session:
                return session.run(pipeline_names=[pipeline])
        finally:  # as a new process would start: no MLflow run left open
            while mlflow.active_run():
                mlflow.end_run()

    return run


@pytest.fixture(scope="session")
def robot_source(tmp_path_factory) -> Path:
    """A robot-shaped, annotated dataset (4 episodes, 3 AV1 cameras, 14-D state/action)."""
    from .robot_fixtures import robot_dataset

    return robot_dataset(tmp_path_factory.mktemp("robot") / "source").root


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's JAX cache goes with the process that made it (xdist's controller)."""
    made = os.environ.get("ADV_PIPELINE_TEST_JAX_CACHE")
    if made and not hasattr(config, "workerinput"):
        shutil.rmtree(made, ignore_errors=True)
