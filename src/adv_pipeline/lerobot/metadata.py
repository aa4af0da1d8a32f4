"""A LeRobot dataset's metadata (v2.1 or v3.0): info.json, tasks, episodes and where they are.

:class:`DatasetMetadata` loads and checks ``meta/`` only, no parquet or video file: info.json
(required fields, fps, codebase version, path templates), the tasks, the episodes (indices
0..E-1, none empty, totals as info.json says) and the per-episode stats; it answers where
an episode's rows and frames are (:class:`EpisodeMeta`: file, first row there, per camera
the video file and time range), the episode lengths and offsets, the features and the
fingerprint. v2.1's files (JSON lines) are read here, v3.0's (parquet) by :mod:`.meta_v30`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from adv_pipeline.checkpoints import list_steps

from . import meta_v30
from .format import (
    ENCODERS_DIR,
    EPISODES_DIR,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    FORMATS,
    INFO_PATH,
    REQUIRED_INFO_FIELDS,
    TASKS_PARQUET_PATH,
    TASKS_PATH,
    V30,
    DatasetFormatError,
    data_relpath,
    format_error,
    video_keys,
    video_relpath,
)
from .stats import Stats, stats_from_json


@dataclass(frozen=True)
class EpisodeMeta:
    """One episode: its metadata line and where its frames are.

    ``data_file`` is the parquet file (relative path) holding its rows from
    ``row_start``; ``videos`` holds ``(video_key, relative path, from_timestamp s,
    to_timestamp s)`` per camera, the episode's time range inside that video."""

    episode_index: int
    tasks: tuple[str, ...]
    length: int
    data_file: str = ""
    row_start: int = 0
    videos: tuple[tuple[str, str, float, float], ...] = ()

    def video(self, key: str) -> tuple[str, float]:
        """(relative path, from_timestamp s) of camera ``key``."""
        for k, rel, start, _ in self.videos:
            if k == key:
                return rel, start
        raise KeyError(key)


def _read_jsonl(root: Path, relpath: str) -> list[dict]:
    """The rows of a JSON-lines file of ``meta/`` (blank lines skipped); refused if it is
    missing or a line is not JSON."""
    path = root / relpath
    if not path.is_file():
        raise format_error(
            root, relpath, "file is missing", "restore it or rewrite the dataset's metadata"
        )
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise format_error(
                root, relpath, f"line {n} is not valid JSON ({exc.msg})", "fix or remove that line"
            ) from exc
    return rows


class DatasetMetadata:
    """A LeRobot dataset directory's metadata (v2.1 or v3.0), loaded and checked up front;
    :class:`~adv_pipeline.lerobot.reader.LeRobotDatasetReader` builds on it.

    Raises :class:`DatasetFormatError` naming the file and the fix when ``meta/`` is
    inconsistent. Opens no parquet or video file.

    Args:
        root: the dataset directory (holding meta/, data/, videos/).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetFormatError(
                f"{self.root}: dataset directory not found. Fix: check the path "
                "(catalog.yml or the <dataset>_path runtime parameter)"
            )
        self.info = self._load_info()
        self.version: str = self.info["codebase_version"]
        self.features: dict[str, dict] = self.info["features"]
        self.fps: int = int(self.info["fps"])
        self.video_keys: list[str] = video_keys(self.features)
        self._episode_rows: pa.Table | None = None  # v3.0's meta/episodes rows
        self.tasks: list[str] = self._load_tasks()
        self.episodes: list[EpisodeMeta] = self._load_episodes()

    # ------------------------------------------------------------------ meta/ loaded and checked
    def _load_info(self) -> dict:
        path = self.root / INFO_PATH
        if not path.is_file():
            raise format_error(
                self.root,
                INFO_PATH,
                "file is missing",
                "this is not a LeRobot dataset root, or its meta/ folder is incomplete",
            )
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise format_error(
                self.root, INFO_PATH, f"not valid JSON ({exc.msg})", "repair the file"
            ) from exc
        missing = [f for f in REQUIRED_INFO_FIELDS if f not in info]
        if missing:
            raise format_error(
                self.root,
                INFO_PATH,
                f"missing fields {missing}",
                "add them (see LeRobot v2.1 info.json)",
            )
        fps = info["fps"]
        number = isinstance(fps, int | float) and not isinstance(fps, bool)
        whole = number and float(fps).is_integer()
        if not whole or fps <= 0:
            raise format_error(
                self.root,
                INFO_PATH,
                f"fps is {fps!r} ({type(fps).__name__}), not a positive whole number of frames "
                f"per second",
                'write the recording\'s rate as a number, e.g. "fps": 30',
            )
        version = info["codebase_version"]
        if version not in FORMATS:
            fix = (
                "convert it to v2.1 with LeRobot 0.3.x "
                "(lerobot.datasets.v21.convert_dataset_v20_to_v21)"
                if str(version).startswith("v2")
                else "convert it to v3.0 with LeRobot 0.4 or later "
                "(lerobot.datasets.v30.convert_dataset_v21_to_v30)"
            )
            raise format_error(
                self.root,
                INFO_PATH,
                f"codebase_version is {version!r}; this project reads {' and '.join(FORMATS)}",
                fix,
            )
        if video_keys(info["features"]) and "video_path" not in info:
            raise format_error(
                self.root,
                INFO_PATH,
                "has video features but no video_path",
                f"add the {version} video_path template",
            )
        if version == V30:
            meta_v30.check_info(self.root, info)
        return info

    def _load_tasks(self) -> list[str]:
        if self.version == V30:
            return self._counted_tasks(meta_v30.load_tasks(self.root), TASKS_PARQUET_PATH)
        rows = _read_jsonl(self.root, TASKS_PATH)
        by_index = {}
        for row in rows:
            if "task_index" not in row or "task" not in row:
                raise format_error(
                    self.root,
                    TASKS_PATH,
                    f"row {row} lacks task_index or task",
                    'each line must be {"task_index": k, "task": str}',
                )
            by_index[int(row["task_index"])] = str(row["task"])
        if sorted(by_index) != list(range(len(by_index))):
            raise format_error(
                self.root,
                TASKS_PATH,
                f"task_index values {sorted(by_index)} are not 0..{len(by_index) - 1}",
                "renumber the tasks contiguously from 0",
            )
        return self._counted_tasks([by_index[i] for i in range(len(by_index))], TASKS_PATH)

    def _counted_tasks(self, tasks: list[str], rel: str) -> list[str]:
        if len(tasks) != int(self.info["total_tasks"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_tasks is {self.info['total_tasks']} but {rel} has {len(tasks)} tasks",
                "make them agree",
            )
        return tasks

    def _episodes_v21(self) -> list[EpisodeMeta]:
        rows = _read_jsonl(self.root, EPISODES_PATH)
        episodes = []
        for row in rows:
            try:
                e = int(row["episode_index"])
                ep = EpisodeMeta(
                    e,
                    tuple(row.get("tasks", [])),
                    int(row["length"]),
                    data_relpath(self.info, e),
                    0,
                    tuple(
                        (k, video_relpath(self.info, e, k), 0.0, int(row["length"]) / self.fps)
                        for k in self.video_keys
                    ),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise format_error(
                    self.root,
                    EPISODES_PATH,
                    f"row {row} lacks episode_index or length",
                    'each line must be {"episode_index": i, "tasks": [...], "length": T}',
                ) from exc
            episodes.append(ep)
        return episodes

    def _load_episodes(self) -> list[EpisodeMeta]:
        episodes_path = self._episodes_file
        if self.version == V30:
            episodes, self._episode_rows = meta_v30.load_episodes(
                self.root, self.info, self.video_keys
            )
        else:
            episodes = self._episodes_v21()
        episodes.sort(key=lambda e: e.episode_index)
        empty = [e.episode_index for e in episodes if e.length < 1]
        if empty:
            raise format_error(
                self.root,
                episodes_path,
                f"episode(s) {empty[:10]} have no frames (length < 1)",
                "remove the empty episodes (and renumber the rest: `lerobot-doctor fix "
                "<dataset> --fixes reindex`), or restore their frames",
            )
        indices = [e.episode_index for e in episodes]
        if len(set(indices)) != len(indices):
            dup = sorted({i for i in indices if indices.count(i) > 1})
            raise format_error(
                self.root,
                episodes_path,
                f"repeats episode_index {dup}",
                "keep one line per episode",
            )
        if indices != list(range(len(indices))):
            gap = next(k for k, i in enumerate(indices) if i != k)
            raise format_error(
                self.root,
                episodes_path,
                f"episode indices are not 0..{len(indices) - 1} (no episode {gap}); LeRobot "
                f"indexes episodes by position",
                "renumber the episodes contiguously from 0 (e.g. `lerobot-doctor fix <dataset> "
                "--fixes reindex`)",
            )
        if len(episodes) != int(self.info["total_episodes"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_episodes is {self.info['total_episodes']} but {episodes_path} lists "
                f"{len(episodes)} episodes",
                "make them agree",
            )
        total = sum(e.length for e in episodes)
        if total != int(self.info["total_frames"]):
            raise format_error(
                self.root,
                INFO_PATH,
                f"total_frames is {self.info['total_frames']} but the episode lengths sum to "
                f"{total}",
                "make them agree",
            )
        return episodes

    # ------------------------------------------------------------------ layout
    @property
    def _tasks_file(self) -> str:
        return TASKS_PARQUET_PATH if self.version == V30 else TASKS_PATH

    @property
    def _episodes_file(self) -> str:
        return EPISODES_DIR if self.version == V30 else EPISODES_PATH

    def data_relpath(self, episode_index: int) -> str:
        """The parquet file holding the episode's rows (v3.0: with other episodes')."""
        return self.episode(episode_index).data_file

    def data_path(self, episode_index: int) -> Path:
        return self.root / self.data_relpath(episode_index)

    def video_relpath(self, episode_index: int, video_key: str) -> str:
        """The MP4 holding the episode's frames of camera ``video_key`` (v3.0: from
        :meth:`first_video_frame` on, after other episodes')."""
        return self.episode(episode_index).video(video_key)[0]

    def video_path(self, episode_index: int, video_key: str) -> Path:
        return self.root / self.video_relpath(episode_index, video_key)

    def first_video_frame(self, episode: EpisodeMeta | int, video_key: str) -> int:
        """Index in its video file of the episode's frame 0 (0 in v2.1)."""
        ep = self.episode(episode) if isinstance(episode, int | np.integer) else episode
        return int(round(ep.video(video_key)[1] * self.fps))

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(sum(e.length for e in self.episodes))

    @cached_property
    def episode_indices(self) -> np.ndarray:
        """(E,) int64 episode indices, ascending."""
        return np.array([e.episode_index for e in self.episodes], dtype=np.int64)

    @cached_property
    def lengths(self) -> np.ndarray:
        """(E,) int64 frames per episode, in episode order."""
        return np.array([e.length for e in self.episodes], dtype=np.int64)

    @cached_property
    def offsets(self) -> np.ndarray:
        """(E + 1,) int64 start row of each episode in the concatenated columns."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def episode(self, episode_index: int) -> EpisodeMeta:
        pos = int(np.searchsorted(self.episode_indices, episode_index))
        if pos >= len(self.episodes) or self.episodes[pos].episode_index != episode_index:
            raise KeyError(
                f"{self.root}: no episode {episode_index} (episodes are "
                f"{self.episode_indices.min()}..{self.episode_indices.max()})"
            )
        return self.episodes[pos]

    @cached_property
    def episodes_stats_json(self) -> dict[int, dict[str, dict[str, list]]]:
        """meta/episodes_stats.jsonl as parsed (v3.0: the episode rows' stats columns),
        {episode_index: {feature: {stat: nested list}}} ({} if absent): what a derived
        dataset carries over unchanged."""
        if self._episode_rows is not None:
            return meta_v30.episodes_stats_json(self._episode_rows)
        if not (self.root / EPISODES_STATS_PATH).is_file():
            return {}
        return {
            int(r["episode_index"]): r["stats"] for r in _read_jsonl(self.root, EPISODES_STATS_PATH)
        }

    @cached_property
    def episodes_stats(self) -> dict[int, dict[str, Stats]]:
        """meta/episodes_stats.jsonl as {episode_index: {feature: numpy stats}}."""
        return {e: stats_from_json(s) for e, s in self.episodes_stats_json.items()}

    def encoders(self) -> dict[str, Path]:
        """{column: checkpoint step folder} of the derived columns that carry the model
        computing them from the cameras (``meta/encoders/<column>/<step>/``)."""
        root = self.root / ENCODERS_DIR
        out = {}
        for col in sorted(p.name for p in root.iterdir()) if root.is_dir() else []:
            steps = list_steps(root / col)
            if col in self.features and steps:
                out[col] = root / col / str(steps[-1])
        return out

    def fingerprint(self) -> str:
        """Short hash of the metadata (info, episodes, tasks, per-episode stats, which
        change with any column's values): identifies the dataset's content."""
        import hashlib

        h = hashlib.sha256()
        v30 = (TASKS_PARQUET_PATH, *meta_v30.episode_files(self.root))
        for rel in (INFO_PATH, EPISODES_PATH, TASKS_PATH, EPISODES_STATS_PATH, *v30):
            if (self.root / rel).is_file():
                h.update((self.root / rel).read_bytes())
        return h.hexdigest()[:16]

    def float_columns(self) -> list[str]:
        """Parquet features holding floating-point values (those that can be NaN/inf)."""
        floats = [
            k
            for k, ft in self.features.items()
            if ft.get("dtype") in ("float16", "float32", "float64")
        ]
        return [k for k in floats if k != "timestamp"]
