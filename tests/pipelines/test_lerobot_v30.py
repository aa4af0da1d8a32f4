"""Every stage on datasets that LeRobot 0.6.1 wrote itself, format v3.0 (several episodes
per data and video file; tests/fixtures/lerobot_v30/README.md says how they were made):
the annotation pipeline, Stage 0, 1, 2 and 3 through the real Kedro pipelines, and every
dataset written comes out v3.0, valid for lerobot-doctor, its videos linked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from adv_pipeline.annotation.records import EpisodeAnnotation, write_annotations
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import doctor_failures, mlflow_runs, stage0_labelled
from ..robot_fixtures import TINY_ESTIMATOR, TINY_POLICY, with_cameras

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_v30"
CAMERA = "top_head"


def _copy(name: str, tmp_path: Path) -> Path:
    """A copy: the committed fixture is never an output's neighbour."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _is_v30(root: Path) -> LeRobotDatasetReader:
    ds = LeRobotDatasetReader(root)
    assert ds.version == "v3.0", root
    assert doctor_failures(root) == [], root
    return ds


def test_every_stage_runs_on_lerobot_written_v30_data(session_run, kedro_project, tmp_path):
    robot, raw = _copy("robot_v30", tmp_path), _copy("raw_v30", tmp_path)
    source = LeRobotDatasetReader(robot)
    assert len({ep.data_file for ep in source.episodes}) < source.num_episodes  # shared files

    # the annotation pipeline on a raw recording (no progress columns)
    marks = tmp_path / "marks.csv"
    rec = LeRobotDatasetReader(raw)
    write_annotations(
        marks,
        [
            EpisodeAnnotation(e, 0.0, (n - 1) / rec.fps, ((n // 2) / rec.fps,), True, "s")
            for e, n in zip(rec.episode_indices.tolist(), rec.lengths.tolist())
        ],
    )
    annotated = tmp_path / "annotated"
    session_run(
        "annotation",
        raw_dataset_path=str(raw),
        annotations_path=str(marks),
        annotated_dataset_path=str(annotated),
    )
    ann = _is_v30(annotated)
    sp = ann.read_columns(["stage_progress_gt"])["stage_progress_gt"]
    assert sp[0] == 0 and 0.9 < sp[ann.offsets[1] - 1] <= 1

    # Stage 0: advantage prompts as each frame's task
    labeled = stage0_labelled(session_run, robot, tmp_path)
    lab = _is_v30(labeled)
    assert {t.rsplit(", Advantage", 1)[0] for t in lab.tasks} == set(source.tasks)
    key = f"observation.images.{CAMERA}"
    assert lab.video_path(4, key).stat().st_ino == source.video_path(4, key).stat().st_ino
    for a, b in zip(source.iter_frames(4), lab.iter_frames(4), strict=True):
        assert np.array_equal(a[key], b[key])

    # Stage 1 and 2: the estimator trained on it, then labelling the v3.0 recording
    estimator = with_cameras(TINY_ESTIMATOR, [CAMERA])
    session_run("estimator", gt_labeled_dataset_path=str(labeled), estimator=estimator)
    estimated, awbc_data = tmp_path / "estimated", tmp_path / "awbc"
    session_run(
        "estimation",
        target_dataset_path=str(robot),
        estimated_dataset_path=str(estimated),
        awbc_dataset_path=str(awbc_data),
        estimator=estimator,
        estimation={"batch_size": 16, "image_features": None},
    )
    for root in (estimated, awbc_data):
        ds = _is_v30(root)
        assert ds.num_frames == source.num_frames
    adv = LeRobotDatasetReader(estimated).read_columns(["absolute_advantage"])
    assert np.isfinite(adv["absolute_advantage"]).all()

    # Stage 3 on the v3.0 AWBC dataset
    tiny = with_cameras(TINY_POLICY, [CAMERA])
    session_run("awbc", awbc_dataset_path=str(awbc_data), awbc=tiny)
    assert any("awbc" in r.info.run_name for r in mlflow_runs(kedro_project))


def test_a_v30_recording_labelled_into_v21_for_kai0_and_openpi(session_run, tmp_path):
    """dataset_format=v2.1: Stage 0 of a LeRobot 0.6 recording as kai0's and openpi's
    tools read it, each episode's video cut out of the shared files by stream copy."""
    robot = _copy("robot_v30", tmp_path)
    session_run(
        "gt_labeling",
        raw_dataset_path=str(robot),
        gt_labeled_dataset_path=str(tmp_path / "out"),
        gt_labeling={"stage_nums": 2},
        dataset_format="v2.1",
    )
    out, source = LeRobotDatasetReader(tmp_path / "out"), LeRobotDatasetReader(robot)
    assert out.version == "v2.1" and doctor_failures(out.root) == []
    assert (out.root / "meta/episodes.jsonl").is_file()
    # LeRobot 0.6's `datasets` feature metadata is not carried (older `datasets` cannot read
    # it, and it would not describe the new columns)
    schema = pq.read_schema(out.data_path(0))
    assert b"huggingface" not in (schema.metadata or {})
    key = f"observation.images.{CAMERA}"
    assert out.video_path(4, key).name == "episode_000004.mp4"
    for a, b in zip(source.iter_frames(4), out.iter_frames(4), strict=True):
        assert np.array_equal(a[key], b[key])


def test_the_annotator_places_each_episode_inside_a_shared_v30_video(tmp_path):
    """A v3.0 video holds several episodes: the annotator serves the file and tells its
    page where the episode starts in it (the page seeks from there)."""
    import json
    import urllib.request

    from ..server_process import server_process

    raw = _copy("raw_v30", tmp_path)
    args = ["annotate", str(raw), "--annotations", str(tmp_path / "marks.jsonl"), "--port", "0"]
    ready = r"open (http://127\.0\.0\.1:\d+/)"
    with server_process(args, tmp_path / "annotate.log", ready) as wait:
        url = wait().group(1)
        ep = json.load(urllib.request.urlopen(f"{url}api/episodes/1"))
        key = f"observation.images.{CAMERA}"
        assert ep["video_start"] == {key: 36 / 30}  # after episode 0's 36 frames
        video = urllib.request.urlopen(f"{url}{ep['videos'][key].lstrip('/')}").read()
    assert video == LeRobotDatasetReader(raw).video_path(1, key).read_bytes()
