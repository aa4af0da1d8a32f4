"""An output path never destroys what sits there unless this project wrote it: the input's
parent, an unrelated folder, a file, a path inside the input and the input itself are
refused before any work, and every tree is byte-identical afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from adv_pipeline.lerobot import DerivedDataset, LeRobotDatasetReader
from adv_pipeline.outputs import OutputError, read_marker

from ..conftest import mlflow_runs
from .conftest import copy_dataset, debris, tree_digest


@pytest.fixture
def world(tmp_path, robot_source):
    """A user's disk: the dataset beside a file, an unrelated folder, a lone file."""
    data = tmp_path / "data"
    src = copy_dataset(robot_source, data / "cloth")
    (data / "README.txt").write_text("my recordings\n")
    (tmp_path / "thesis" / "sub").mkdir(parents=True)
    (tmp_path / "thesis" / "notes.txt").write_text("notes\n")
    (tmp_path / "thesis" / "sub" / "thesis.tex").write_text("\\documentclass{article}\n")
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 ...")
    return src


def _everything(tmp_path):
    return {name: tree_digest(tmp_path / name) for name in ("data", "thesis", "report.pdf")}


OUTPUTS = {
    "the input's parent": (
        lambda t, src: src.parent,
        r"data: the output gt_labeled_dataset is containing the input raw_dataset",
    ),
    "an unrelated folder": (
        lambda t, src: t / "thesis",
        r"thesis: already holds a folder with 2 entries that adv_pipeline did not write as a "
        r"LeRobot dataset",
    ),
    "a file": (
        lambda t, src: t / "report.pdf",
        r"report.pdf: already holds a file of 12 bytes that adv_pipeline did not write",
    ),
    "a path inside the input": (
        lambda t, src: src / "labeled",
        r"labeled: the output gt_labeled_dataset is inside the input raw_dataset",
    ),
    "the input itself": (
        lambda t, src: src,
        r"cloth: the output gt_labeled_dataset is equal to the input raw_dataset",
    ),
}


@pytest.mark.parametrize("where", list(OUTPUTS))
def test_output_path_is_refused_and_nothing_changes(
    where, world, tmp_path, session_run, kedro_project
):
    out, message = OUTPUTS[where]
    before = _everything(tmp_path)
    with pytest.raises(
        OutputError,
        match=message
        + r".*Fix: choose another output path \(--params \"gt_labeled_dataset_path=<new path>\"\)",
    ):
        session_run(
            "gt_labeling",
            raw_dataset_path=str(world),
            gt_labeled_dataset_path=str(out(tmp_path, world)),
        )
    assert _everything(tmp_path) == before
    assert mlflow_runs(kedro_project) == [] and debris(tmp_path) == []


def test_overwrite_replaces_foreign_content_but_never_an_input(world, tmp_path, session_run):
    with pytest.raises(OutputError, match="containing the input raw_dataset"):
        session_run(
            "gt_labeling",
            raw_dataset_path=str(world),
            gt_labeled_dataset_path=str(world.parent),
            overwrite=True,
        )
    session_run(
        "gt_labeling",
        raw_dataset_path=str(world),
        gt_labeled_dataset_path=str(tmp_path / "thesis"),
        overwrite=True,
    )
    assert (
        LeRobotDatasetReader(tmp_path / "thesis").num_episodes == 4
        and not (tmp_path / "thesis" / "notes.txt").exists()
    )
    assert read_marker(tmp_path / "thesis")["kind"] == "lerobot_dataset"
    # the user's folder was set aside beside it, never deleted
    (kept,) = tmp_path.glob("thesis.not-written-by-adv_pipeline-*")
    assert (kept / "notes.txt").read_text() == "notes\n" and (kept / "sub/thesis.tex").is_file()
    # what the project wrote is replaced by a rerun without any flag
    session_run(
        "gt_labeling",
        raw_dataset_path=str(world),
        gt_labeled_dataset_path=str(tmp_path / "thesis"),
        **{"gt_labeling": {"threshold": 50}},
    )
    assert debris(tmp_path) == [] and len(list(tmp_path.glob("thesis.not-written*"))) == 1
    # ... but not once a user added a file to it: refused, naming the file
    (tmp_path / "thesis" / "NOTES.md").write_text("which episodes are bad\n")
    before = tree_digest(tmp_path / "thesis")
    with pytest.raises(
        OutputError,
        match=r"thesis: holds what adv_pipeline wrote there, and also NOTES.md, which it did not "
        r"write, so it is not replaced. Fix: move it out, .*overwrite=true",
    ):
        session_run(
            "gt_labeling",
            raw_dataset_path=str(world),
            gt_labeled_dataset_path=str(tmp_path / "thesis"),
        )
    assert tree_digest(tmp_path / "thesis") == before
    # with overwrite, the dataset and the note are set aside together
    session_run(
        "gt_labeling",
        raw_dataset_path=str(world),
        gt_labeled_dataset_path=str(tmp_path / "thesis"),
        overwrite=True,
    )
    assert not (tmp_path / "thesis" / "NOTES.md").exists()
    notes = list(tmp_path.glob("thesis.not-written-by-adv_pipeline-*/NOTES.md"))
    assert [n.read_text() for n in notes] == ["which episodes are bad\n"]


def test_runs_folder_and_reports_follow_the_same_rule(world, tmp_path, session_run, kedro_project):
    before = _everything(tmp_path)
    with pytest.raises(
        OutputError,
        match=r"thesis: already holds a folder with 2 entries that adv_pipeline did not write as "
        r"a folder of training runs.*estimator_runs_path=<new path>",
    ):
        session_run(
            "estimator",
            gt_labeled_dataset_path=str(world),
            estimator_runs_path=str(tmp_path / "thesis"),
        )
    report = kedro_project / "data/08_reporting/gt_label_stats.json"
    report.parent.mkdir(parents=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text('{"mine": true}')  # a file the project did not write, where a report goes
    with pytest.raises(
        OutputError,
        match=r"gt_label_stats.json: already holds a file of 14 bytes.*Fix: move that file away, "
        r"or pass --params \"overwrite=true\"",
    ):
        session_run(
            "gt_labeling",
            raw_dataset_path=str(world),
            gt_labeled_dataset_path=str(tmp_path / "labeled"),
        )
    assert report.read_text() == '{"mine": true}' and _everything(tmp_path) == before
    report.unlink()
    session_run(
        "gt_labeling",
        raw_dataset_path=str(world),
        gt_labeled_dataset_path=str(tmp_path / "labeled"),
    )
    assert "gt_label_stats.json" in read_marker(report.parent)["files"]
    session_run(
        "gt_labeling",
        raw_dataset_path=str(world),
        gt_labeled_dataset_path=str(tmp_path / "labeled"),
    )  # its own report: replaced


def test_writers_refuse_the_same_paths_without_kedro(world, tmp_path):
    ds = LeRobotDatasetReader(world)
    before = _everything(tmp_path)
    for out in (world.parent, tmp_path / "thesis", tmp_path / "report.pdf", world / "x", world):
        with pytest.raises(OutputError):
            DerivedDataset(ds, {"flag": np.zeros(ds.num_frames, np.int64)}).write(out)
    assert _everything(tmp_path) == before and debris(tmp_path) == []
