"""`kedro run --pipelines gt_labeling` on demo data: the seed's one-line usage, a valid
labelled dataset with the right positive fraction per stage, the statistics-only run,
and nothing written on bad input."""

from __future__ import annotations

import json
import subprocess

import mlflow
import numpy as np
import pytest

from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import BIN, doctor_failures, run_kedro

TASK = "hand over the block and place it in the goal"


@pytest.mark.slow
def test_gt_labeling_on_demo_data(kedro_project, tmp_path):
    raw = tmp_path / "raw"
    out = tmp_path / "labeled"
    run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "demo",
        "--params",
        f"demo.n_episodes=6,raw_dataset_path={raw}",
    )
    before = {p: p.stat().st_mtime_ns for p in raw.rglob("*") if p.is_file()}

    # the seed's example, as one line
    run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "gt_labeling",
        "--params",
        f"raw_dataset_path={raw},gt_labeled_dataset_path={out},gt_labeling.threshold=30,gt_labeling.chunk_size=50,"
        "gt_labeling.discretization=binary,gt_labeling.advantage_source=progress,gt_labeling.stage_nums=2",
    )
    assert doctor_failures(out) == []
    ds = LeRobotDatasetReader(out)
    assert ds.tasks == [f"{TASK}, Advantage: negative", f"{TASK}, Advantage: positive"]
    stats = json.loads((kedro_project / "data/08_reporting/gt_label_stats.json").read_text())
    labels = ds.read_columns(["task_index", "stage_progress_gt", "intervention"])
    stage = np.minimum((labels["stage_progress_gt"] / 0.5).astype(int), 1)
    for s in (0, 1):
        entry = stats["stages"][s]
        assert entry["frames"] == int((stage == s).sum())
        assert entry["unforced_positive_fraction"] == pytest.approx(0.30, abs=0.02)  # ties only
        # forcing adds the intervention frames that were below the threshold
        assert entry["positive_fraction"] >= entry["unforced_positive_fraction"]
        assert entry["positive_fraction"] == pytest.approx(
            float((labels["task_index"][stage == s] == 1).mean())
        )
    assert (labels["task_index"][labels["intervention"] == 1] == 1).all()
    # episodes.jsonl lists the prompts each episode uses
    rows = [json.loads(line) for line in (out / "meta/episodes.jsonl").read_text().splitlines()]
    for row, lo, hi in zip(rows, ds.offsets[:-1], ds.offsets[1:]):
        used = sorted(set(labels["task_index"][lo:hi].tolist()))
        assert row["tasks"] == [ds.tasks[i] for i in used]
    # the input is untouched
    assert {p: p.stat().st_mtime_ns for p in raw.rglob("*") if p.is_file()} == before

    # MLflow: parameters, per-stage metrics, the histogram
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    demo_run, run = mlflow.search_runs(
        experiment_names=["adv_pipeline"], output_format="list", order_by=["start_time ASC"]
    )
    assert demo_run.info.run_name.startswith("demo demo.n_episodes=")
    # named after what ran: the pipeline and the parameters given on the command line
    assert run.info.run_name.startswith(
        "gt_labeling raw_dataset_path=raw gt_labeled_dataset_path=labeled gt_labeling.threshold=30 "
    )
    assert run.data.params["gt_labeling.threshold"] == "30"
    assert run.data.params["input.raw_dataset.path"] == str(raw.resolve())
    assert run.data.tags["statistics_only"] == "false"
    assert "gt_label_metrics.stages.1.threshold" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"gt_label_histogram.png", "gt_label_stats.json"} <= artifacts

    # statistics only (the seed's --dry-run): no dataset written
    dry = tmp_path / "dry"
    run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "gt_labeling",
        "--to-outputs",
        "gt_label_stats",
        "--params",
        f"raw_dataset_path={raw},gt_labeled_dataset_path={dry},gt_labeling.discretization=n_slices",
    )
    assert not dry.exists()
    dry_run = mlflow.search_runs(
        experiment_names=["adv_pipeline"], output_format="list", order_by=["start_time DESC"]
    )[0]
    assert dry_run.data.tags["statistics_only"] == "true"
    stats = json.loads((kedro_project / "data/08_reporting/gt_label_stats.json").read_text())
    assert len(stats["stages"][0]["boundaries"]) == 10

    # bad input: a clear error before anything is written
    bad = tmp_path / "bad"
    proc = subprocess.run(
        [
            str(BIN / "kedro"),
            "run",
            "--pipelines",
            "gt_labeling",
            "--params",
            f"raw_dataset_path={raw},gt_labeled_dataset_path={bad},gt_labeling.advantage_source=absolute_advantage",
        ],
        cwd=kedro_project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "no column absolute_advantage" in " ".join((proc.stdout + proc.stderr).split())
    assert not bad.exists()


@pytest.mark.parametrize("scope", ["stage", "task_stage"])
def test_each_episode_keeps_its_own_task_on_a_multi_task_robot_dataset(
    scope, robot_source, session_run, kedro_project, tmp_path
):
    """The default `kedro run --pipelines gt_labeling` on a two-task, raw, robot-shaped
    dataset: every frame's prompt is its episode's task with its label, lerobot-doctor
    passes the output, and with task_stage each task has its own thresholds."""
    from adv_pipeline.schema import split_task_index

    from ..robot_fixtures import TASKS

    out = tmp_path / "labeled"
    params = {"gt_labeling": {"threshold_scope": scope, "stage_nums": 2}}
    session_run(
        "gt_labeling",
        raw_dataset_path=str(robot_source),
        gt_labeled_dataset_path=str(out),
        **params,
    )
    assert doctor_failures(out) == []
    src, ds = LeRobotDatasetReader(robot_source), LeRobotDatasetReader(out)
    assert ds.tasks == [
        f"{t}, Advantage: {label}" for t in TASKS for label in ("negative", "positive")
    ]
    source_task = np.array(src.tasks)[src.read_columns(["task_index"])["task_index"]]
    task_index = ds.read_columns(["task_index"])["task_index"]
    task, label = split_task_index(task_index, 2)
    np.testing.assert_array_equal(np.array(TASKS)[task], source_task)  # every frame: its own task
    prompts = np.array(ds.tasks)[task_index]
    assert all(
        p == f"{t}, Advantage: {'positive' if lab else 'negative'}"
        for p, t, lab in zip(prompts, source_task, label)
    )
    for ep in ds.episodes:  # episodes.jsonl lists the prompts of the episode's own task
        assert {t.split(", Advantage")[0] for t in ep.tasks} == {TASKS[ep.episode_index % 2]}
    stats = json.loads((kedro_project / "data/08_reporting/gt_label_stats.json").read_text())
    assert (
        stats["tasks"] == list(TASKS)
        and stats["task_index_layout"] == "task_index = task * 2 + label"
    )
    groups = stats["stages"]
    assert len(groups) == (4 if scope == "task_stage" else 2)
    if scope == "task_stage":  # top 70% of each task's frames of each stage
        assert {g["task"] for g in groups} == set(TASKS)
        for g in groups:
            assert g["unforced_positive_fraction"] == pytest.approx(0.7, abs=0.1)
