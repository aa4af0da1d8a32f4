"""Write LeRobot datasets (v2.1 or v3.0) with one writer, :class:`DatasetWriter`, and its
two front ends: :class:`NewDataset` (generated episodes) and :class:`DerivedDataset` (an
existing dataset with changed or added columns, new tasks, its videos linked).

Episodes are written one at a time, atomically, into a staging folder beside the
destination, which is published by one rename at the end: a failed run leaves no half
dataset and never touches its input; the destination is replaced only if this project
wrote it, and never when it is, holds or lies inside the input. Metadata (episodes.jsonl
tasks, info.json totals, episodes_stats, stats.json) is regenerated from what was
written, so it stays true.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from adv_pipeline.crash import die_with_parent, failpoint
from adv_pipeline.outputs import (
    DATASET,
    check_output,
    output_lock,
    replace_path,
    sweep_debris,
    temporary_path,
    write_marker,
)
from adv_pipeline.quiet import jax_free_fork

from . import pack_v30
from .columns import column_to_numpy
from .format import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNKS_SIZE,
    ENCODERS_DIR,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    FORMATS,
    INDEX_FEATURES,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    V30,
    VIDEO_PATH,
    DatasetFormatError,
    camera_name,
    data_relpath,
    video_keys,
    video_relpath,
)
from .reader import LeRobotDatasetReader
from .stats import (
    Stats,
    aggregate_stats,
    column_stats,
    sample_indices,
    segment_stats,
    stats_to_json,
    video_stats,
)
from .video import ENCODER_CODECS, VideoOptions, VideoWriter, cut_video, encoder_options

log = logging.getLogger(__name__)


class EpisodeData(Protocol):
    """What a generated episode gives the writer.

    ``columns`` holds the non-video features, (T,) or (T, D) arrays; ``iter_frames``
    yields ``{camera: (H, W, 3) uint8}`` frame by frame (camera = short name such as
    ``top_head`` or the full video key).
    """

    length: int
    columns: Mapping[str, np.ndarray]

    def iter_frames(self) -> Iterator[Mapping[str, np.ndarray]]: ...


# ---------------------------------------------------------------------------- helpers
def feature_spec(values: np.ndarray, names: Sequence[str] | None = None) -> dict:
    """info.json feature entry for a (T,) or (T, D) column."""
    arr = np.asarray(values)
    dtype = "bool" if arr.dtype == np.bool_ else str(arr.dtype)
    shape = [1] if arr.ndim == 1 else list(arr.shape[1:])
    return {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}


def video_feature_spec(height: int, width: int, fps: int, options: VideoOptions) -> dict:
    """info.json entry for a video feature."""
    codec = ENCODER_CODECS.get(options.codec, options.codec)
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": codec,
            "video.pix_fmt": options.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def _as_feature_dtype(values: np.ndarray, spec: Mapping) -> np.ndarray:
    return np.asarray(values).astype(
        np.dtype(spec["dtype"]) if spec["dtype"] != "bool" else np.bool_, copy=False
    )


def _arrow_column(values: np.ndarray, spec: Mapping) -> pa.Array:
    arr = _as_feature_dtype(values, spec)
    shape = list(spec["shape"])
    if shape == [1]:
        return pa.array(arr.reshape(len(arr)))
    width = int(np.prod(shape))
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(len(arr) * width)), width)


def with_columns(
    table: pa.Table, columns: Mapping[str, np.ndarray], features: Mapping[str, dict]
) -> pa.Table:
    """``table`` with each of ``columns`` replaced in place or appended, typed by ``features``."""
    for name, values in columns.items():
        col = _arrow_column(np.asarray(values), features[name])
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return table


def index_features_last(features: Mapping[str, dict]) -> dict[str, dict]:
    """Features reordered so LeRobot's index columns come last, as in LeRobot's files."""
    return {
        **{k: v for k, v in features.items() if k not in INDEX_FEATURES},
        **{k: features[k] for k in INDEX_FEATURES if k in features},
    }


def episode_table(columns: Mapping[str, np.ndarray], features: Mapping[str, dict]) -> pa.Table:
    """An episode's parquet table in ``features`` order (video features skipped)."""
    names = [k for k, ft in features.items() if ft["dtype"] not in ("video", "image")]
    missing = [k for k in names if k not in columns]
    if missing:
        raise ValueError(f"episode lacks columns {missing} declared in features")
    return pa.table({k: _arrow_column(columns[k], features[k]) for k in names})


def index_columns(
    length: int, fps: int, episode_index: int, start_index: int, task_index: np.ndarray | int
) -> dict[str, np.ndarray]:
    """LeRobot's bookkeeping columns for one episode of ``length`` frames."""
    frame = np.arange(length, dtype=np.int64)
    return {
        "timestamp": (frame / fps).astype(np.float32),
        "frame_index": frame,
        "episode_index": np.full(length, episode_index, dtype=np.int64),
        "index": start_index + frame,
        "task_index": np.broadcast_to(np.asarray(task_index, dtype=np.int64), (length,)).copy(),
    }


def numeric_stats(
    columns: Mapping[str, np.ndarray], features: Mapping[str, dict]
) -> dict[str, Stats]:
    """Stats of every non-video feature present in ``columns``."""
    return {
        k: column_stats(columns[k])
        for k, ft in features.items()
        if ft["dtype"] not in ("video", "image", "string") and k in columns
    }


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: integers and booleans (indices, flags).

    Float state/action values are nearly all distinct, so pyarrow's default (try a
    dictionary on every column, then fall back) only costs time and space: on 3M frames
    of 14-D state/action, writing is 2.5x faster and the files 30% smaller without it.
    """

    def small_domain(t: pa.DataType) -> bool:
        if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
            return small_domain(t.value_type)
        return pa.types.is_integer(t) or pa.types.is_boolean(t)

    return [f.name for f in schema if small_domain(f.type)]


def write_parquet(path: Path, table: pa.Table, atomic: bool = False) -> None:
    """Write one episode's parquet (snappy; dictionaries only where they pay).

    ``atomic``: write a temporary file beside ``path`` and rename it into place, so a
    reader never sees a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    target = temporary_path(path) if atomic else path
    meta = table.schema.metadata or {}
    if b"huggingface" in meta:  # a source's `datasets` features: stale once columns change,
        # and unreadable by older `datasets` (LeRobot 0.3's) when a newer one wrote them
        kept = {k: v for k, v in meta.items() if k != b"huggingface"}
        table = table.replace_schema_metadata(kept)
    pq.write_table(
        table, target, compression="snappy", use_dictionary=_dictionary_columns(table.schema)
    )
    if atomic:
        os.replace(target, path)


def _write_jsonl(path: Path, rows: Sequence[Mapping]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy. Hard links, unlike
    symlinks, survive the source being replaced or deleted and look like plain files."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:  # a v3.0 file shared by episodes linked by another thread
        if not os.path.samefile(src, dst):
            raise
    except OSError:
        shutil.copy2(src, dst)


def write_meta(
    root: Path,
    info: dict,
    tasks: Sequence[str],
    episodes: Sequence[Mapping],
    episodes_stats: Sequence[Mapping[str, Stats]],
) -> None:
    """Write meta/ from what was written: totals, tasks, per-episode and aggregate stats.

    Args:
        info: info.json without totals (features, fps, paths, robot_type...).
        tasks: task strings; row k of tasks.jsonl is task_index k.
        episodes: rows ``{"episode_index", "tasks", "length"}`` in episode order.
        episodes_stats: per-episode {feature: stats}, same order as ``episodes``.
    """
    n_eps = len(episodes)
    chunks_size = int(info.get("chunks_size", DEFAULT_CHUNKS_SIZE))
    n_videos = len(video_keys(info["features"]))
    last = max((int(e["episode_index"]) for e in episodes), default=-1)
    info = {
        **info,
        "codebase_version": CODEBASE_VERSION,
        "total_episodes": n_eps,
        "total_frames": int(sum(int(e["length"]) for e in episodes)),
        "total_tasks": len(tasks),
        "total_videos": n_eps * n_videos,
        "total_chunks": last // chunks_size + 1 if n_eps else 0,
        "chunks_size": chunks_size,
        "splits": {"train": f"0:{n_eps}"},
    }
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (root / INFO_PATH).write_text(json.dumps(info, indent=4))
    _write_jsonl(root / TASKS_PATH, [{"task_index": i, "task": t} for i, t in enumerate(tasks)])
    _write_jsonl(root / EPISODES_PATH, list(episodes))
    _write_jsonl(
        root / EPISODES_STATS_PATH,
        [
            {"episode_index": int(e["episode_index"]), "stats": stats_to_json(s)}
            for e, s in zip(episodes, episodes_stats)
        ],
    )
    (root / STATS_PATH).write_text(
        json.dumps(stats_to_json(aggregate_stats(episodes_stats)), indent=2)
    )


# ---------------------------------------------------------------------------- the writer
WORK_SUFFIX = ".work"  # resumable staging folder: .<name>.work beside the destination
SIDECARS = "meta/episodes.pending"  # per-episode meta of a resumable write, until finalize


class DatasetWriter:
    """The one writer of the LeRobot formats (every dataset the project writes).

    ``info["codebase_version"]`` chooses the format: v2.1 (one file per episode) or v3.0
    (episodes packed into files at :meth:`finalize`, see :mod:`.pack_v30`; each episode
    is still staged in its own file, so a killed write resumes the same way).

    Episodes are written one at a time, each atomically, into a staging folder beside the
    destination; :meth:`finalize` writes ``meta/`` from what was written (totals, tasks,
    episodes, per-episode and aggregate stats) and publishes the folder at the
    destination with one rename, so a half dataset is never visible there.

    The destination is checked first (:func:`adv_pipeline.outputs.check_output`: never an
    input, replaced only if this project wrote it or with ``overwrite``) and locked while
    writing. With an ``identity`` (what decides the episodes' content) the staging folder
    is ``.<name>.work/`` and resumable: a writer opened again with the same identity keeps
    the episodes written before (:meth:`done`), a different identity (or ``restart``)
    starts afresh; the published dataset keeps the identity (:func:`written_by`).
    Without one, it is a temporary folder that the next writer sweeps once its process is
    dead. ``joined=True`` opens the staging folder of a writer that another process (the
    parent of torchrun ranks) opened, without checking or locking again. ``encoders``
    (``{column: checkpoint step folder}``) are copied to ``meta/encoders/<column>/<step>/``
    for the columns the dataset has: the models that compute derived columns (Stage 2's
    image features) travel with them. ``pack_videos`` (v3.0, new videos): each camera's
    episode videos are staged apart and joined into shared files at :meth:`finalize`
    (without it a v3.0 episode keeps its own video file, or the source's it links).

    Use it as a context manager; leaving the block without :meth:`finalize` releases the
    lock (a resumable staging folder stays for the next run).
    """

    def __init__(
        self,
        root: str | Path,
        info: Mapping,
        tasks: Sequence[str] = (),
        *,
        inputs: Mapping[str, str | Path] | None = None,
        overwrite: bool = False,
        identity: Mapping | None = None,
        restart: bool = False,
        joined: bool = False,
        encoders: Mapping[str, Path] | None = None,
        pack_videos: bool = False,
    ):
        self.root = Path(root)
        self.pack_videos = pack_videos
        self.encoders = {k: Path(v) for k, v in (encoders or {}).items()}
        self.format = str(info.get("codebase_version") or CODEBASE_VERSION)
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r}: choose one of {list(FORMATS)}")
        self.info = pack_v30.v30_info(info) if self.format == V30 else v21_info(info)
        self.features: dict = dict(self.info["features"])
        self.tasks: list[str] = list(tasks)
        self.identity = dict(identity) if identity is not None else None
        self._restart = restart
        self._episodes: dict[int, dict] = {}  # episode_index -> {"row", "stats"} (non-resumable)
        self._lock = ExitStack()
        if joined:
            self.staging = work_folder(self.root)
            return
        check_output(self.root, DATASET, inputs=inputs or {}, overwrite=overwrite)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._lock.enter_context(output_lock(self.root))
        try:
            sweep_debris(self.root.parent, self.root.name)
            self.staging = self._open_staging()
        except BaseException:
            self._lock.close()
            raise

    def _open_staging(self) -> Path:
        if self.identity is None:
            staging = temporary_path(self.root)
            staging.mkdir()
            return staging
        staging = work_folder(self.root)
        stamp = staging / IDENTITY_FILE
        previous = json.loads(stamp.read_text()) if stamp.is_file() else None
        if staging.exists() and (previous != self.identity or self._restart):
            if previous is not None:
                log.warning(
                    "%s: earlier episodes were written from other inputs (%s); starting afresh",
                    staging,
                    previous,
                )
            shutil.rmtree(staging)
        staging.mkdir(parents=True, exist_ok=True)
        sweep_debris(staging, recursive=True)  # half-written files of a killed writer
        (staging / INFO_PATH).unlink(missing_ok=True)  # metadata of an interrupted finalize
        stamp.write_text(json.dumps(self.identity, indent=2))
        return staging

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def close(self) -> None:
        """Release the destination (a temporary staging folder is removed)."""
        if self.identity is None and self._lock._exit_callbacks and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.close()

    # ------------------------------------------------------------------ episodes
    def data_path(self, episode_index: int) -> Path:
        """Where the staging folder keeps an episode's rows (v3.0: until packed)."""
        if self.format == V30:
            return self.staging / SIDECARS / f"data/episode_{int(episode_index):06d}.parquet"
        return self.staging / data_relpath(self.info, episode_index)

    def video_relpath(self, episode_index: int, video_key: str) -> str:
        """An episode's own video file (v3.0: a file holding that one episode)."""
        if self.format == V30 and self.pack_videos:  # staged, joined at finalize
            return f"{SIDECARS}/videos/{video_key}/episode_{int(episode_index):06d}.mp4"
        if self.format == V30:
            chunk, file = pack_v30.file_indices(episode_index, int(self.info["chunks_size"]))
            return self.info["video_path"].format(
                video_key=video_key, chunk_index=chunk, file_index=file
            )
        return video_relpath(self.info, episode_index, video_key)

    def video_path(self, episode_index: int, video_key: str) -> Path:
        """Where the staging folder keeps an episode's video (encoders write there)."""
        return self.staging / self.video_relpath(episode_index, video_key)

    def task_index(self, task: str) -> int:
        """The row of ``task`` in tasks.jsonl (appended when new)."""
        if task not in self.tasks:
            self.tasks.append(task)
        return self.tasks.index(task)

    def done(self, episode_index: int) -> bool:
        """True if a resumable write already holds this episode."""
        return (self.staging / _sidecar(episode_index)).is_file()

    def write_episode(
        self,
        episode_index: int,
        table: pa.Table,
        stats: Mapping[str, Stats | Mapping] | None = None,
        videos: Mapping[str, Path] | None = None,
        video_stats: Mapping[str, Stats] | None = None,
        placements: Mapping[str, pack_v30.Placement] | None = None,
    ) -> None:
        """Write one episode atomically.

        Args:
            table: the episode's parquet table, every non-video feature (index columns
                included), in ``info["features"]`` order.
            stats: per-feature stats already known (e.g. carried over from a source);
                the other numeric features' stats are computed from ``table``.
            videos: video key -> an existing file to hard-link (else copy) as the
                episode's video; videos not given must already be at :meth:`video_path`.
            video_stats: stats of the videos written here (sampled frames).
            placements: per video key, where the episode lies in its ``videos`` file
                when that file holds several episodes (a v3.0 source's):
                ``(relpath, from s, to s)``. A v3.0 dataset links the file whole, once, at
                that relpath; a v2.1 dataset cuts the episode out as its own file
                (:func:`~.video.cut_video`: stream copy). Default: the file is the
                episode's own, from 0 s.
        """
        placements = dict(placements or {})
        for key, src in (videos or {}).items():
            if key in placements and self.format != V30:  # one episode of a shared file
                dst = self.video_path(episode_index, key)
                if not dst.exists():
                    first = int(round(placements[key][1] * self.fps))
                    cut_video(src, first, table.num_rows, dst, self.fps, self._video_options(key))
                continue
            rel = placements[key][0] if key in placements else None
            dst = self.staging / rel if rel else self.video_path(episode_index, key)
            if not dst.exists():
                link_or_copy(src, dst)
        if self.format != V30:
            placements = {}
        write_parquet(self.data_path(episode_index), table, atomic=True)
        known = dict(stats or {})
        missing = [
            k
            for k, ft in self.features.items()
            if ft["dtype"] not in ("video", "image", "string")
            and k not in known
            and k in table.column_names
        ]
        known.update(numeric_stats({k: column_to_numpy(table[k]) for k in missing}, self.features))
        known.update(video_stats or {})
        task_ids = (
            np.unique(column_to_numpy(table["task_index"]))
            if "task_index" in table.column_names
            else []
        )
        row = {
            "episode_index": int(episode_index),
            "tasks": [self.tasks[int(t)] for t in task_ids],
            "length": table.num_rows,
        }
        videos_at = {
            key: list(
                placements.get(key)
                or (self.video_relpath(episode_index, key), 0.0, table.num_rows / self.fps)
            )
            for key in video_keys(self.features)
        }
        if self.identity is None:
            self._episodes[int(episode_index)] = {"row": row, "stats": known, "videos": videos_at}
        else:
            sidecar = self.staging / _sidecar(episode_index)
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(sidecar)
            entry = {"row": row, "stats": stats_to_json(known), "videos": videos_at}
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, sidecar)

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    def _video_options(self, key: str) -> VideoOptions:
        """Encoder settings like the camera's (codec, pixel format) for an episode that
        cannot be cut by stream copy."""
        info = self.features[key].get("info", {})
        return encoder_options(str(info.get("video.codec")), info.get("video.pix_fmt", "yuv420p"))

    # ------------------------------------------------------------------ finalize
    def finalize(
        self, episodes: Sequence[int] | None = None, extra: Callable[[Path], None] | None = None
    ) -> LeRobotDatasetReader:
        """Write ``meta/`` for ``episodes`` (default: all written), let ``extra`` add files
        (a report), mark the folder as a dataset of this project and publish it."""
        entries = self._entries()
        wanted = sorted(entries) if episodes is None else [int(e) for e in episodes]
        missing = [e for e in wanted if e not in entries]
        if missing:
            raise RuntimeError(
                f"{self.root}: episodes {missing[:10]} are not written yet; rerun to finish them"
            )
        rows = [entries[e]["row"] for e in wanted]
        info = {**self.info, "features": self.features}
        stats = [entries[e]["stats"] for e in wanted]
        if self.format == V30:
            placements = [{k: tuple(v) for k, v in entries[e]["videos"].items()} for e in wanted]
            if self.pack_videos:
                placements = pack_v30.pack_videos(self.staging, info, placements, self.fps)
            pack_v30.pack(
                self.staging,
                info,
                self.tasks,
                rows,
                [self.data_path(e) for e in wanted],
                placements,
                stats,
            )
        else:
            write_meta(self.staging, info, self.tasks, rows, stats)
        for column, step_dir in self.encoders.items():
            if column in self.features:  # a derived column keeps the model that computes it
                dst = self.staging / ENCODERS_DIR / column
                shutil.rmtree(dst, ignore_errors=True)  # a finalize killed halfway left some
                shutil.copytree(step_dir, dst / step_dir.name)
        failpoint("dataset.finalize")
        if extra is not None:
            extra(self.staging)
        shutil.rmtree(self.staging / SIDECARS, ignore_errors=True)
        write_marker(self.staging, DATASET)
        replace_path(self.staging, self.root, DATASET)
        self._lock.close()
        return LeRobotDatasetReader(
            self.root, check_files=False
        )  # just written and validated by construction

    def _entries(self) -> dict[int, dict]:
        if self.identity is None:
            return self._episodes
        entries = {}
        for path in (self.staging / SIDECARS).glob("episode_*.json"):
            entry = json.loads(path.read_text())
            entries[int(entry["row"]["episode_index"])] = entry
        return entries


IDENTITY_FILE = ".write_identity.json"  # what decided the episodes of a resumable write


def derived_format(source: LeRobotDatasetReader, asked: str | None) -> str:
    """The format of a dataset derived from ``source``: ``asked``, else the source's
    (v2.1 from a v3.0 source cuts each episode's videos out of the shared files).

    Raises:
        DatasetFormatError: a format we do not write, before any work.
    """
    fmt = asked or source.version
    if fmt not in FORMATS:
        raise DatasetFormatError(
            f"dataset format {fmt!r} is not one we write. Fix: choose one of {list(FORMATS)}"
        )
    return fmt


def source_videos(
    source: LeRobotDatasetReader, episode_index: int
) -> tuple[dict[str, Path], dict[str, pack_v30.Placement] | None]:
    """What :meth:`DatasetWriter.write_episode` links for an episode of ``source``: its
    video files, and (v3.0 source) where the episode lies in them."""
    ep = source.episode(episode_index)
    videos = {key: source.video_path(episode_index, key) for key in source.video_keys}
    if source.version != V30:
        return videos, None
    return videos, {key: (rel, start, stop) for key, rel, start, stop in ep.videos}


def written_by(root: str | Path) -> dict | None:
    """The identity a resumable write of the dataset at ``root`` was made with (None if
    there is no such dataset, or it was not written resumably)."""
    root = Path(root)
    stamp = root / IDENTITY_FILE
    if not (root / INFO_PATH).is_file() or not stamp.is_file():
        return None
    return json.loads(stamp.read_text())


def work_folder(root: str | Path) -> Path:
    """The resumable staging folder of destination ``root``: ``.<name>.work`` beside it."""
    root = Path(root)
    return root.parent / f".{root.name}{WORK_SUFFIX}"


def _sidecar(episode_index: int) -> str:
    return f"{SIDECARS}/episode_{int(episode_index):06d}.json"


def v21_info(info: Mapping) -> dict:
    """info.json of a v2.1 dataset: a v3.0 source's file templates and size limits
    replaced by v2.1's (totals are added by the writer)."""
    out = {**info, "codebase_version": CODEBASE_VERSION}
    if "{episode_index" not in str(out.get("data_path")):
        for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
            out.pop(key, None)
        out["data_path"] = DATA_PATH
        out["video_path"] = VIDEO_PATH if video_keys(out["features"]) else None
        out.setdefault("chunks_size", DEFAULT_CHUNKS_SIZE)
    return out


def base_info(
    fps: int,
    features: Mapping[str, dict],
    robot_type: str = "unknown",
    chunks_size: int = DEFAULT_CHUNKS_SIZE,
) -> dict:
    """info.json of a new dataset (totals are added by the writer)."""
    features = {**features, **INDEX_FEATURES}
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "fps": int(fps),
        "chunks_size": int(chunks_size),
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video_keys(features) else None,
        "features": features,
    }


# ---------------------------------------------------------------------------- new datasets
@dataclass
class _EpisodeResult:
    length: int
    task: str
    columns: dict[str, np.ndarray]
    video_stats: dict[str, Stats]


def _encode_episode(
    factory: Callable[[], EpisodeData], videos: Mapping[str, Path], fps: int, options: VideoOptions
) -> _EpisodeResult:
    """Build one episode, encode its videos (streaming) to ``videos`` (key -> path),
    return its columns and the videos' stats."""
    ep = factory()
    wanted = set(sample_indices(ep.length).tolist())
    sampled: dict[str, list[np.ndarray]] = {k: [] for k in videos}
    writers = {k: VideoWriter(path, fps, options) for k, path in videos.items()}
    try:
        for t, frames in enumerate(ep.iter_frames()):
            for k in videos:
                frame = frames[k] if k in frames else frames[camera_name(k)]
                writers[k].write(frame)
                if t in wanted:
                    sampled[k].append(np.asarray(frame))
    finally:
        for w in writers.values():
            w.close()
    for k, w in writers.items():
        if w.n_frames != ep.length:
            raise ValueError(
                f"{videos[k]}: camera {k} gave {w.n_frames} frames for {ep.length} rows"
            )
    vstats = {k: video_stats(np.stack(v), ep.length) for k, v in sampled.items()}
    return _EpisodeResult(
        ep.length,
        getattr(ep, "task", ""),
        {k: np.asarray(v) for k, v in ep.columns.items()},
        vstats,
    )


def _in_order(fn: Callable, jobs: Sequence[tuple], workers: int) -> Iterator:
    """``fn(*job)`` for each job, in order; in ``workers`` processes (that die with this
    one) with at most ``2 * workers`` results waiting, else in this process."""
    if workers <= 1 or len(jobs) <= 1:
        yield from (fn(*job) for job in jobs)
        return
    with ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:

        def submit(job: tuple):
            with jax_free_fork():  # workers fork on submit
                return pool.submit(fn, *job)

        pending = [submit(job) for job in jobs[: 2 * workers]]
        for k in range(len(jobs)):
            result = pending[k].result()
            pending[k] = None  # free the result
            if k + 2 * workers < len(jobs):
                pending.append(submit(jobs[k + 2 * workers]))
            yield result


@dataclass(frozen=True)
class NewDataset:
    """A dataset to be written from generated episodes.

    Attributes:
        fps: frames per second.
        features: info.json features of the data columns and videos (without the
            index columns, which the writer adds).
        episodes: picklable zero-argument callables, each building one episode
            (:class:`EpisodeData` with a ``task`` string); run in worker processes.
        robot_type: free text for info.json.
        video: encoder settings.
        workers: processes building and encoding episodes in parallel.
        format: the LeRobot format written, ``"v2.1"`` or ``"v3.0"``.
    """

    fps: int
    features: Mapping[str, dict]
    episodes: Sequence[Callable[[], EpisodeData]]
    robot_type: str = "unknown"
    video: VideoOptions = field(default_factory=VideoOptions)
    workers: int = 1
    chunks_size: int = DEFAULT_CHUNKS_SIZE
    format: str = CODEBASE_VERSION

    def write(
        self, root: str | Path, overwrite: bool = False, format: str | None = None
    ) -> LeRobotDatasetReader:
        """Write to ``root`` episode by episode (see :class:`DatasetWriter`: a dataset this
        project wrote there is replaced, anything else only with ``overwrite``) in
        ``format`` (default: the plan's)."""
        info = base_info(self.fps, self.features, self.robot_type, self.chunks_size)
        info["codebase_version"] = format or self.format
        keys = video_keys(info["features"])
        with DatasetWriter(root, info, overwrite=overwrite, pack_videos=True) as writer:
            jobs = [
                (f, {k: writer.video_path(i, k) for k in keys}, self.fps, self.video)
                for i, f in enumerate(self.episodes)
            ]
            start = 0
            results = _in_order(_encode_episode, jobs, self.workers)
            for i, res in enumerate(tqdm(results, total=len(jobs), desc="episodes", unit="ep")):
                cols = {
                    **res.columns,
                    **index_columns(res.length, self.fps, i, start, writer.task_index(res.task)),
                }
                writer.write_episode(
                    i, episode_table(cols, writer.features), video_stats=res.video_stats
                )
                start += res.length
                failpoint("dataset.episode")
            return writer.finalize()


# ---------------------------------------------------------------------------- derived datasets
@dataclass(frozen=True)
class DerivedDataset:
    """A dataset derived from ``source``: same episodes and videos (linked), with
    columns replaced or added, and optionally a new task list.

    Attributes:
        source: the input dataset (never modified).
        columns: {name: (N,) or (N, D)} over all frames of ``source`` in episode order
            (rows ``source.offsets[e]:source.offsets[e+1]`` belong to episode e).
        tasks: the new tasks.jsonl (task_index k -> tasks[k]); None keeps the source's.
        features: info.json entries of new columns (inferred from the arrays if absent).
        workers: threads rewriting episode files in parallel (pyarrow releases the GIL;
            about one per CPU core is fastest).
        episodes: source episode indices to keep (default: all), renumbered 0..k-1 in
            order (``episode_index`` and ``index`` rewritten, videos linked under the new
            numbers); ``columns`` still span every source frame.
        format: the LeRobot format written (``"v2.1"`` or ``"v3.0"``); None: the source's.
            A v3.0 source's shared video files are linked whole into v3.0, or each
            episode cut out of them (stream copy) into v2.1.
    """

    source: LeRobotDatasetReader
    columns: Mapping[str, np.ndarray]
    tasks: Sequence[str] | None = None
    features: Mapping[str, dict] = field(default_factory=dict)
    workers: int = 2
    episodes: Sequence[int] | None = None
    format: str | None = None

    def write(
        self, root: str | Path, overwrite: bool = False, format: str | None = None
    ) -> LeRobotDatasetReader:
        """Write to ``root``: never the source, inside it or a folder holding it; a
        dataset this project wrote there is replaced, anything else only with
        ``overwrite`` (see :class:`DatasetWriter`); in ``format`` (default: the
        plan's)."""
        src = self.source
        n = src.num_frames
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(
                    f"column {name!r} has {len(values)} rows; the source {src.root} has {n} frames"
                )
        fmt = derived_format(src, format or self.format)
        tasks = list(self.tasks) if self.tasks is not None else list(src.tasks)
        features = dict(src.all_features)  # columns info.json forgot are kept, declared
        for name, values in self.columns.items():
            features[name] = dict(
                self.features.get(name) or src.features.get(name) or feature_spec(values)
            )
        features = index_features_last(features)  # new columns before LeRobot's index columns
        if "task_index" in self.columns:
            ti = np.asarray(self.columns["task_index"])
            if ti.size and (ti.min() < 0 or ti.max() >= len(tasks)):
                raise ValueError(
                    f"task_index values span [{ti.min()}, {ti.max()}] but only {len(tasks)} tasks "
                    f"are given"
                )
        elif len(tasks) < len(src.tasks):
            raise ValueError(
                f"{len(tasks)} tasks given but the source's task_index goes up to "
                f"{len(src.tasks) - 1}. Fix: give a task per source task, or a new task_index "
                f"column"
            )
        numeric = [
            k for k, ft in features.items() if ft["dtype"] not in ("video", "image", "string")
        ]
        # stats of the new columns for all episodes at once; the others carry over
        new_stats = {
            name: segment_stats(_as_feature_dtype(values, features[name]), src.offsets)
            for name, values in self.columns.items()
            if name in numeric
        }
        old_stats = src.episodes_stats_json
        stored = [k for k in features if features[k]["dtype"] not in ("video", "image")]

        with DatasetWriter(
            root,
            {**src.info, "features": features, "codebase_version": fmt},
            tasks,
            inputs={"source dataset": src.root},
            overwrite=overwrite,
            encoders=src.encoders(),
        ) as writer:
            positions = (
                list(range(src.num_episodes))
                if self.episodes is None
                else [int(np.searchsorted(src.episode_indices, e)) for e in self.episodes]
            )
            renumber = self.episodes is not None
            starts = np.cumsum([0] + [src.episodes[p].length for p in positions])

            def rewrite(new: int) -> None:
                pos = positions[new]
                ep = src.episodes[pos]
                lo, hi = int(src.offsets[pos]), int(src.offsets[pos + 1])
                replaced = {name: values[lo:hi] for name, values in self.columns.items()}
                if renumber:  # kept episodes numbered 0..k-1, rows counted again
                    replaced["episode_index"] = np.full(ep.length, new, dtype=np.int64)
                    replaced["index"] = np.arange(starts[new], starts[new + 1], dtype=np.int64)
                table = with_columns(src.read_table(ep.episode_index), replaced, features)
                table = table.select([k for k in stored if k in table.column_names])
                stats = {
                    k: v
                    for k, v in old_stats.get(ep.episode_index, {}).items()
                    if k in features and k not in new_stats and k not in replaced
                }
                stats.update({k: v[pos] for k, v in new_stats.items()})
                videos, placements = source_videos(src, ep.episode_index)
                episode = new if renumber else ep.episode_index
                writer.write_episode(
                    episode, table, stats=stats, videos=videos, placements=placements
                )
                failpoint("dataset.episode")

            with ThreadPoolExecutor(max(1, self.workers)) as pool:
                list(
                    tqdm(
                        pool.map(rewrite, range(len(positions))),
                        total=len(positions),
                        desc="episodes",
                        unit="ep",
                    )
                )
            return writer.finalize()
