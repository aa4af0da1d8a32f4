"""Lay a written dataset out as LeRobot v3.0: episodes packed into files, metadata as parquet.

The writer stages every episode in its own parquet file (so a killed write resumes
episode by episode); :func:`pack` then builds the v3.0 layout inside the staging folder
(see :mod:`.meta_v30`): the episodes' rows concatenated into ``data/`` files of at most
``data_files_size_in_mb`` each, ``meta/episodes/`` rows saying where each episode lies
(rows, video time ranges, per-episode stats), ``meta/tasks.parquet`` and
``meta/stats.json``. Videos stay where the writer put them: one file per episode (new
or from a v2.1 source) or a v3.0 source's multi-episode files, linked whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .format import (
    DEFAULT_DATA_FILE_SIZE_MB,
    DEFAULT_VIDEO_FILE_SIZE_MB,
    INFO_PATH,
    STATS_PATH,
    TASKS_PARQUET_PATH,
    V30,
    V30_DATA_PATH,
    V30_EPISODES_PATH,
    V30_VIDEO_PATH,
    video_keys,
)
from .stats import Stats, aggregate_stats, stats_to_json

# where one episode's video lies: (relative path, from_timestamp s, to_timestamp s)
Placement = tuple[str, float, float]


def file_indices(n: int, chunks_size: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the n-th file (files roll into a new chunk every
    ``chunks_size``, as LeRobot numbers them)."""
    return n // chunks_size, n % chunks_size


def v30_info(info: Mapping) -> dict:
    """info.json of a v3.0 dataset (totals added by :func:`pack`)."""
    out = {k: v for k, v in info.items() if k not in ("total_chunks", "total_videos", "splits")}
    out.update(
        codebase_version=V30,
        data_path=V30_DATA_PATH,
        video_path=V30_VIDEO_PATH if video_keys(info["features"]) else None,
    )
    out.setdefault("chunks_size", 1000)
    out.setdefault("data_files_size_in_mb", DEFAULT_DATA_FILE_SIZE_MB)
    out.setdefault("video_files_size_in_mb", DEFAULT_VIDEO_FILE_SIZE_MB)
    return out


def _stats_columns(
    stats: Sequence[Mapping[str, Stats]], features: Mapping[str, dict]
) -> dict[str, list]:
    """``stats/<feature>/<stat>`` columns, one value (a nested list) per episode."""
    names = sorted({(f, s) for st in stats for f, fs in st.items() for s in fs})
    cols: dict[str, list] = {}
    for feature, stat in names:
        if feature not in features:
            continue
        cols[f"stats/{feature}/{stat}"] = [
            np.asarray(st[feature][stat]).tolist() if feature in st else None for st in stats
        ]
    return cols


def pack(
    staging: Path,
    info: Mapping,
    tasks: Sequence[str],
    episodes: Sequence[Mapping],
    episode_files: Sequence[Path],
    placements: Sequence[Mapping[str, Placement]],
    episodes_stats: Sequence[Mapping[str, Stats]],
) -> list[Path]:
    """Write the v3.0 data files and metadata into ``staging``.

    Args:
        info: info.json without totals (v3.0 paths set by :func:`v30_info`).
        episodes: rows ``{"episode_index", "tasks", "length"}``, episode order.
        episode_files: each episode's staged parquet (same order).
        placements: per episode, ``{video_key: (relpath, from s, to s)}``.
        episodes_stats: per episode, {feature: stats}.

    Returns:
        The data files written (relative to ``staging``), in order.
    """
    info = v30_info(info)
    chunks_size = int(info["chunks_size"])
    limit = float(info["data_files_size_in_mb"]) * 2**20
    keys = video_keys(info["features"])
    written: list[Path] = []
    where: list[tuple[int, int]] = []
    writer: pq.ParquetWriter | None = None
    size = 0.0
    try:
        for path in episode_files:
            table = pq.read_table(path)
            grow = path.stat().st_size
            if writer is None or size + grow > limit and size > 0:
                if writer is not None:
                    writer.close()
                chunk, file = file_indices(len(written), chunks_size)
                rel = Path(info["data_path"].format(chunk_index=chunk, file_index=file))
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(staging / rel, table.schema, compression="snappy")
                written.append(rel)
                size = 0.0
            writer.write_table(table)
            size += grow
            where.append(file_indices(len(written) - 1, chunks_size))
    finally:
        if writer is not None:
            writer.close()

    lengths = np.array([int(e["length"]) for e in episodes], dtype=np.int64)
    stops = np.cumsum(lengths)
    columns: dict[str, list] = {
        "episode_index": [int(e["episode_index"]) for e in episodes],
        "tasks": [list(e["tasks"]) for e in episodes],
        "length": lengths.tolist(),
        "data/chunk_index": [c for c, _ in where],
        "data/file_index": [f for _, f in where],
        "dataset_from_index": (stops - lengths).tolist(),
        "dataset_to_index": stops.tolist(),
    }
    n_video_files = 0
    for key in keys:
        rels = [p[key][0] for p in placements]
        n_video_files += len(set(rels))
        idx = [_chunk_file(rel) for rel in rels]
        columns[f"videos/{key}/chunk_index"] = [c for c, _ in idx]
        columns[f"videos/{key}/file_index"] = [f for _, f in idx]
        columns[f"videos/{key}/from_timestamp"] = [float(p[key][1]) for p in placements]
        columns[f"videos/{key}/to_timestamp"] = [float(p[key][2]) for p in placements]
    columns.update(_stats_columns(episodes_stats, info["features"]))
    columns["meta/episodes/chunk_index"] = [0] * len(episodes)
    columns["meta/episodes/file_index"] = [0] * len(episodes)
    meta_rel = V30_EPISODES_PATH.format(chunk_index=0, file_index=0)
    (staging / meta_rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), staging / meta_rel, compression="snappy")

    # as LeRobot writes it: a pandas frame indexed by the task string (LeRobot reads the
    # index back through the pandas metadata)
    pd.DataFrame(
        {"task_index": np.arange(len(tasks), dtype=np.int64)},
        index=pd.Index(list(tasks), name="task"),
    ).to_parquet(staging / TASKS_PARQUET_PATH)
    info.update(
        total_episodes=len(episodes),
        total_frames=int(lengths.sum()),
        total_tasks=len(tasks),
        splits={"train": f"0:{len(episodes)}"},
    )
    (staging / INFO_PATH).write_text(json.dumps(info, indent=4))
    (staging / STATS_PATH).write_text(
        json.dumps(stats_to_json(aggregate_stats(episodes_stats)), indent=4)
    )
    return written


def pack_videos(
    staging: Path,
    info: Mapping,
    placements: Sequence[Mapping[str, Placement]],
    fps: int,
) -> list[dict[str, Placement]]:
    """Join each camera's per-episode videos (staged by the writer) end to end into
    ``videos/<key>/chunk-*/file-*.mp4`` of at most ``video_files_size_in_mb`` each, by
    stream copy (:func:`~.video.concat_videos`); returns the episodes' new placements
    (file, from_timestamp, to_timestamp). Episodes whose video is a linked source file
    keep theirs."""
    from .video import concat_videos

    info = v30_info(info)
    limit = float(info["video_files_size_in_mb"]) * 2**20
    chunks_size = int(info["chunks_size"])
    out = [dict(p) for p in placements]
    for key in video_keys(info["features"]):
        groups: list[list[int]] = []
        size = 0.0
        for e, p in enumerate(placements):
            grow = (staging / p[key][0]).stat().st_size
            if not groups or size + grow > limit and size > 0:
                groups.append([])
                size = 0.0
            groups[-1].append(e)
            size += grow
        for n, group in enumerate(groups):
            chunk, file = file_indices(n, chunks_size)
            rel = info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
            frames = [round((placements[e][key][2] - placements[e][key][1]) * fps) for e in group]
            concat_videos(
                [staging / placements[e][key][0] for e in group],
                staging / rel,
                [n / fps for n in frames],
            )
            start = 0
            for e, n in zip(group, frames):
                out[e][key] = (rel, start / fps, (start + n) / fps)
                start += n
    return out


def _chunk_file(rel: str) -> tuple[int, int]:
    """(chunk_index, file_index) from a v3.0 path ``.../chunk-CCC/file-FFF.ext``."""
    parts = Path(rel).parts
    chunk = int(parts[-2].split("-", 1)[1])
    file = int(Path(parts[-1]).stem.split("-", 1)[1])
    return chunk, file
