"""Crash-clean: each stage, SIGKILLed (``ADV_PIPELINE_FAILPOINT``) mid-episode,
mid-checkpoint or mid-finalize and then rerun, ends with outputs identical to an
uninterrupted run, no temporary debris, and no process of the killed run alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from adv_pipeline.checkpoints import list_runs, load_checkpoint
from adv_pipeline.crash import FAILPOINT_ENV
from adv_pipeline.lerobot import LeRobotDatasetReader

from .conftest import debris

KEDRO = str(Path(sys.executable).parent / "kedro")
TAG_ENV = "ADV_PIPELINE_TEST_TAG"
META = (
    "meta/info.json",
    "meta/episodes.jsonl",
    "meta/tasks.jsonl",
    "meta/episodes_stats.jsonl",
    "meta/stats.json",
)


def kedro(
    project: Path, args: list[str], params: dict, failpoint: str | None = None
) -> tuple[subprocess.CompletedProcess, str]:
    """``kedro run`` in a subprocess; returns it and the tag its processes carry."""
    tag = uuid.uuid4().hex
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
        TAG_ENV: tag,
        "SVT_LOG": "0",
    }
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    cmd = [KEDRO, "run", *args, "--params", ",".join(f"{k}={v}" for k, v in params.items())]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    if failpoint:
        assert proc.returncode == -signal.SIGKILL, (
            f"the failpoint {failpoint} was not reached:\n{proc.stderr[-3000:]}"
        )
    else:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, tag


def alive(tag: str) -> list[int]:
    """Processes carrying ``tag`` in their environment (the killed run and its children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if f"{TAG_ENV}={tag}".encode() in Path(f"/proc/{entry}/environ").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def assert_clean_kill(tag: str, root: Path) -> None:
    deadline = time.time() + 10
    while alive(tag) and time.time() < deadline:
        time.sleep(0.1)
    assert alive(tag) == [], "processes of the killed run are still alive"


def same_dataset(a: Path, b: Path) -> None:
    """Same tables and metadata (whose video stats come from the frames before encoding;
    x264 in worker processes is not bit-reproducible, so the MP4 bytes are not compared)
    and both pass the reader's full check (every video present, long enough)."""
    da, db = LeRobotDatasetReader(a), LeRobotDatasetReader(b)
    for e in da.episode_indices:
        assert pq.read_table(da.data_path(e)).equals(pq.read_table(db.data_path(e))), e
    for rel in META:
        assert (a / rel).read_text() == (b / rel).read_text(), rel


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a).load_weights(), load_checkpoint(b).load_weights()
    assert load_checkpoint(a).step == load_checkpoint(b).step and wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


DEMO = {"demo.n_episodes": 4, "demo.image_size": 32, "demo.workers": 2}
DATASET_POINTS = ["dataset.episode:2", "dataset.finalize"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """One project copy for the module's CLI runs (each run writes under its own paths)."""
    import shutil

    from ..conftest import REPO

    proj = tmp_path_factory.mktemp("crash") / "project"
    proj.mkdir()
    for name in ("conf", "pyproject.toml", ".telemetry"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, proj / name)
    (proj / "src").mkdir()
    (proj / "conf" / "local").mkdir(exist_ok=True)
    return proj


@pytest.fixture(scope="module")
def demo_ref(project, tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("demo_ref") / "demo"
    kedro(project, ["--pipelines", "demo"], {**DEMO, "raw_dataset_path": ref})
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", DATASET_POINTS)
def test_demo_killed_mid_episode_or_mid_finalize_then_rerun(failpoint, demo_ref, project, tmp_path):
    out = tmp_path / "demo"
    _, tag = kedro(project, ["--pipelines", "demo"], {**DEMO, "raw_dataset_path": out}, failpoint)
    assert_clean_kill(tag, tmp_path)  # the episode-encoding worker processes died too
    assert not (out / "meta/info.json").exists()
    kedro(project, ["--pipelines", "demo"], {**DEMO, "raw_dataset_path": out})
    same_dataset(demo_ref, out)
    assert debris(tmp_path) == [] and debris(project / "data") == []


STAGE0 = {"gt_labeling.stage_nums": 2}


@pytest.fixture(scope="module")
def stage0_ref(project, robot_source, tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("stage0_ref") / "labeled"
    kedro(
        project,
        ["--pipelines", "gt_labeling"],
        {**STAGE0, "raw_dataset_path": robot_source, "gt_labeled_dataset_path": ref},
    )
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", DATASET_POINTS)
def test_stage0_killed_mid_episode_or_mid_finalize_then_rerun(
    failpoint, stage0_ref, robot_source, project, tmp_path
):
    params = {
        **STAGE0,
        "raw_dataset_path": robot_source,
        "gt_labeled_dataset_path": tmp_path / "labeled",
    }
    _, tag = kedro(project, ["--pipelines", "gt_labeling"], params, failpoint)
    assert_clean_kill(tag, tmp_path)
    assert not (tmp_path / "labeled").exists()
    kedro(project, ["--pipelines", "gt_labeling"], params)
    same_dataset(stage0_ref, tmp_path / "labeled")
    assert debris(tmp_path) == [] and debris(project / "data") == []


ESTIMATOR = {
    "estimator.train.steps": 6,
    "estimator.train.save_interval": 3,
    "estimator.train.eval_interval": 3,
    "estimator.train.batch_size": 4,
    "estimator.data.samples_per_episode": 8,
}


@pytest.fixture(scope="module")
def estimator_ref(project, robot_source, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("estimator_ref") / "runs"
    kedro(
        project,
        ["--pipelines", "estimator"],
        {**ESTIMATOR, "gt_labeled_dataset_path": robot_source, "estimator_runs_path": runs},
    )
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["estimator.step:2", "checkpoint.write:2"])
def test_estimator_killed_mid_training_or_mid_checkpoint_then_resumed(
    failpoint, estimator_ref, robot_source, project, tmp_path
):
    params = {
        **ESTIMATOR,
        "gt_labeled_dataset_path": robot_source,
        "estimator_runs_path": tmp_path / "runs",
    }
    _, tag = kedro(project, ["--pipelines", "estimator"], params, failpoint)
    assert_clean_kill(tag, tmp_path)  # the loader's worker process died with its parent
    kedro(project, ["--pipelines", "estimator"], {**params, "estimator.train.resume": "true"})
    (run,) = list_runs(tmp_path / "runs")  # the killed run, continued
    same_weights(estimator_ref, run)
    assert debris(tmp_path) == [] and debris(project / "data") == []


ESTIMATION_ARGS = ["--pipelines", "estimation", "--nodes", "estimate_advantages"]


@pytest.fixture(scope="module")
def estimation_ref(project, robot_source, robot_estimator, tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("estimation_ref") / "estimated"
    kedro(
        project,
        ESTIMATION_ARGS,
        {
            "target_dataset_path": robot_source,
            "estimator_runs_path": robot_estimator,
            "estimated_dataset_path": ref,
        },
    )
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["estimation.episode:2", "estimation.finalize"])
def test_estimation_killed_mid_episode_or_mid_finalize_then_rerun(
    failpoint, estimation_ref, robot_source, robot_estimator, project, tmp_path
):
    params = {
        "target_dataset_path": robot_source,
        "estimator_runs_path": robot_estimator,
        "estimated_dataset_path": tmp_path / "out",
    }
    _, tag = kedro(project, ESTIMATION_ARGS, params, failpoint)
    assert_clean_kill(tag, tmp_path)
    assert not (tmp_path / "out").exists()  # a half dataset is never visible at the output path
    kedro(project, ESTIMATION_ARGS, params)
    same_dataset(estimation_ref, tmp_path / "out")
    assert debris(tmp_path) == [] and debris(project / "data") == []


@pytest.mark.slow
def test_policy_killed_mid_checkpoint_then_resumed(robot_source, project, tmp_path):
    awbc = {
        "awbc_dataset_path": robot_source,
        "awbc.data.cameras": "[]",
        "awbc.data.state_key": "observation.state",
        "awbc.data.horizon": 4,
        "awbc.data.prompt_from_task": "false",
        "awbc.model.width": 32,
        "awbc.model.depth": 1,
        "awbc.train.steps": 4,
        "awbc.train.batch_size": 8,
        "awbc.train.save_interval": 2,
        "awbc.train.log_interval": 2,
    }
    args = ["--pipelines", "awbc", "--nodes", "train_awbc_policy"]
    kedro(project, args, {**awbc, "awbc_runs_path": tmp_path / "ref"})
    _, tag = kedro(
        project, args, {**awbc, "awbc_runs_path": tmp_path / "runs"}, "checkpoint.write:2"
    )
    assert_clean_kill(tag, tmp_path)
    kedro(project, args, {**awbc, "awbc_runs_path": tmp_path / "runs"})  # resume: auto
    (run,) = list_runs(tmp_path / "runs")
    same_weights(tmp_path / "ref", run)
    assert debris(tmp_path) == [] and debris(project / "data") == []
