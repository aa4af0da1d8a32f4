"""Writing then reading a dataset gives back the columns and (within codec error) the frames."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from adv_pipeline.lerobot import DerivedDataset, LeRobotDatasetReader, VideoReader, resize_with_pad

from ..conftest import CAMERAS, SyntheticEpisode, synthetic_frame, synthetic_plan

COLUMNS = [
    "observation.state",
    "action",
    "stage_progress_gt",
    "index",
    "frame_index",
    "episode_index",
    "timestamp",
    "task_index",
]
CODEC_TOLERANCE = 6.0  # mean absolute error, 0..255 levels, of H.264 at crf 10 on 32x32


def test_columns_roundtrip(tiny_dataset):
    ds = tiny_dataset
    assert ds.num_episodes == 3 and ds.num_frames == 40 + 25 + 33
    cols = ds.read_columns(COLUMNS)
    expected = [SyntheticEpisode(i, n).columns for i, n in enumerate((40, 25, 33))]
    for name in ("observation.state", "action", "stage_progress_gt"):
        np.testing.assert_array_equal(cols[name], np.concatenate([e[name] for e in expected]))
    np.testing.assert_array_equal(cols["index"], np.arange(98))
    np.testing.assert_array_equal(
        cols["frame_index"], np.concatenate([np.arange(n) for n in (40, 25, 33)])
    )
    np.testing.assert_array_equal(cols["episode_index"], np.repeat([0, 1, 2], (40, 25, 33)))
    np.testing.assert_allclose(cols["timestamp"], cols["frame_index"] / 30, atol=1e-6)
    assert (cols["task_index"] == 0).all() and ds.tasks == ["do the thing"]
    # per-episode reading agrees with the all-at-once read
    ep1 = ds.read_episode(1, ["observation.state"])["observation.state"]
    np.testing.assert_array_equal(ep1, cols["observation.state"][40:65])


def test_metadata_is_true(tiny_dataset):
    root = tiny_dataset.root
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1"
    assert (
        info["total_episodes"],
        info["total_frames"],
        info["total_tasks"],
        info["total_videos"],
    ) == (3, 98, 1, 6)
    assert info["splits"] == {"train": "0:3"}
    rows = [
        json.loads(line) for line in (root / "meta/episodes_stats.jsonl").read_text().splitlines()
    ]
    st = rows[0]["stats"]
    assert st["observation.state"]["count"] == [40]
    assert np.array(st["observation.images.top_head"]["mean"]).shape == (3, 1, 1)
    state = SyntheticEpisode(0, 40).columns["observation.state"]
    np.testing.assert_allclose(st["observation.state"]["std"], state.std(axis=0), rtol=1e-5)


def test_frames_match_source_within_codec_error(tiny_dataset):
    ds = tiny_dataset
    streamed = list(ds.iter_frames(2))
    assert len(streamed) == 33
    for t in (0, 16, 32):
        for i, cam in enumerate(CAMERAS):
            got = streamed[t][f"observation.images.{cam}"].astype(float)
            assert np.abs(got - synthetic_frame(2, t, i)).mean() < CODEC_TOLERANCE


def test_random_access_equals_streaming(tiny_dataset):
    ds = tiny_dataset
    streamed = [f["observation.images.hand_left"] for f in ds.iter_frames(0, cameras=["hand_left"])]
    idx = [39, 3, 3, 0, 20, 21]
    got = ds.get_frames(0, idx, cameras=["hand_left"])["observation.images.hand_left"]
    for j, t in enumerate(idx):
        np.testing.assert_array_equal(got[j], streamed[t])
    # a window in the middle
    window = list(ds.iter_frames(0, cameras=["top_head"], start=10, stop=14))
    assert len(window) == 4


def test_resize_with_pad_keeps_aspect(tiny_dataset):
    wide = np.full((20, 40, 3), 200, np.uint8)
    out = resize_with_pad(wide, (40, 40))
    assert out.shape == (40, 40, 3)
    assert out[:10].max() == 0 and out[30:].max() == 0 and out[10:30].min() > 150
    frames = VideoReader(
        tiny_dataset.video_path(0, "observation.images.top_head"), size=(64, 48)
    ).get([0])
    assert frames.shape == (1, 64, 48, 3)


def test_decoded_frames_resize_exactly_as_live_images(tiny_dataset):
    """A frame decoded at a size equals the full-size decoded RGB frame passed through
    resize_with_pad (what a policy does with a live camera image): no train/serve skew."""
    path = tiny_dataset.video_path(0, "observation.images.top_head")
    small = VideoReader(path, size=(20, 24)).get([0, 3, 7])
    full = VideoReader(path).get([0, 3, 7])
    np.testing.assert_array_equal(small, resize_with_pad(full, (20, 24)))


def _decode_all(path) -> int:
    return len(VideoReader(path, size=(16, 16)).get(list(range(5))))


def test_a_forked_worker_decodes_after_its_parent_did(tiny_dataset):
    """The reusable scalers are per process: a loader worker forked after the parent
    decoded (as Stage 1's and the policy's loaders do) must not hang on the parent's."""
    import multiprocessing

    path = tiny_dataset.video_path(0, "observation.images.top_head")
    assert _decode_all(path) == 5
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_decode_all, (path,)).get(timeout=60) == 5


def test_derived_dataset_links_videos_and_updates_metadata(tiny_dataset, tmp_path):
    src = tiny_dataset
    before = {p: p.read_bytes() for p in src.root.rglob("*") if p.is_file()}
    cols = src.read_columns(["stage_progress_gt"])
    labels = (cols["stage_progress_gt"] > 0.5).astype(np.int64)
    out = DerivedDataset(
        src, {"task_index": labels, "adv": cols["stage_progress_gt"] * 2}, tasks=["neg", "pos"]
    ).write(tmp_path / "derived")
    assert out.tasks == ["neg", "pos"]
    np.testing.assert_array_equal(out.read_columns(["task_index"])["task_index"], labels)
    assert "adv" in out.features and out.features["adv"]["shape"] == [1]
    rows = [
        json.loads(line) for line in (out.root / "meta/episodes.jsonl").read_text().splitlines()
    ]
    assert rows[0]["tasks"] == ["neg", "pos"]
    info = json.loads((out.root / "meta/info.json").read_text())
    assert info["total_tasks"] == 2
    a = src.video_path(1, "observation.images.top_head")
    b = out.video_path(1, "observation.images.top_head")
    assert os.stat(a).st_ino == os.stat(b).st_ino  # hard link, not a copy
    stats = out.episodes_stats[0]
    assert stats["task_index"]["max"][0] == 1 and stats["adv"]["max"][0] == pytest.approx(2.0)
    # the source is untouched
    assert {p: p.read_bytes() for p in src.root.rglob("*") if p.is_file()} == before


def test_parallel_writer_matches_serial(tmp_path):
    a = synthetic_plan(workers=1).write(tmp_path / "a")
    b = synthetic_plan(workers=2).write(tmp_path / "b")
    for rel in ("meta/info.json", "meta/episodes.jsonl", "meta/tasks.jsonl"):
        assert (a.root / rel).read_text() == (b.root / rel).read_text()
    ca, cb = (
        a.read_columns(["observation.state", "index"]),
        b.read_columns(["observation.state", "index"]),
    )
    np.testing.assert_array_equal(ca["observation.state"], cb["observation.state"])
    np.testing.assert_array_equal(ca["index"], cb["index"])


def test_reader_rejects_missing_root(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        LeRobotDatasetReader(tmp_path / "nope")


def test_writing_av1_leaves_the_process_scheduling_as_it_was(tmp_path):
    """SVT-AV1, run as root, raises the threads that open it to real-time SCHED_FIFO 99;
    the writer puts every thread back (a real-time Python process starves the machine)."""
    from adv_pipeline.lerobot import VideoWriter

    from ..robot_fixtures import AV1

    def policies() -> set[tuple[int, int]]:
        out = set()
        for tid in os.listdir("/proc/self/task"):
            try:
                t = int(tid)
                out.add((os.sched_getscheduler(t), os.sched_getparam(t).sched_priority))
            except OSError:
                pass
        return out

    before = policies()
    with VideoWriter(tmp_path / "a.mp4", 30, AV1) as writer:
        for t in range(12):
            writer.write(np.full((48, 64, 3), 10 * t, np.uint8))
        assert policies() == before  # while encoding
    assert policies() == before and writer.n_frames == 12
