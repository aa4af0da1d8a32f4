"""Video frames of a LeRobot dataset's episodes, decoded on demand and streamed.

:class:`FrameAccess` maps an episode's frames to its camera videos (v2.1: one file per
episode from frame 0; v3.0: the episode's time range inside a shared file) and decodes
them with :mod:`.video`: all cameras in step, never a whole video at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .format import DatasetFormatError
from .metadata import DatasetMetadata
from .video import Size, VideoReader, iter_lockstep


class FrameAccess(DatasetMetadata):
    """Camera frames of the episodes, ``(H, W, 3) uint8`` each, by episode and frame index.

    A part of :class:`~adv_pipeline.lerobot.reader.LeRobotDatasetReader`."""

    def _video_paths(
        self, episode_index: int, cameras: Sequence[str] | None
    ) -> dict[str, tuple[Path, int]]:
        """{video_key: (file, index of the episode's frame 0 in it)}."""
        ep = self.episode(episode_index)
        return {
            k: (self.video_path(episode_index, k), self.first_video_frame(ep, k))
            for k in self.resolve_cameras(cameras)
        }

    def resolve_cameras(self, cameras: Sequence[str] | None) -> list[str]:
        """Full video keys for camera names or keys (``top_head`` or
        ``observation.images.top_head``); all video keys when None."""
        if cameras is None:
            return list(self.video_keys)
        out = []
        for cam in cameras:
            match = [k for k in self.video_keys if k == cam or k.rsplit(".", 1)[-1] == cam]
            if not match:
                raise DatasetFormatError(
                    f"{self.root}: no camera {cam!r}; the dataset's video keys are "
                    f"{self.video_keys}. Fix: set the camera list to existing keys"
                )
            out.append(match[0])
        return out

    def iter_frames(
        self,
        episode_index: int,
        cameras: Sequence[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        size: Size | None = None,
        threads: int = 1,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream ``{video_key: (H, W, 3) uint8}`` for frames start..stop-1, cameras in step."""
        ep = self.episode(episode_index)
        stop = ep.length if stop is None else min(stop, ep.length)
        return iter_lockstep(
            self._video_paths(episode_index, cameras),
            start,
            stop,
            size,
            threads,
            f"episode {episode_index}",
        )

    def _frame_indices(self, episode_index: int, indices) -> np.ndarray:
        """``indices`` as int64, refused unless all are frames of the episode."""
        ep = self.episode(episode_index)
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= ep.length):
            raise IndexError(
                f"{self.root}: episode {episode_index} has {ep.length} frames; asked for "
                f"{idx.min()}..{idx.max()}"
            )
        return idx

    def iter_frames_at(
        self, episode_index: int, frames: np.ndarray, cameras: Sequence[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream ``{video_key: (H, W, 3) uint8}`` at the sorted distinct ``frames`` of one
        episode, cameras in step, each video decoded in one forward pass (gaps seeked
        over). Memory: one frame per camera."""
        frames = self._frame_indices(episode_index, frames)
        paths = self._video_paths(episode_index, cameras)
        streams = {
            k: VideoReader(p, context=f"episode {episode_index}").iter_at(frames + first)
            for k, (p, first) in paths.items()
        }
        for got in zip(*streams.values()):
            yield dict(zip(streams, got))

    def get_frames(
        self,
        episode_index: int,
        indices: Sequence[int] | np.ndarray,
        cameras: Sequence[str] | None = None,
        size: Size | None = None,
    ) -> dict[str, np.ndarray]:
        """Frames at ``indices`` for each camera: ``{video_key: (N, H, W, 3) uint8}``."""
        idx = self._frame_indices(episode_index, indices)
        return {
            k: VideoReader(p, size=size, context=f"episode {episode_index}").get(idx + first)
            for k, (p, first) in self._video_paths(episode_index, cameras).items()
        }
