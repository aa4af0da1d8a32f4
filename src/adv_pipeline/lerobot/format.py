"""Constants and small helpers of the LeRobot on-disk formats v2.1 and v3.0.

v2.1 layout, one file per episode (``c = episode_index // chunks_size``)::

    meta/info.json, meta/episodes.jsonl, meta/episodes_stats.jsonl, meta/tasks.jsonl
    data/chunk-{c:03d}/episode_{i:06d}.parquet
    videos/chunk-{c:03d}/{video_key}/episode_{i:06d}.mp4

v3.0 layout, many episodes per file (see :mod:`.meta_v30`)::

    meta/info.json, meta/stats.json, meta/tasks.parquet, meta/episodes/chunk-*/file-*.parquet
    data/chunk-{c:03d}/file-{f:03d}.parquet
    videos/{video_key}/chunk-{c:03d}/file-{f:03d}.mp4
"""

from __future__ import annotations

import os
from pathlib import Path

from adv_pipeline.errors import InputError

CODEBASE_VERSION = "v2.1"
V30 = "v3.0"
FORMATS = (CODEBASE_VERSION, V30)  # the codebase versions read and written
IMAGE_KEY_PREFIX = "observation.images."  # video keys are <prefix><camera>
DEFAULT_CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"

V30_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V30_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V30_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
# LeRobot 0.4+'s defaults: a new data / video file starts past these sizes
DEFAULT_DATA_FILE_SIZE_MB = 100
DEFAULT_VIDEO_FILE_SIZE_MB = 200

INFO_PATH = "meta/info.json"
EPISODES_DIR = "meta/episodes"
TASKS_PARQUET_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes.jsonl"
EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
TASKS_PATH = "meta/tasks.jsonl"
# our addition: the model that computes a derived column from the cameras (a feature column
# written by Stage 2), one folder per column holding one checkpoint step:
# meta/encoders/<column>/<step>/ (model.safetensors, metadata.json, assets/)
ENCODERS_DIR = "meta/encoders"
# v2.0-style aggregate stats; LeRobot v2.1 recomputes them from episodes_stats, but
# dataset checkers and older tools still read this file.
STATS_PATH = "meta/stats.json"

REQUIRED_INFO_FIELDS = (
    "codebase_version",
    "fps",
    "features",
    "data_path",
    "total_episodes",
    "total_frames",
    "total_tasks",
)

# Columns every LeRobot parquet file carries, in LeRobot's order (they come last).
INDEX_FEATURES: dict[str, dict] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

# LeRobot's v2.1 loader rejects timestamps further than this from frame_index / fps.
TIMESTAMP_TOLERANCE_S = 1e-4


class DatasetFormatError(InputError):
    """A LeRobot dataset on disk is malformed. The message names the file and the fix."""


def format_error(root: Path, relpath: str, problem: str, fix: str) -> DatasetFormatError:
    """Build a :class:`DatasetFormatError` naming ``root/relpath``, the problem and the fix."""
    return DatasetFormatError(f"{Path(root) / relpath}: {problem}. Fix: {fix}")


def episode_chunk(episode_index: int, chunks_size: int) -> int:
    """Chunk number of an episode (``episode_index // chunks_size``)."""
    return int(episode_index) // int(chunks_size)


def data_relpath(info: dict, episode_index: int) -> str:
    """Relative path of an episode's parquet file, from info.json's template."""
    chunk = episode_chunk(episode_index, info.get("chunks_size", DEFAULT_CHUNKS_SIZE))
    return info["data_path"].format(episode_chunk=chunk, episode_index=int(episode_index))


def video_relpath(info: dict, episode_index: int, video_key: str) -> str:
    """Relative path of one camera's MP4 for an episode, from info.json's template."""
    chunk = episode_chunk(episode_index, info.get("chunks_size", DEFAULT_CHUNKS_SIZE))
    return info["video_path"].format(
        episode_chunk=chunk, episode_index=int(episode_index), video_key=video_key
    )


def video_keys(features: dict) -> list[str]:
    """Feature names stored as videos (``dtype == "video"``), in info.json order."""
    return [k for k, ft in features.items() if ft.get("dtype") == "video"]


def camera_name(video_key: str) -> str:
    """Short camera name of a video key: ``observation.images.top_head`` -> ``top_head``."""
    return video_key.rsplit(".", 1)[-1]


def lerobot_home() -> Path:
    """Where LeRobot keeps datasets by repo id: ``$HF_LEROBOT_HOME``, else
    ``$HF_HOME/lerobot``, else ``~/.cache/huggingface/lerobot`` (as LeRobot resolves it)."""
    if os.environ.get("HF_LEROBOT_HOME"):
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or "~/.cache/huggingface"
    return Path(hf_home).expanduser() / "lerobot"


def find_dataset(path: str | Path, repo_id: str | None = None) -> Path:
    """The folder of a LeRobot dataset named by ``path``, or by the repo id ``user/name``
    under :func:`lerobot_home` when no dataset is at ``path`` (nothing is downloaded).

    Args:
        path: the dataset's folder as configured (Kedro makes a relative one absolute,
            under the project).
        repo_id: the ``user/name`` to look up; by default ``path`` relative to the working
            directory when it has exactly two parts.

    Raises:
        DatasetFormatError: neither holds a dataset; the message says where it looked.
    """
    path = Path(path)
    if (path / INFO_PATH).is_file():
        return path
    if repo_id is None:
        try:
            rel = path.resolve().relative_to(Path.cwd().resolve())
        except (OSError, ValueError):
            rel = path
        repo_id = rel.as_posix() if len(rel.parts) == 2 and not rel.is_absolute() else None
    looked = [str(path)]
    if repo_id is not None:
        cached = lerobot_home() / repo_id
        if (cached / INFO_PATH).is_file():
            return cached
        looked.append(f"{cached} (repo id {repo_id} under LeRobot's home, $HF_LEROBOT_HOME)")
    raise DatasetFormatError(
        f"{path}: no LeRobot dataset here ({INFO_PATH} missing; looked in "
        f"{' and '.join(looked)}). Fix: run the pipeline that writes it (e.g. `kedro run "
        f"--pipelines demo`), or pass its folder or repo id as a runtime parameter "
        f'(`--params "<dataset>_path=/path/to/dataset"` or `<dataset>_path=user/name`)'
    )
