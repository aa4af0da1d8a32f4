"""Bad input is refused before any work: every case of a hostile-but-fair user's list, run
through each stage that reads it (a real ``kedro run`` of the project), fails before any
output or MLflow run exists, leaves the input byte-identical, and names the file, the
episode, the column (or frame) and the fix. Corrupt videos can only be found by decoding:
they fail at the frame, naming it, and publish nothing."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError

from adv_pipeline.lerobot import DatasetFormatError

from ..conftest import mlflow_runs
from .conftest import copy_dataset, debris, tree_digest


def _edit(root, episode: int, column: str, fn) -> None:
    path = root / f"data/chunk-000/episode_{episode:06d}.parquet"
    table = pq.read_table(path)
    col = table[column].combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        values = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).copy()
        values = fn(values)
        new = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), col.type.list_size)
    else:
        new = fn(col)
        new = new if isinstance(new, pa.Array) else pa.array(new)
    pq.write_table(table.set_column(table.column_names.index(column), column, new), path)


def _set(index, value):
    def fn(values):
        arr = (
            values.to_numpy(zero_copy_only=False).copy() if isinstance(values, pa.Array) else values
        )
        arr[index] = value
        return arr

    return fn


def duplicate_episode_index(root):
    _edit(root, 2, "episode_index", _set(slice(None), 1))


def frame_index_not_monotonic(root):
    _edit(root, 1, "frame_index", lambda c: c.to_numpy()[[0, 1, 2, 4, 3, *range(5, len(c))]])


def timestamps_shifted(root):
    _edit(root, 1, "timestamp", lambda c: (c.to_numpy() + np.float32(0.01)).astype(np.float32))


def nan_state(root):
    _edit(root, 2, "observation.state", _set((5, 0), np.nan))


def inf_action(root):
    _edit(root, 3, "action", _set((7, 13), np.inf))


def stage_progress_above_one(root):
    _edit(root, 0, "stage_progress_gt", _set(10, 1.5))


def truncated_parquet(root):
    path = root / "data/chunk-000/episode_000001.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def float64_progress(root):  # as pandas writes a float column
    _edit(root, 3, "progress", lambda c: c.cast(pa.float64()))


def _info(**changes):
    def edit(root):
        path = root / "meta/info.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    return edit


def string_progress(root):
    _edit(root, 2, "progress", lambda c: c.cast(pa.string()))


def corrupt_video(root):
    """Garbage inside the compressed frames (the mdat box); the container stays readable."""
    rng = np.random.default_rng(0)
    for path in sorted(root.glob("videos/chunk-000/observation.images.hand_left/*.mp4")):
        data = bytearray(path.read_bytes())
        start = data.index(b"mdat") + 4
        size = int.from_bytes(data[start - 8 : start - 4], "big") - 8
        for off in range(start + size // 3, start + size - 64, 97):
            data[off : off + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))


EP = r"data/chunk-000/episode_0000{}.parquet: episode {}"
# case -> (corruption, what the message must say); every message also ends with a fix
CASES = {
    "duplicate episode_index": (
        duplicate_episode_index,
        EP.format("02", 2) + r": its file has episode_index 1 at row 0: two files claim episode 1",
    ),
    "non-monotonic frame_index": (
        frame_index_not_monotonic,
        EP.format("01", 1) + r": frame_index is not 0, 1, 2, ... \(row 3 has 4\)",
    ),
    "timestamps shifted by 0.01 s": (
        timestamps_shifted,
        EP.format("01", 1) + r": timestamp 0.010000 s at frame 0 is 0.01 s from frame_index / fps",
    ),
    "NaN in observation.state": (
        nan_state,
        EP.format("02", 2) + r", column observation.state: NaN/inf at frame 5",
    ),
    "inf in action": (inf_action, EP.format("03", 3) + r", column action: NaN/inf at frame 7"),
    "stage_progress_gt 1.5 with stage_nums 1": (
        stage_progress_above_one,
        EP.format("00", 0)
        + r", column stage_progress_gt: values outside \[0.0, 1.0\] at frame 10 \(value 1.5\)",
    ),
    "truncated parquet": (
        truncated_parquet,
        r"data/chunk-000/episode_000001.parquet: parquet file of episode 1 cannot be read \(.*\)",
    ),
    "string-typed progress": (
        string_progress,
        EP.format("02", 2) + r": column progress holds string values \(info.json: dtype float32",
    ),
}
# read by Stage 0 only (its advantage source, or how every dataset is opened)
STAGE0_CASES = {
    "float64 progress declared float32": (
        float64_progress,
        EP.format("03", 3) + r": column progress holds double values, not float32",
    ),
    "fps 0": (_info(fps=0), r"meta/info.json: fps is 0 \(int\), not a positive whole number"),
    "fps '30'": (_info(fps="30"), r"meta/info.json: fps is '30' \(str\)"),
}
CASES.update(STAGE0_CASES)
# which stages read what: the estimator reads the target and the state, not the action
STAGE_CASES = [
    (case, stage)
    for case in CASES
    for stage in ("gt_labeling", "estimator", "estimation")
    if not (case == "inf in action" and stage == "estimator")
    and (case not in STAGE0_CASES or stage == "gt_labeling")
]


def _run_stage(session_run, stage: str, bad, tmp_path, robot_estimator):
    out = tmp_path / "out"
    if stage == "gt_labeling":
        params = {"raw_dataset_path": str(bad), "gt_labeled_dataset_path": str(out)}
    elif stage == "estimator":
        params = {"gt_labeled_dataset_path": str(bad), "estimator_runs_path": str(out)}
    else:
        params = {
            "target_dataset_path": str(bad),
            "estimator_runs_path": str(robot_estimator),
            "estimated_dataset_path": str(out),
            "awbc_dataset_path": str(tmp_path / "awbc"),
        }
    session_run(stage, **params)


@pytest.mark.parametrize("case,stage", STAGE_CASES, ids=[f"{c}-{s}" for c, s in STAGE_CASES])
def test_bad_input_is_refused_before_any_work(
    case, stage, robot_source, robot_estimator, session_run, kedro_project, tmp_path
):
    corrupt, message = CASES[case]
    bad = copy_dataset(robot_source, tmp_path / "bad")
    corrupt(bad)
    before = tree_digest(bad)
    with pytest.raises((DatasetFormatError, DatasetError), match=message + r".*Fix: \S+") as info:
        _run_stage(session_run, stage, bad, tmp_path, robot_estimator)
    assert str(bad) in str(info.value)
    assert tree_digest(bad) == before
    assert (
        not (tmp_path / "out").exists()
        and not (tmp_path / ".out.work").exists()
        and not (tmp_path / "awbc").exists()
    )
    assert mlflow_runs(kedro_project) == []
    assert debris(tmp_path) == [] and debris(kedro_project / "data") == []


@pytest.mark.parametrize("stage", ["estimator", "estimation"])
def test_corrupt_video_names_the_file_episode_and_frame(
    stage, robot_source, robot_estimator, session_run, tmp_path
):
    bad = copy_dataset(robot_source, tmp_path / "bad")
    corrupt_video(bad)
    before = tree_digest(bad)
    tiny = (
        {
            "estimator": {
                "train": {"steps": 2, "batch_size": 4},
                "data": {"samples_per_episode": 8, "image_size": [32, 32], "num_workers": 0},
            }
        }
        if stage == "estimator"
        else {}
    )
    with pytest.raises(
        (DatasetFormatError, DatasetError),
        match=r"observation.images.hand_left/episode_0000\d\d.mp4: episode \d+, frame \d+ cannot "
        r"be decoded \(.*\)\. Fix: re-encode this video",
    ):
        _run_stage(
            lambda s, **p: session_run(s, **p, **tiny), stage, bad, tmp_path, robot_estimator
        )
    assert tree_digest(bad) == before
    assert not (tmp_path / "out").exists() or stage == "estimator"  # nothing published by Stage 2
    assert debris(tmp_path) in ([], [".out.work"])  # Stage 2 keeps what it finished, to resume


@pytest.mark.parametrize("stage", ["gt_labeling", "estimation"])
def test_a_column_that_info_json_does_not_declare_is_kept_and_declared(
    stage, robot_source, robot_estimator, session_run, tmp_path
):
    """A user's parquet files hold a column info.json forgot (pandas-written files often
    do): the stage's output keeps it, values unchanged, and declares it, stats included."""
    src = copy_dataset(robot_source, tmp_path / "src")
    for path in sorted((src / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        rows = np.arange(table.num_rows, dtype=np.float64)
        pq.write_table(
            table.append_column("operator.note_id", pa.array(rows * 0.5 + len(str(path)))), path
        )
    _run_stage(session_run, stage, src, tmp_path, robot_estimator)
    from adv_pipeline.lerobot import LeRobotDatasetReader

    before, after = LeRobotDatasetReader(src), LeRobotDatasetReader(tmp_path / "out")
    assert after.features["operator.note_id"] == {"dtype": "float64", "shape": [1], "names": None}
    np.testing.assert_array_equal(
        after.read_columns(["operator.note_id"])["operator.note_id"],
        before.read_columns(["operator.note_id"])["operator.note_id"],
    )
    assert "operator.note_id" in after.episodes_stats_json[0]
    assert list(after.features)[-5:] == list(before.features)[-5:]  # index columns still last
