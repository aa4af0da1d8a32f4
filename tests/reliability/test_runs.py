"""Checkpoints are never lost: each training is a new run, resume refuses changed data or
settings (saying what changed), a failed run deletes nothing, and a second concurrent run
on one output fails at once naming the first; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from adv_pipeline.checkpoints import RunError, list_runs, list_steps
from adv_pipeline.errors import InputError
from adv_pipeline.outputs import OutputLockedError, output_lock

from .conftest import copy_dataset, debris, tree_digest
from .test_bad_inputs import nan_state

TINY = {
    "estimator": {
        "train": {"steps": 3, "batch_size": 4, "save_interval": 3, "eval_interval": 3},
        "data": {"samples_per_episode": 8, "image_size": [32, 32], "num_workers": 0},
    }
}


def test_training_twice_keeps_the_first_run_and_a_failed_run_deletes_nothing(
    robot_source, session_run, tmp_path
):
    runs = tmp_path / "runs"
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        **TINY,
    )
    (first,) = list_runs(runs)
    before = tree_digest(runs)
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        **TINY,
    )
    assert len(list_runs(runs)) == 2 and list_runs(runs)[0] == first
    # the first run's own files (a second run started in the same second is named "<first>-2")
    mine = lambda k: k == first.name or k.startswith(first.name + "/")  # noqa: E731
    assert {k: v for k, v in tree_digest(runs).items() if mine(k)} == {
        k: v for k, v in before.items() if mine(k)
    }
    # a run on bad data fails before touching the folder of runs
    after_two = tree_digest(runs)
    bad = copy_dataset(robot_source, tmp_path / "bad")
    nan_state(bad)
    with pytest.raises(ValueError, match="NaN/inf"):
        session_run(
            "estimator", gt_labeled_dataset_path=str(bad), estimator_runs_path=str(runs), **TINY
        )
    assert tree_digest(runs) == after_two and debris(tmp_path) == []


def test_resume_refuses_other_data_or_settings_and_says_what_changed(
    robot_source, session_run, tmp_path
):
    runs = tmp_path / "runs"
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        **TINY,
    )
    before = tree_digest(runs)
    other = copy_dataset(robot_source, tmp_path / "other")
    nan_free_shift = other / "meta/episodes_stats.jsonl"  # other content: the stats differ
    nan_free_shift.write_text(nan_free_shift.read_text().replace('"count": [36]', '"count": [36] '))
    resume = {
        "estimator": {
            **TINY["estimator"],
            "train": {**TINY["estimator"]["train"], "resume": True, "steps": 6},
        }
    }
    with pytest.raises(
        ValueError,
        match=r"cannot resume this run, it trained on other data or with another config: "
        r"dataset_fingerprint: \w+ -> \w+",
    ):
        session_run(
            "estimator", gt_labeled_dataset_path=str(other), estimator_runs_path=str(runs), **resume
        )
    changed = {
        "estimator": {**resume["estimator"], "train": {**resume["estimator"]["train"], "lr": 0.002}}
    }
    with pytest.raises(ValueError, match=r"config.train.lr: 0.001 -> 0.002"):
        session_run(
            "estimator",
            gt_labeled_dataset_path=str(robot_source),
            estimator_runs_path=str(runs),
            **changed,
        )
    assert tree_digest(runs) == before
    # the same data and settings continue the run (more steps are allowed)
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        **resume,
    )
    (run,) = list_runs(runs)
    assert list_steps(run) == [3, 6]


def test_a_named_run_is_replaced_only_with_overwrite(robot_source, session_run, tmp_path):
    runs = tmp_path / "runs"
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        estimator_run="seed0",
        **TINY,
    )
    before = tree_digest(runs)
    with pytest.raises(
        RunError, match=r"seed0: this run already exists and is never replaced implicitly"
    ):
        session_run(
            "estimator",
            gt_labeled_dataset_path=str(robot_source),
            estimator_runs_path=str(runs),
            estimator_run="seed0",
            **TINY,
        )
    assert tree_digest(runs) == before
    session_run(
        "estimator",
        gt_labeled_dataset_path=str(robot_source),
        estimator_runs_path=str(runs),
        estimator_run="seed0",
        overwrite=True,
        **TINY,
    )
    assert [p.name for p in list_runs(runs)] == ["seed0"] and list_steps(runs / "seed0") == [3]


def test_policy_settings_change_starts_a_new_run_and_keeps_the_old(tmp_path):
    """The AWBC trainer's default ``resume: auto``: another lr is a new run, never a deletion."""
    from adv_pipeline.checkpoints import Runs
    from adv_pipeline.policy.train import train_policy_run

    from ..policy.conftest import tiny_policy_config, tiny_train_config
    from ..robot_fixtures import robot_dataset

    ds = robot_dataset(tmp_path / "ds", annotated=False)
    config = tiny_policy_config(prompt_from_task=False)
    runs = Runs(tmp_path / "runs")
    first = train_policy_run(ds, config, tiny_train_config(steps=3, resume="auto"), runs)
    before = tree_digest(first.checkpoint.run_dir)
    again = train_policy_run(ds, config, tiny_train_config(steps=3, resume="auto"), runs)
    assert (
        again.checkpoint.run_dir == first.checkpoint.run_dir and again.start_step == 3
    )  # finished: reused
    other = train_policy_run(ds, config, tiny_train_config(steps=3, lr=2e-3, resume="auto"), runs)
    assert other.checkpoint.run_dir != first.checkpoint.run_dir
    assert tree_digest(first.checkpoint.run_dir) == before
    with pytest.raises(ValueError, match=r"train_config.lr: 0.002 -> 0.004"):
        train_policy_run(ds, config, tiny_train_config(steps=3, lr=4e-3, resume=True), runs)


HOLD = """
import sys, time
from adv_pipeline.outputs import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_fails_at_once_and_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with pytest.raises(
            OutputLockedError,
            match=rf"out: another run is writing this output: process {holder.pid} on \w+ "
            rf"\(started \d{{4}}-\d\d-\d\d",
        ):
            with output_lock(out):
                pass
        assert time.perf_counter() - t0 < 1.0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with caplog.at_level(logging.WARNING), output_lock(out):
        assert (tmp_path / ".out.lock").is_file()
    assert f"taking over the lock of process {holder.pid}" in caplog.text
    assert not (tmp_path / ".out.lock").exists()


def test_the_lock_files_of_killed_runs_go_at_the_next_run_of_any_pipeline(
    session_run, kedro_project
):
    """A run killed while writing the demo dataset leaves its lock file; the next run, of
    another pipeline, removes it (nobody holds it), and leaves a held lock alone."""
    raw = kedro_project / "data/01_raw/demo"
    held = kedro_project / "data/08_reporting/gt_label_stats.json"
    killed = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(raw)], stdout=subprocess.PIPE, text=True
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(held)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert killed.stdout.readline().strip() == "locked"
        assert holder.stdout.readline().strip() == "locked"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert (raw.parent / ".demo.lock").is_file()
        with pytest.raises(InputError, match="no closed-loop table"):  # after the hooks ran
            session_run("seeds")
        assert not (raw.parent / ".demo.lock").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (held.parent / ".gt_label_stats.json.lock").is_file()


def test_a_run_does_not_wait_for_another_runs_reports(robot_source, session_run, kedro_project):
    """Two runs that write different datasets write the same report paths: the one that
    finds the reports being written by the other (its lock held) still finishes."""
    report = kedro_project / "data/08_reporting/gt_label_stats.json"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(report)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "locked"
        out = kedro_project / "data/labeled_b"
        session_run(
            "gt_labeling", raw_dataset_path=str(robot_source), gt_labeled_dataset_path=str(out)
        )
    finally:
        os.kill(other.pid, signal.SIGKILL)
        other.wait()
    assert (out / "meta/info.json").is_file() and json.loads(report.read_text())


def test_two_concurrent_kedro_runs_on_one_output(
    robot_source, session_run, kedro_project, tmp_path
):
    runs = tmp_path / "runs"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    long_run = {"estimator.train.steps": 100000, "estimator.train.save_interval": 100000}
    params = ",".join(
        [
            f"gt_labeled_dataset_path={robot_source}",
            f"estimator_runs_path={runs}",
            *(f"{k}={v}" for k, v in long_run.items()),
        ]
    )
    first = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "kedro"),
            "run",
            "--pipelines",
            "estimator",
            "--params",
            params,
        ],
        cwd=kedro_project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not list_runs(runs) and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert list_runs(runs), (
            first.stderr.read()
            if first.poll() is not None
            else "the first run never started training"
        )
        t0 = time.perf_counter()
        with pytest.raises(
            OutputLockedError,
            match=rf"runs: another run is writing this output: process {first.pid} ",
        ):
            session_run(
                "estimator",
                gt_labeled_dataset_path=str(robot_source),
                estimator_runs_path=str(runs),
                **TINY,
            )
        assert time.perf_counter() - t0 < 10
    finally:
        first.kill()
        first.wait()
    assert len(list_runs(runs)) == 1  # the second run created nothing
