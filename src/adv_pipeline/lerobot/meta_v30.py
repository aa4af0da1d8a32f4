"""The metadata of a LeRobot v3.0 dataset: tasks, episodes and their place in the files.

v3.0 (LeRobot 0.4 and later) stores many episodes per parquet file and per video file::

    meta/info.json, meta/stats.json, meta/tasks.parquet
    meta/episodes/chunk-{c:03d}/file-{f:03d}.parquet   one row per episode
    data/chunk-{c:03d}/file-{f:03d}.parquet             the frames of several episodes
    videos/{video_key}/chunk-{c:03d}/file-{f:03d}.mp4   those episodes' videos, end to end

An episode's row says where it lives: ``data/chunk_index``, ``data/file_index`` and
``dataset_from_index`` .. ``dataset_to_index`` (its global rows), and per camera
``videos/<key>/chunk_index``, ``file_index``, ``from_timestamp``, ``to_timestamp``
(seconds inside the concatenated video); ``stats/<feature>/<stat>`` hold its stats.
This module turns those rows into :class:`~adv_pipeline.lerobot.metadata.EpisodeMeta`
(file, first row in the file, video offsets) and refuses inconsistent ones, naming the
file, the episode and the fix. Only pyarrow, no LeRobot import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .format import (
    EPISODES_DIR,
    INFO_PATH,
    TASKS_PARQUET_PATH,
    format_error,
)

STATS_PREFIX = "stats/"


def _read(root: Path, rel: str) -> pa.Table:
    try:
        return pq.read_table(root / rel)
    except (pa.ArrowException, OSError) as exc:
        raise format_error(
            root, rel, f"cannot be read ({exc})", "restore the file from the source dataset"
        ) from exc


def load_tasks(root: Path) -> list[str]:
    """meta/tasks.parquet as the task strings in task_index order.

    LeRobot writes a pandas frame whose index is the task string and whose column is
    ``task_index``; a plain ``task`` column is accepted too."""
    if not (root / TASKS_PARQUET_PATH).is_file():
        raise format_error(
            root,
            TASKS_PARQUET_PATH,
            "file is missing (a v3.0 dataset lists its tasks there)",
            "restore it from the source dataset",
        )
    table = _read(root, TASKS_PARQUET_PATH)
    names = table.column_names
    text = "task" if "task" in names else next((n for n in names if n != "task_index"), None)
    if "task_index" not in names or text is None:
        raise format_error(
            root,
            TASKS_PARQUET_PATH,
            f"has columns {names}, expected the task strings and task_index",
            "rewrite it as LeRobot does (pandas: DataFrame({'task_index': ...}, index=tasks))",
        )
    index = table.column("task_index").to_pylist()
    tasks = [str(t) for t in table.column(text).to_pylist()]
    if sorted(index) != list(range(len(index))):
        raise format_error(
            root,
            TASKS_PARQUET_PATH,
            f"task_index values {sorted(index)[:10]} are not 0..{len(index) - 1}",
            "renumber the tasks contiguously from 0",
        )
    out = [""] * len(index)
    for i, t in zip(index, tasks):
        out[int(i)] = t
    return out


def episode_files(root: Path) -> list[str]:
    """The relative paths of meta/episodes/chunk-*/file-*.parquet, in order."""
    return sorted(p.relative_to(root).as_posix() for p in (root / EPISODES_DIR).glob("*/*.parquet"))


def _column(table: pa.Table, name: str, rel: str, root: Path) -> np.ndarray:
    if name not in table.column_names:
        raise format_error(
            root,
            rel,
            f"has no column {name!r} (every v3.0 episode row says where its frames are)",
            "rewrite the episode metadata with LeRobot (or restore it from the source)",
        )
    return table.column(name).to_numpy(zero_copy_only=False)


def load_episodes(root: Path, info: dict, video_keys: Sequence[str]) -> tuple[list, pa.Table]:
    """Every episode row of meta/episodes/ as EpisodeMeta (episode order), and the rows
    themselves (their ``stats/...`` columns carry per-episode stats).

    Checks that the rows tile the dataset: episode i's global rows start where episode
    i-1's end, the first at 0, and ``to - from`` equals its ``length``."""
    from .metadata import EpisodeMeta  # metadata.py imports this module

    rels = episode_files(root)
    if not rels:
        raise format_error(
            root,
            f"{EPISODES_DIR}/chunk-000/file-000.parquet",
            "no episode metadata (meta/episodes/chunk-*/file-*.parquet)",
            "restore meta/episodes/ from the source dataset",
        )
    tables = [_read(root, rel) for rel in rels]
    where = [rel for rel, t in zip(rels, tables) for _ in range(t.num_rows)]
    rows = pa.concat_tables(tables, promote_options="permissive")
    ids = _column(rows, "episode_index", rels[0], root).astype(np.int64)
    order = np.argsort(ids, kind="stable")
    rows, where = rows.take(pa.array(order)), [where[i] for i in order]
    ids = ids[order]
    lengths = _column(rows, "length", rels[0], root).astype(np.int64)
    start = _column(rows, "dataset_from_index", rels[0], root).astype(np.int64)
    stop = _column(rows, "dataset_to_index", rels[0], root).astype(np.int64)
    chunk = _column(rows, "data/chunk_index", rels[0], root).astype(np.int64)
    file = _column(rows, "data/file_index", rels[0], root).astype(np.int64)
    tasks = rows.column("tasks").to_pylist() if "tasks" in rows.column_names else [[]] * len(ids)
    expected = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(ids) else lengths
    for i in range(len(ids)):
        e = int(ids[i])
        if stop[i] - start[i] != lengths[i]:
            raise format_error(
                root,
                where[i],
                f"episode {e}: rows dataset_from_index {start[i]} .. dataset_to_index {stop[i]} "
                f"are {stop[i] - start[i]} frames but its length is {lengths[i]}",
                "make the row range and the length agree (rewrite the metadata with LeRobot)",
            )
        if start[i] != expected[i]:
            what = "overlaps the episode before it" if start[i] < expected[i] else "leaves a gap"
            raise format_error(
                root,
                where[i],
                f"episode {e}: its rows start at {start[i]} but the episodes before it end at "
                f"{expected[i]} (the row range {what}; each episode's rows follow the last)",
                "renumber dataset_from_index/dataset_to_index episode by episode from 0, or "
                "restore the metadata from the source",
            )
    videos = {}
    for key in video_keys:
        prefix = f"videos/{key}/"
        videos[key] = (
            _column(rows, prefix + "chunk_index", rels[0], root).astype(np.int64),
            _column(rows, prefix + "file_index", rels[0], root).astype(np.int64),
            _column(rows, prefix + "from_timestamp", rels[0], root).astype(np.float64),
            _column(rows, prefix + "to_timestamp", rels[0], root).astype(np.float64),
        )
    data_rel = [info["data_path"].format(chunk_index=c, file_index=f) for c, f in zip(chunk, file)]
    # an episode's first row inside its file: the file's episodes follow each other
    first_of_file: dict[str, int] = {}
    for rel, s in zip(data_rel, start):
        first_of_file.setdefault(rel, int(s))
    episodes = []
    for i in range(len(ids)):
        cams = tuple(
            (
                key,
                info["video_path"].format(
                    video_key=key, chunk_index=int(v[0][i]), file_index=int(v[1][i])
                ),
                float(v[2][i]),
                float(v[3][i]),
            )
            for key, v in videos.items()
        )
        episodes.append(
            EpisodeMeta(
                int(ids[i]),
                tuple(tasks[i] or ()),
                int(lengths[i]),
                data_rel[i],
                int(start[i]) - first_of_file[data_rel[i]],
                cams,
            )
        )
    return episodes, rows


def episodes_stats_json(rows: pa.Table) -> dict[int, dict[str, dict[str, list]]]:
    """The ``stats/<feature>/<stat>`` columns of the episode rows as
    {episode_index: {feature: {stat: nested list}}}, the form episodes_stats.jsonl has."""
    cols = [c for c in rows.column_names if c.startswith(STATS_PREFIX)]
    ids = rows.column("episode_index").to_pylist()
    out: dict[int, dict[str, dict[str, list]]] = {int(e): {} for e in ids}
    for c in cols:
        feature, stat = c[len(STATS_PREFIX) :].rsplit("/", 1)
        for e, value in zip(ids, rows.column(c).to_pylist()):
            if value is not None:
                out[int(e)].setdefault(feature, {})[stat] = value
    return out


def check_info(root: Path, info: dict) -> None:
    """The v3.0 path templates name chunk and file indices."""
    for field in ("data_path", "video_path"):
        template = info.get(field)
        if template is None:
            continue
        if "{file_index" not in template or "{chunk_index" not in template:
            raise format_error(
                root,
                INFO_PATH,
                f"{field} {template!r} has no {{chunk_index}}/{{file_index}} (v3.0 templates "
                f"name files, not episodes)",
                "use LeRobot's v3.0 template, e.g. \"data/chunk-{chunk_index:03d}/"
                'file-{file_index:03d}.parquet"',
            )
