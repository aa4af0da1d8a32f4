"""A broken dataset fails up front with a message naming the file, the problem and the fix;
an interrupted write leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adv_pipeline.lerobot import (
    DatasetFormatError,
    DerivedDataset,
    LeRobotDatasetReader,
    encode_video,
)

from ..conftest import synthetic_frame, synthetic_plan


def _edit_json(path: Path, **changes) -> None:
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))


def _rewrite_parquet(path: Path, fn) -> None:
    pq.write_table(fn(pq.read_table(path)), path)


@pytest.mark.parametrize("rel", ["meta/info.json", "meta/tasks.jsonl", "meta/episodes.jsonl"])
def test_missing_meta_file(tiny_dataset, rel):
    (tiny_dataset.root / rel).unlink()
    with pytest.raises(DatasetFormatError, match=rf"{rel}: .*missing.*Fix:"):
        LeRobotDatasetReader(tiny_dataset.root)


def test_parquet_shorter_than_episodes_jsonl(tiny_dataset):
    path = tiny_dataset.data_path(1)
    _rewrite_parquet(path, lambda t: t.slice(0, 20))
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1 has 20 rows but meta/episodes.jsonl says length "
        r"25.*Fix: set its length to 20",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_missing_parquet(tiny_dataset):
    tiny_dataset.data_path(2).unlink()
    with pytest.raises(
        DatasetFormatError, match=r"episode_000002.parquet: parquet file of episode 2 is missing"
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_missing_video(tiny_dataset):
    tiny_dataset.video_path(0, "observation.images.hand_left").unlink()
    with pytest.raises(
        DatasetFormatError,
        match=r"hand_left/episode_000000.mp4: video observation.images.hand_left of episode 0 is "
        r"missing",
    ):
        LeRobotDatasetReader(tiny_dataset.root)
    # videos are not needed to read columns
    ds = LeRobotDatasetReader(tiny_dataset.root, check_videos=False)
    assert ds.read_columns(["action"])["action"].shape == (98, 3)


def test_video_shorter_than_parquet(tiny_dataset):
    path = tiny_dataset.video_path(1, "observation.images.top_head")
    encode_video(path, (synthetic_frame(1, t, 0) for t in range(18)), fps=30)
    with pytest.raises(
        DatasetFormatError,
        match=r"top_head/episode_000001.mp4: video .* of episode 1 has 18 frames, shorter than "
        r"its parquet \(25 rows\)",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_task_index_out_of_range(tiny_dataset):
    path = tiny_dataset.data_path(2)

    def bump(t: pa.Table) -> pa.Table:
        i = t.column_names.index("task_index")
        return t.set_column(i, "task_index", pa.array(np.full(t.num_rows, 3, np.int64)))

    _rewrite_parquet(path, bump)
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 2 has task_index in \[3, 3\] but meta/tasks.jsonl defines 1 tasks",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


@pytest.mark.parametrize(
    "version,fix", [("v1.6", "convert_dataset_v21_to_v30"), ("v2.0", "convert_dataset_v20_to_v21")]
)
def test_wrong_codebase_version(tiny_dataset, version, fix):
    _edit_json(tiny_dataset.root / "meta/info.json", codebase_version=version)
    with pytest.raises(
        DatasetFormatError,
        match=rf"info.json: codebase_version is '{version}'; this project reads v2.1 and "
        rf"v3.0.*{fix}",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_totals_disagree(tiny_dataset):
    _edit_json(tiny_dataset.root / "meta/info.json", total_frames=97)
    with pytest.raises(
        DatasetFormatError, match=r"total_frames is 97 but the episode lengths sum to 98"
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_unknown_column_and_camera(tiny_dataset):
    with pytest.raises(DatasetFormatError, match=r"no column\(s\) \['stage_progress'\]"):
        tiny_dataset.read_columns(["stage_progress"])
    with pytest.raises(DatasetFormatError, match=r"no camera 'wrist'.*top_head"):
        next(tiny_dataset.iter_frames(0, cameras=["wrist"]))


def _boom(seed: int, length: int):
    raise RuntimeError("simulator crashed")


def test_interrupted_new_write_leaves_nothing(tmp_path):
    plan = synthetic_plan()
    episodes = list(plan.episodes) + [partial(_boom, 9, 10)]
    bad = type(plan)(fps=plan.fps, features=plan.features, episodes=episodes, video=plan.video)
    with pytest.raises(RuntimeError, match="simulator crashed"):
        bad.write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_derived_write_keeps_previous_output(tiny_dataset, tmp_path):
    out = tmp_path / "derived"
    first = DerivedDataset(tiny_dataset, {"flag": np.zeros(98, np.int64)}).write(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # the source loses a video after it was opened: the rewrite fails half-way
    tiny_dataset.video_path(2, "observation.images.top_head").unlink()
    with pytest.raises(FileNotFoundError):
        DerivedDataset(tiny_dataset, {"flag": np.ones(98, np.int64)}).write(out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (LeRobotDatasetReader(out).read_columns(["flag"])["flag"] == 0).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derived", "tiny"]
    assert first.num_frames == 98


def test_derived_rejects_bad_columns(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="has 5 rows; the source .* has 98 frames"):
        DerivedDataset(tiny_dataset, {"x": np.zeros(5)}).write(tmp_path / "o")
    with pytest.raises(ValueError, match=r"task_index values span \[0, 2\] but only 2 tasks"):
        DerivedDataset(tiny_dataset, {"task_index": np.arange(98) % 3}, tasks=["a", "b"]).write(
            tmp_path / "o"
        )
    with pytest.raises(ValueError, match="is equal to the input source dataset"):
        DerivedDataset(tiny_dataset, {"x": np.zeros(98)}).write(tiny_dataset.root)
    assert not (tmp_path / "o").exists()


def test_a_repo_id_is_found_where_lerobot_keeps_datasets(tmp_path, monkeypatch):
    from adv_pipeline.datasets import LeRobotDataset
    from adv_pipeline.lerobot import find_dataset, lerobot_home

    home = tmp_path / "hf" / "lerobot"
    synthetic_plan(lengths=(5, 4)).write(home / "someone" / "pick")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("HF_LEROBOT_HOME", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # LeRobot's default: $HF_HOME/lerobot
    assert lerobot_home() == home
    # Kedro hands the catalog a path made absolute under the project
    reader = LeRobotDataset(path=str(project / "someone/pick")).load()
    assert reader.root == home / "someone/pick" and reader.num_episodes == 2
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetFormatError) as err:
        find_dataset(project / "someone/pick")
    message = str(err.value)
    assert f"looked in {project / 'someone/pick'} and {tmp_path / 'elsewhere/someone/pick'}" in (
        message
    )
    assert "Fix:" in message
    # a local dataset of that name comes first; a deeper path is no repo id
    synthetic_plan(lengths=(3,)).write(project / "someone/pick")
    assert find_dataset(project / "someone/pick") == project / "someone/pick"
    with pytest.raises(DatasetFormatError, match=r"looked in \S+/a/b/c\)"):
        find_dataset(project / "a/b/c")


@pytest.mark.parametrize("fps", [0, None, "30", -30, 29.5, True])
def test_fps_that_is_no_frame_rate_is_refused(tiny_dataset, fps):
    _edit_json(tiny_dataset.root / "meta/info.json", fps=fps)
    with pytest.raises(
        DatasetFormatError,
        match=rf"info.json: fps is {re.escape(repr(fps))} \(\w+\), not a positive whole number.*"
        r'Fix: .*"fps": 30',
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_a_wrong_fps_is_named_as_such(tiny_dataset):
    _edit_json(tiny_dataset.root / "meta/info.json", fps=25)
    with pytest.raises(
        DatasetFormatError,
        match=r"timestamp .* Fix: the timestamps advance 1/30 s a frame: if the recording ran at "
        r'30 fps, set "fps": 30 in meta/info.json',
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_a_float64_column_declared_float32_is_refused_before_any_read(tiny_dataset):
    def widen(table: pa.Table) -> pa.Table:  # as pandas writes a float column
        i = table.schema.get_field_index("stage_progress_gt")
        return table.set_column(i, "stage_progress_gt", table.column(i).cast(pa.float64()))

    _rewrite_parquet(tiny_dataset.data_path(1), widen)
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1: column stage_progress_gt holds double values, "
        r"not float32.*Fix: .*astype\('float32'\)",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_an_empty_episode_is_refused_when_the_dataset_opens(tiny_dataset):
    meta = tiny_dataset.root / "meta/episodes.jsonl"
    rows = [json.loads(x) for x in meta.read_text().splitlines()]
    removed, rows[1]["length"] = rows[1]["length"], 0
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = json.loads((tiny_dataset.root / "meta/info.json").read_text())
    _edit_json(tiny_dataset.root / "meta/info.json", total_frames=info["total_frames"] - removed)
    with pytest.raises(
        DatasetFormatError, match=r"episodes.jsonl: episode\(s\) \[1\] have no frames.*Fix: remove"
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_an_index_that_is_not_the_row_in_the_dataset_is_refused(tiny_dataset):
    # episode 1 numbered from 0, as if it were alone (episode 0 has 40 frames)
    _rewrite_parquet(
        tiny_dataset.data_path(1),
        lambda t: t.set_column(
            t.schema.get_field_index("index"), "index", pa.array(np.arange(t.num_rows))
        ),
    )
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1: index \(the frame's row in the whole "
        r"dataset\) is 0 at frame 0, expected 40.*Fix: renumber index",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_a_parquet_file_that_no_episode_lists_is_refused(tiny_dataset):
    shutil.copy(
        tiny_dataset.data_path(2), tiny_dataset.root / "data/chunk-000/episode_000003.parquet"
    )
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000003.parquet: this parquet file holds no episode of meta/episodes.jsonl "
        r"\(1 such file\(s\)\).*Fix: add its episodes",
    ):
        LeRobotDatasetReader(tiny_dataset.root)


def test_a_null_row_of_a_vector_column_is_named_as_such(tiny_dataset):
    def null_row(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("observation.state")
        col = table.column(i).combine_chunks()
        mask = np.zeros(len(col), bool)
        mask[3] = True
        values = pa.FixedSizeListArray.from_arrays(col.flatten(), 3, mask=pa.array(mask))
        return table.set_column(i, "observation.state", values)

    _rewrite_parquet(tiny_dataset.data_path(1), null_row)
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1: column observation.state has a missing "
        r"\(null\) row.*Fix: fill the missing rows",
    ):
        LeRobotDatasetReader(tiny_dataset.root)
