"""Step 0: annotation records -> progress columns; every bad record refused by name; the
demo's columns reproduced exactly from its boundary file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adv_pipeline.annotation import (
    AnnotationConfig,
    AnnotationError,
    AnnotationFile,
    EpisodeAnnotation,
    annotated_dataset,
    annotation_columns,
    read_annotations,
    resolve_annotations,
    write_annotations,
)
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import doctor_failures, run_kedro, write_column_dataset


def _frames(records, lengths, fps=30, **kwargs):
    frames, missing = resolve_annotations(
        records, dict(enumerate(lengths)), fps, "ann.jsonl", **kwargs
    )
    return [frames.get(i) for i in range(len(lengths))], missing


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_stage_progress_is_linear_inside_each_stage(stages):
    n = 60
    bounds = tuple(int(b) for b in np.linspace(5, 50, stages + 1)[1:-1])
    (frame,), _ = _frames([EpisodeAnnotation(0, 5, 50, bounds)], [n])
    cols = annotation_columns(np.array([n]), [frame])
    sp, stage = cols["stage_progress_gt"], cols["stage_index_gt"]
    edges = (5, *bounds, 51)
    for k in range(stages):
        lo, hi = edges[k], edges[k + 1]
        assert (stage[lo:hi] == k).all()
        expected = k / stages + (np.arange(hi - lo) / (hi - lo)) / stages
        np.testing.assert_array_equal(sp[lo:hi], expected.astype(np.float32))
    # clamped outside [start, end], and flagged
    assert (sp[:5] == 0).all() and (sp[51:] == 1).all()
    assert (cols["outside_annotation"] == np.r_[np.ones(5), np.zeros(46), np.ones(9)]).all()
    progress = cols["progress"]
    assert progress[5] == 0 and progress[50] == 1 and (np.diff(progress[5:51]) > 0).all()


def test_boundaries_in_seconds_are_rounded_to_frames():
    seconds = EpisodeAnnotation(0, 0.1, 1.5, (0.7,), unit="s")
    frames = EpisodeAnnotation(0, 3, 45, (21,))
    (a,), _ = _frames([seconds], [50])
    (b,), _ = _frames([frames], [50])
    assert a == b and a.edges == (3, 21, 46)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (EpisodeAnnotation(0, 0, 40, ()), "0 boundaries make 1 stages, but annotation.stage_nums"),
        (EpisodeAnnotation(0, 35, 40, (30,)), "not in increasing order"),
        (EpisodeAnnotation(0, 10, 40, (10,)), "not in increasing order"),
        (EpisodeAnnotation(0, 0, 60, (30,)), "outside the episode's frames 0..49"),
        (EpisodeAnnotation(0, -1, 40, (30,)), "outside the episode's frames 0..49"),
        (EpisodeAnnotation(7, 0, 40, (30,)), "episode 7: the dataset has no such episode"),
    ],
)
def test_bad_records_are_refused_naming_the_episode_and_the_fix(record, expected):
    with pytest.raises(AnnotationError, match="Fix:") as err:
        _frames([record, EpisodeAnnotation(1, 0, 10, (5,))], [50, 20], stage_nums=2)
    assert expected in str(err.value)
    assert "ann.jsonl" in str(err.value)


def test_missing_and_duplicate_episodes():
    one = EpisodeAnnotation(0, 0, 10, (5,))
    with pytest.raises(AnnotationError, match=r"1 episode\(s\) have no annotation \(1\)"):
        _frames([one], [20, 20])
    with pytest.raises(AnnotationError, match="annotated twice"):
        _frames([one, one], [20, 20])
    frames, missing = _frames([one], [20, 20], allow_missing=True)
    assert missing == [1] and frames[1] is None


def test_files_round_trip_and_bad_lines_are_named(tmp_path):
    records = [
        EpisodeAnnotation(1, 0, 10, (5,), True),
        EpisodeAnnotation(0, 0.5, 2.0, (1.0,), None, "s"),
    ]
    for name in ("a.jsonl", "a.csv"):
        write_annotations(tmp_path / name, records)
        assert read_annotations(tmp_path / name) == sorted(records, key=lambda r: r.episode_index)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"episode_index": 0, "start": 0, "end": 5}\n{"episode_index": 1, "start": 0\n')
    with pytest.raises(AnnotationError, match=r"bad.jsonl:2: not valid JSON"):
        read_annotations(bad)
    bad.write_text('{"episode_index": 0, "start": 0, "end": 5, "boundary": [2]}\n')
    with pytest.raises(AnnotationError, match=r"unknown field\(s\) \['boundary'\]"):
        read_annotations(bad)
    with pytest.raises(AnnotationError, match="no annotation file here"):
        read_annotations(tmp_path / "none.jsonl")


def test_skipped_episodes_leave_a_valid_renumbered_dataset(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        {
            "observation.state": rng.normal(size=(n, 14)).astype(np.float32),
            "action": rng.normal(size=(n, 14)).astype(np.float32),
        }
        for n in (30, 20, 25)
    ]
    src = write_column_dataset(tmp_path / "raw", episodes)
    path = tmp_path / "ann.jsonl"
    write_annotations(
        path, [EpisodeAnnotation(0, 2, 28, (10,)), EpisodeAnnotation(2, 0, 24, (12,))]
    )
    config = AnnotationConfig(allow_missing=True, progress_columns=("progress_gt", "progress"))
    plan, report = annotated_dataset(src, AnnotationFile.read(path), config)
    out = plan.write(tmp_path / "annotated")
    assert report["skipped"] == [1] and report["episodes"] == 2
    assert report["frames_outside_annotation"] == 3  # frames 0, 1 and 29 of episode 0
    assert doctor_failures(out.root) == []
    ds = LeRobotDatasetReader(out.root)
    assert ds.lengths.tolist() == [30, 25]
    cols = ds.read_columns(["episode_index", "index", "stage_progress_gt", "progress"])
    assert cols["episode_index"].tolist() == [0] * 30 + [1] * 25
    assert cols["index"].tolist() == list(range(55))
    np.testing.assert_array_equal(
        ds.read_columns(["observation.state"])["observation.state"][30:],
        episodes[2]["observation.state"],
    )
    assert cols["stage_progress_gt"][30] == 0 and cols["progress"][30 + 24] == 1


@pytest.mark.slow
def test_the_annotation_pipeline_reproduces_the_demo_columns(kedro_project):
    run_kedro(kedro_project, "run", "--pipelines", "demo", "--params", "demo.n_episodes=6")
    boundary_file = kedro_project / "data/01_raw/demo_annotations.jsonl"
    rows = [json.loads(line) for line in boundary_file.read_text().splitlines()]
    assert [r["episode_index"] for r in rows] == list(range(6))
    run_kedro(kedro_project, "run", "--pipelines", "annotation")
    raw = LeRobotDatasetReader(kedro_project / "data/01_raw/demo")
    out = LeRobotDatasetReader(kedro_project / "data/02_intermediate/annotated")
    for column in ("stage_progress_gt", "progress_gt"):
        np.testing.assert_array_equal(
            out.read_columns([column])[column], raw.read_columns([column])[column]
        )
    assert doctor_failures(out.root) == []
    report = json.loads((kedro_project / "data/08_reporting/annotation_report.json").read_text())
    assert report["episodes"] == 6 and report["stages"] == 2 and report["successes"] == 6

    # a bad record stops the run before anything is written, naming the episode
    rows[3]["boundaries"] = [rows[3]["end"] + 5]
    boundary_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "annotation",
        "--params",
        f"annotated_dataset_path={kedro_project / 'second'}",
        check=False,
    )
    assert proc.returncode == 1
    assert "episode 3: start, boundaries and end" in proc.stdout + proc.stderr
    assert not (kedro_project / "second").exists()


@pytest.mark.slow
def test_a_users_raw_recording_goes_annotation_then_stage0(kedro_project, tmp_path):
    """A robot-shaped recording without progress columns (two tasks, three AV1 cameras,
    14-D), a CSV boundary file in seconds, then Stage 0 on the annotated dataset."""
    from ..robot_fixtures import robot_dataset

    raw = robot_dataset(tmp_path / "raw", annotated=False)
    assert "stage_progress_gt" not in raw.column_names()
    boundaries = tmp_path / "raw_annotations.csv"
    write_annotations(
        boundaries,
        [
            EpisodeAnnotation(e, 0.0, (n - 2) / 30, ((n // 2) / 30,), e != 1, "s")
            for e, n in zip(raw.episode_indices.tolist(), raw.lengths.tolist())
        ],
    )
    annotated = tmp_path / "annotated"
    run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "annotation",
        "--params",
        f"raw_dataset_path={raw.root},annotations_path={boundaries},"
        f"annotated_dataset_path={annotated},annotation.progress_columns=progress_gt progress",
    )
    ds = LeRobotDatasetReader(annotated)
    cols = ds.read_columns(["stage_progress_gt", "progress", "outside_annotation", "success"])
    last = ds.offsets[1:] - 1
    assert (cols["outside_annotation"][last] == 1).all()  # the end was marked one frame early
    assert (cols["progress"][last] == 1).all() and (cols["stage_progress_gt"][last] == 1).all()
    assert cols["success"][ds.offsets[1]] == 0 and cols["success"][0] == 1
    labeled = tmp_path / "labeled"
    run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "gt_labeling",
        "--params",
        f"raw_dataset_path={annotated},gt_labeled_dataset_path={labeled},"
        "gt_labeling.stage_nums=2,gt_labeling.chunk_size=5",
    )
    out = LeRobotDatasetReader(labeled)
    assert {t.rsplit(", Advantage", 1)[0] for t in out.tasks} == set(raw.tasks)
    assert doctor_failures(labeled) == []


def test_gripper_events_suggest_boundaries():
    from adv_pipeline.annotation.suggest import gripper_events

    t = np.arange(100)
    grip = np.zeros((100, 14))
    grip[:, 6] = (t >= 30) & (t < 70)  # left gripper closes at 30, opens at 70
    grip[:, 13] = np.where(t >= 31, 1.0, 0.0)  # right closes one frame later: merged
    grip[50, 13] = 0.0  # one-frame chatter at 50 and 51: merged into one event
    grip[:, 0] = np.sin(t)  # not a gripper dimension
    assert gripper_events(grip, [6, 13]) == [30, 50, 70]
    assert gripper_events(grip, [2]) == []  # a dimension that never moves
    with pytest.raises(ValueError, match=r"gripper dimensions \[14\] do not exist"):
        gripper_events(grip, [14])
