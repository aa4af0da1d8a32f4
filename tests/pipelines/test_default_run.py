"""The default `kedro run` (demo -> gt_labeling -> estimator -> estimation -> AWBC labels ->
awbc -> evaluation) end to end at toy sizes, one MLflow run holding every stage, and the
walkthrough notebook executed top to bottom on its outputs."""

from __future__ import annotations

import json

import mlflow
import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from adv_pipeline.checkpoints import list_runs, list_steps
from adv_pipeline.estimation import roc_auc
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import REPO, doctor_failures


@pytest.mark.xdist_group("default_run")  # one worker runs the shared toy run once
@pytest.mark.slow
def test_default_run_end_to_end_and_notebook(default_run):
    kedro_project = default_run  # `kedro run --params TOY` in a copy of the project
    data = kedro_project / "data"
    # every stage wrote its output
    for path in (
        "01_raw/demo",
        "03_primary/gt_labeled",
        "07_model_output/estimated_KAI0_12",
        "05_model_input/awbc",
    ):
        assert doctor_failures(data / path) == [], path
    awbc = LeRobotDatasetReader(data / "05_model_input/awbc")
    assert awbc.tasks[-1].endswith(", Advantage: positive")
    assert {"absolute_advantage", "absolute_value", "relative_advantage"} <= set(
        awbc.column_names()
    )
    for model in ("estimator", "awbc", "bc"):  # one run each, <runs>/<run>/<step>/
        (run,) = list_runs(data / "06_models" / model)
        assert list_steps(run)[-1] == 12 and (run / "12/model.safetensors").is_file(), model
    table = pd.read_csv(data / "08_reporting/awbc_eval.csv")
    assert len(table) == 5 and table["condition"].iloc[-1] == "expert"
    report = json.loads((data / "08_reporting/estimation_report.json").read_text())
    assert report["estimation"]["frames_computed"] == awbc.num_frames
    # the headline AUCs are what the written datasets say: Stage 2's advantages scored
    # against Stage 0's labels (both KAI0 advantages)
    vs_gt = report["all_episodes"]["vs_stage0_labels"]
    positive = (
        LeRobotDatasetReader(data / "03_primary/gt_labeled").read_columns(["task_index"])[
            "task_index"
        ]
        == 1
    )
    cols = awbc.read_columns(["absolute_advantage", "relative_advantage"])
    assert vs_gt["roc_auc"] == pytest.approx(
        roc_auc(cols["absolute_advantage"], positive), abs=1e-12
    )
    assert vs_gt["roc_auc_relative_advantage"] == pytest.approx(
        roc_auc(cols["relative_advantage"], positive), abs=1e-12
    )

    # one MLflow run with every stage's parameters, metrics and plots
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["adv_pipeline"], output_format="list")
    assert len(runs) == 1
    params, metrics = runs[0].data.params, runs[0].data.metrics
    for key in (
        "demo.n_episodes",
        "gt_labeling.threshold",
        "estimator.model.variant",
        "estimation.interval",
        "awbc_labeling.threshold",
        "awbc.train.steps",
    ):
        assert key in params, key
    for prefix in (
        "demo_metrics.",
        "gt_label_metrics.",
        "estimator_metrics.val_spearman",
        "estimation_metrics.",
        "awbc_label_metrics.",
        "awbc_eval_metrics.",
        "awbc_train_metrics.loss",
    ):
        assert any(m.startswith(prefix) for m in metrics), prefix
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    assert {
        "gt_label_histogram.png",
        "estimator_progress.png",
        "estimation_advantage.png",
        "awbc_eval.png",
    } <= artifacts

    # the walkthrough runs top to bottom on these outputs
    nb = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(kedro_project)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
