"""LeRobot v3.0 written by the project: the same episodes as v2.1, packed into shared files."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adv_pipeline.lerobot import DatasetFormatError, DerivedDataset, LeRobotDatasetReader

from ..conftest import doctor_failures, synthetic_plan
from .test_roundtrip import COLUMNS


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same plan written as v2.1 and as v3.0."""
    root = tmp_path_factory.mktemp("v30")
    plan = synthetic_plan(lengths=(40, 25, 33))
    return plan.write(root / "v21"), dataclasses.replace(plan, format="v3.0").write(root / "v30")


def test_v30_holds_the_same_episodes_as_v21(both):
    v21, v30 = both
    v30 = LeRobotDatasetReader(v30.root)  # every file checked
    assert (v30.version, v30.num_episodes, v30.num_frames) == ("v3.0", 3, 98)
    a, b = v21.read_columns(COLUMNS), v30.read_columns(COLUMNS)
    for c in COLUMNS:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)
    np.testing.assert_array_equal(
        v21.read_episode(1, ["action"])["action"], v30.read_episode(1, ["action"])["action"]
    )
    for e in range(3):  # the same encoded frames, streamed and picked
        for fa, fb in zip(v21.iter_frames(e), v30.iter_frames(e), strict=True):
            assert all(np.array_equal(fa[k], fb[k]) for k in fa)
        picks = [0, 7, v30.episode(e).length - 1]
        got, want = v30.get_frames(e, picks), v21.get_frames(e, picks)
        assert all(np.array_equal(got[k], want[k]) for k in want)
    assert v30.tasks == v21.tasks
    assert v30.episodes_stats_json == v21.episodes_stats_json
    info = json.loads((v30.root / "meta/info.json").read_text())
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert {"total_chunks", "total_videos"}.isdisjoint(info)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 98, 1)
    # each camera's episodes joined in one video, frame after frame at 1/fps (stream copy)
    key = v30.video_keys[0]
    assert len(list((v30.root / "videos").rglob("*.mp4"))) == len(v30.video_keys)
    with av.open(str(v30.video_path(2, key))) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
        seconds = np.array(pts) * float(stream.time_base)
    np.testing.assert_allclose(seconds, np.arange(98) / 30, atol=1e-6)
    assert [round(v30.first_video_frame(e, key)) for e in range(3)] == [0, 40, 65]
    # all episodes' rows in one data file; episode rows tile it
    assert sorted(p.name for p in (v30.root / "data").rglob("*.parquet")) == ["file-000.parquet"]
    rows = pq.read_table(v30.root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert rows["dataset_from_index"] == [0, 40, 65] and rows["dataset_to_index"] == [40, 65, 98]
    assert doctor_failures(v30.root) == []


def test_derived_from_v30_links_shared_videos_and_stays_v30(both, tmp_path):
    _, v30 = both
    extra = np.arange(v30.num_frames, dtype=np.float32)
    out = DerivedDataset(v30, {"extra": extra}, episodes=[0, 2]).write(tmp_path / "kept")
    out = LeRobotDatasetReader(out.root)
    assert (out.version, out.num_episodes) == ("v3.0", 2)
    np.testing.assert_array_equal(out.read_columns(["extra"])["extra"], extra[np.r_[0:40, 65:98]])
    for fa, fb in zip(v30.iter_frames(2), out.iter_frames(1), strict=True):
        assert all(np.array_equal(fa[k], fb[k]) for k in fa)
    key = out.video_keys[0]
    assert out.video_path(1, key).stat().st_ino == v30.video_path(2, key).stat().st_ino


def test_a_v30_source_written_as_v21_cuts_each_episodes_videos_by_stream_copy(both, tmp_path):
    v21, v30 = both
    out = DerivedDataset(v30, {}).write(tmp_path / "v21", format="v2.1")
    out = LeRobotDatasetReader(out.root)
    assert out.version == "v2.1" and doctor_failures(out.root) == []
    a, b = v21.read_columns(COLUMNS), out.read_columns(COLUMNS)
    assert all(np.array_equal(a[c], b[c]) for c in COLUMNS)
    for e in range(3):  # the same encoded frames as the episode's own v2.1 file
        assert out.first_video_frame(e, out.video_keys[0]) == 0
        for fa, fb in zip(v21.iter_frames(e), out.iter_frames(e), strict=True):
            assert all(np.array_equal(fa[k], fb[k]) for k in fa)


def test_a_v21_source_can_be_written_as_v30(both, tmp_path):
    v21, _ = both
    out = LeRobotDatasetReader(DerivedDataset(v21, {}, format="v3.0").write(tmp_path / "o").root)
    assert out.version == "v3.0"
    a, b = v21.read_columns(COLUMNS), out.read_columns(COLUMNS)
    assert all(np.array_equal(a[c], b[c]) for c in COLUMNS)


# ---------------------------------------------------------------------------- bad v3.0 input
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_v30" / "robot_v30"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


def _edit_episodes(root: Path, column: str, episode: int, value) -> None:
    path = root / EPISODES
    table = pq.read_table(path)
    values = table[column].to_pylist()
    values[episode] = value
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, column, pa.array(values, table.schema.field(i).type)), path)


def _rows_past_the_file(root):
    for c in ("dataset_to_index", "length"):  # episode 2 ends its file: 4 rows more
        _edit_episodes(root, c, 2, pq.read_table(root / EPISODES)[c][2].as_py() + 4)
    _edit_json(root / "meta/info.json", total_frames=208)
    for e in range(3, 6):
        for c in ("dataset_from_index", "dataset_to_index"):
            _edit_episodes(root, c, e, pq.read_table(root / EPISODES)[c][e].as_py() + 4)


def _overlap(root):
    _edit_episodes(root, "dataset_from_index", 1, 30)
    _edit_episodes(root, "dataset_to_index", 1, 58)


def _gap(root):
    _edit_episodes(root, "dataset_from_index", 1, 40)
    _edit_episodes(root, "dataset_to_index", 1, 68)


def _video_past_the_file(root):
    key = "videos/observation.images.top_head"
    _edit_episodes(root, f"{key}/from_timestamp", 2, 3.0)
    _edit_episodes(root, f"{key}/to_timestamp", 2, 3.0 + 44 / 30)


def _task_missing(root):
    path = root / "meta/tasks.parquet"
    pq.write_table(pq.read_table(path).slice(0, 1), path)
    _edit_json(root / "meta/info.json", total_tasks=1)


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=4))


BAD_V30 = {
    "rows past the data file": (
        _rows_past_the_file,
        r"file-000.parquet: episode 2: its rows 64...111 in this file run past its 108 rows. "
        r"Fix: restore the file, or correct",
    ),
    "overlapping row ranges": (
        _overlap,
        r"episodes/chunk-000/file-000.parquet: episode 1: its rows start at 30 but the episodes "
        r"before it end at 36 \(the row range overlaps the episode before it.*Fix: renumber",
    ),
    "missing row range": (
        _gap,
        r"episode 1: its rows start at 40 but the episodes before it end at 36 \(the row range "
        r"leaves a gap.*Fix: renumber",
    ),
    "video time range outside its file": (
        _video_past_the_file,
        r"file-000.mp4: video observation.images.top_head of episode 2: its time range "
        r"3.000..4.467 s \(frames 90..133\) runs past the file's 108 frames. Fix: restore",
    ),
    "task index missing from tasks.parquet": (
        _task_missing,
        r"episode 1 has task_index in \[1, 1\] but meta/tasks.parquet defines 1 tasks.*Fix: add "
        r"the missing tasks",
    ),
}


@pytest.mark.parametrize("case", BAD_V30)
def test_bad_v30_input_is_refused_naming_file_episode_and_fix(case, tmp_path):
    root = Path(shutil.copytree(FIXTURE, tmp_path / "bad"))
    corrupt, message = BAD_V30[case]
    corrupt(root)
    with pytest.raises(DatasetFormatError, match=message):
        LeRobotDatasetReader(root)
