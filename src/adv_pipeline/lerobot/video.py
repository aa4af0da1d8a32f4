"""MP4 video decoding and encoding with PyAV.

Decoding streams frames in order, so memory is bounded by what the caller keeps, never
by episode length. Frames are ``uint8`` arrays of shape (H, W, 3), RGB. Frame ``i`` of a
LeRobot video is the frame whose timestamp is ``i / fps``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from adv_pipeline.outputs import temporary_path

from .format import DatasetFormatError

Size = tuple[int, int]  # (height, width) in pixels


class VideoDecodeError(DatasetFormatError):
    """A video cannot be decoded; the message names the file, the episode and the frame."""


def decode_error(path: Path, context: str, frame: int, exc: Exception) -> VideoDecodeError:
    where = f"{context}, " if context else ""
    return VideoDecodeError(
        f"{path}: {where}frame {frame} cannot be decoded ({exc}). Fix: re-encode this video from "
        f"the "
        "episode's source frames, or drop the episode"
    )


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video stream."""

    n_frames: int
    fps: float
    height: int
    width: int
    codec: str
    pix_fmt: str


@dataclass(frozen=True)
class VideoOptions:
    """Encoder settings for the MP4 files we write.

    Attributes:
        codec: FFmpeg encoder name, e.g. ``libx264`` (fast decode) or ``libsvtav1``
            (LeRobot's default, smaller files).
        pix_fmt: pixel format of the stream; ``yuv420p`` plays everywhere.
        crf: constant rate factor (lower is better quality).
        gop: frames between key frames (small = faster random access, bigger files).
        preset: encoder speed preset (codec specific; empty for the codec default).
    """

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    gop: int = 30
    preset: str = "veryfast"
    extra: Mapping[str, str] = field(default_factory=dict)

    def codec_options(self) -> dict[str, str]:
        """Options passed to the FFmpeg encoder (x264's SIMD capped by
        :func:`x264_asm_cap`, so that the same frames give the same bytes)."""
        opts = {"crf": str(self.crf), "g": str(self.gop)}
        if self.preset:
            opts["preset"] = str(self.preset)
        opts.update({str(k): str(v) for k, v in self.extra.items()})
        cap = x264_asm_cap() if self.codec == "libx264" else None
        if cap is not None:
            params = opts.get("x264-params", "")
            if not any(p.split("=")[0].strip() == "asm" for p in params.split(":")):
                opts["x264-params"] = f"{params}:asm={cap}" if params else f"asm={cap}"
        return opts


# FFmpeg encoder -> the codec name info.json records (``video.codec``); the first encoder
# of a codec is the one we re-encode it with
ENCODER_CODECS = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "libx265": "hevc"}


def encoder_options(codec: str, pix_fmt: str = "yuv420p") -> VideoOptions:
    """Encoder settings for a stream recorded as ``codec`` (info.json's ``video.codec``;
    H.264 when unknown)."""
    encoder = next((e for e, c in ENCODER_CODECS.items() if c == codec), "libx264")
    preset = "8" if encoder == "libsvtav1" else "veryfast"
    return VideoOptions(codec=encoder, pix_fmt=pix_fmt, preset=preset)


def _cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux names them (empty where /proc/cpuinfo is not)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.cache
def x264_asm_cap() -> str | None:
    """x264's ``asm`` setting that keeps it off its AVX-512 code, or None where the CPU has
    no AVX-512 (x264's own choice then).

    Why: on an AMD EPYC with AVX-512 (this project's machines), x264 (PyAV 18's build)
    encodes the same frames into different bytes from one encoder to the next, and the
    decoded pixels differ by up to 49 levels; with its AVX2 code (``asm=AVX2``, which
    implies every older extension) the output is the same every time, at the same speed.
    """
    flags = _cpu_flags()
    if "avx512f" in flags and "avx2" in flags:
        return "AVX2"
    return None


def probe(path: str | Path) -> VideoInfo:
    """Read stream metadata without decoding (frame count from the container index)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n = int(stream.frames)
        if n <= 0:  # containers without an index: count packets (no decoding)
            n = sum(1 for p in container.demux(stream) if p.size > 0)
        rate = stream.average_rate or stream.guessed_rate or 0
        return VideoInfo(
            n_frames=n,
            fps=float(rate),
            height=int(stream.codec_context.height),
            width=int(stream.codec_context.width),
            codec=str(stream.codec_context.name),
            pix_fmt=str(stream.codec_context.pix_fmt or stream.format.name),
        )


def padded_resize_plan(src: Size, dst: Size) -> tuple[Size, tuple[int, int]]:
    """Scaled size and (top, left) offset to fit ``src`` into ``dst`` keeping aspect."""
    (h, w), (H, W) = src, dst
    scale = min(H / h, W / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return (nh, nw), ((H - nh) // 2, (W - nw) // 2)


_SCALERS = threading.local()


def _scalers() -> tuple[VideoReformatter, VideoReformatter]:
    """This thread's two reusable scalers (to RGB, then resize). PyAV otherwise builds a new
    scaling context for every frame, which costs more than decoding a small frame. Per
    process too: a forked loader worker must not use its parent's scaling context."""
    pid, pair = getattr(_SCALERS, "owned", (None, None))
    if pid != os.getpid():
        pair = (VideoReformatter(), VideoReformatter())
        _SCALERS.owned = (os.getpid(), pair)
    return pair


def _frame_to_array(frame: av.VideoFrame, size: Size | None) -> np.ndarray:
    # RGB at full size first, then the resize: a decoded frame gets exactly the pixels
    # resize_with_pad gives a live camera's RGB image (scaling the YUV planes directly
    # differs by a few levels, and models see the difference)
    to_rgb, resize = _scalers()
    frame = to_rgb.reformat(frame, format="rgb24", threads=1)
    if size is None or (frame.height, frame.width) == tuple(size):
        return frame.to_ndarray()
    (nh, nw), (top, left) = padded_resize_plan((frame.height, frame.width), size)
    img = resize.reformat(frame, width=nw, height=nh, interpolation="AREA", threads=1).to_ndarray()
    if (nh, nw) == tuple(size):
        return img
    out = np.zeros((size[0], size[1], 3), dtype=np.uint8)
    out[top : top + nh, left : left + nw] = img
    return out


def resize_with_pad(images: np.ndarray, size: Size) -> np.ndarray:
    """Resize (H, W, 3) or (N, H, W, 3) uint8 images to ``size``, keeping the aspect
    ratio and padding the rest with black (as openpi's ``resize_with_pad``)."""
    arr = np.asarray(images, dtype=np.uint8)
    if arr.ndim == 3:
        return _frame_to_array(av.VideoFrame.from_ndarray(arr, format="rgb24"), size)
    return np.stack([resize_with_pad(a, size) for a in arr]) if len(arr) else arr


class VideoReader:
    """Frames of one MP4 file, decoded in order.

    Args:
        path: the video file.
        size: optional (height, width) to resize to, with padding that keeps the aspect.
        threads: decoder threads (0 = FFmpeg's choice; 1 = none, best for tiny frames).
        context: what the video is, for error messages (e.g. ``"episode 3"``).

    Raises:
        VideoDecodeError: from the iterators, naming the file and frame, when FFmpeg
            cannot demux or decode it.
    """

    def __init__(
        self, path: str | Path, size: Size | None = None, threads: int = 1, context: str = ""
    ):
        self.path = Path(path)
        self.size = tuple(size) if size is not None else None
        self.threads = int(threads)
        self.context = context
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: video file not found")

    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise decode_error(self.path, self.context, 0, exc) from exc
        stream = container.streams.video[0]
        if self.threads != 1:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
        return container, stream

    @staticmethod
    def _index_fn(stream: av.video.stream.VideoStream):
        tb = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        start = stream.start_time or 0
        return lambda pts: int(round(float((pts - start) * tb * rate)))

    def iter(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames ``start .. stop-1`` in order (seeking to ``start`` first)."""
        container, stream = self._open()
        i = start - 1
        try:
            index_of = self._index_fn(stream)
            if start > 0:
                self._seek(container, stream, start)
            for frame in container.decode(stream):
                i = index_of(frame.pts) if frame.pts is not None else i + 1
                if i < start:
                    continue
                if stop is not None and i >= stop:
                    break
                yield _frame_to_array(frame, self.size)
        except av.FFmpegError as exc:
            raise decode_error(self.path, self.context, max(i + 1, start), exc) from exc
        finally:
            container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.iter()

    @staticmethod
    def _seek(container, stream, index: int) -> None:
        rate = stream.average_rate or stream.guessed_rate
        pts = int(Fraction(index) / Fraction(rate) / stream.time_base) + (stream.start_time or 0)
        container.seek(pts, stream=stream, backward=True, any_frame=False)

    def iter_at(
        self, frames: Sequence[int] | np.ndarray, seek_gap: int = 120
    ) -> Iterator[np.ndarray]:
        """Yield the frames at the sorted distinct indices ``frames``, in order, from one
        open container: decodes forward, seeking only across gaps larger than
        ``seek_gap`` frames. Memory: one decoded frame."""
        order = np.asarray(frames, dtype=np.int64).reshape(-1)
        if order.size == 0:
            return
        container, stream = self._open()
        pos = -1  # index of the last decoded frame
        try:
            index_of = self._index_fn(stream)
            k = 0
            while k < len(order):
                target = int(order[k])
                if target > pos + seek_gap or target <= pos:
                    self._seek(container, stream, target)
                found_any = False
                for frame in container.decode(stream):
                    i = index_of(frame.pts)
                    pos = i
                    found_any = True
                    if i == order[k]:
                        yield _frame_to_array(frame, self.size)
                        k += 1
                        if k == len(order):
                            break
                        if order[k] > pos + seek_gap:
                            break  # re-seek for the next far index
                    elif i > order[k]:
                        raise IndexError(f"{self.path}: frame {int(order[k])} not found")
                else:
                    if k < len(order):
                        raise IndexError(
                            f"{self.path}: frame {int(order[k])} is past the end of the video"
                            f" (last decoded frame {pos})"
                        )
                if not found_any:
                    break
        except av.FFmpegError as exc:
            raise decode_error(self.path, self.context, pos + 1, exc) from exc
        finally:
            container.close()

    def get(self, indices: Sequence[int] | np.ndarray, seek_gap: int = 120) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as (N, H, W, 3) uint8 (see
        :meth:`iter_at`). Memory: the N requested frames plus one decoded frame."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            h, w = self.size or (0, 0)
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        order = np.unique(idx)
        got = np.stack(list(self.iter_at(order, seek_gap)))
        return got[np.searchsorted(order, idx)]


def iter_lockstep(
    paths: Mapping[str, str | Path | tuple[str | Path, int]],
    start: int = 0,
    stop: int | None = None,
    size: Size | None = None,
    threads: int = 1,
    context: str = "",
) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``{camera: frame}`` for frames ``start .. stop-1`` of several videos in step.

    A path may come with the index of frame 0 in its file, ``(path, first)``: a LeRobot
    v3.0 video holds several episodes end to end. Stops at the shortest video. Memory:
    one frame per camera.
    """
    placed = {k: p if isinstance(p, tuple) else (p, 0) for k, p in paths.items()}
    readers = {
        k: VideoReader(p, size=size, threads=threads, context=context).iter(
            start + first, None if stop is None else stop + first
        )
        for k, (p, first) in placed.items()
    }
    keys = list(readers)
    for frames in zip(*(readers[k] for k in keys)):
        yield dict(zip(keys, frames))


def _scheduling() -> tuple[int, os.sched_param] | None:
    """This thread's scheduling policy and parameter (None where the OS has none)."""
    if not hasattr(os, "sched_getscheduler"):
        return None
    return os.sched_getscheduler(0), os.sched_getparam(0)


def _restore_scheduling(before: tuple[int, os.sched_param] | None) -> None:
    """Put every thread of this process that left ``before`` back to it.

    SVT-AV1 (libsvtav1), run as root, raises the thread that opens it and every thread it
    starts to real-time SCHED_FIFO priority 99: the whole Python process then starves
    every other process on the machine (measured: a test suite's Kedro runs 20x slower,
    processes that would not die)."""
    if before is None:
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            t = int(tid)
            if (os.sched_getscheduler(t), os.sched_getparam(t)) != before:
                os.sched_setscheduler(t, *before)
        except (OSError, ValueError):
            pass  # the thread has ended


class VideoWriter:
    """Encode RGB frames into an MP4 file, one frame at a time.

    Frame ``i`` gets timestamp ``i / fps`` exactly. Use as a context manager. The
    process's thread scheduling is left as it was (see :func:`_restore_scheduling`).
    """

    def __init__(self, path: str | Path, fps: int, options: VideoOptions = VideoOptions()):
        self.path = Path(path)
        self.fps = int(fps)
        self.options = options
        self._container = None
        self._stream = None
        self.n_frames = 0
        self._scheduling = _scheduling()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def _start(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w", format="mp4")
        stream = self._container.add_stream(self.options.codec, rate=self.fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = self.options.pix_fmt
        stream.codec_context.time_base = Fraction(1, self.fps)
        stream.options = self.options.codec_options()
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        arr = np.ascontiguousarray(frame, dtype=np.uint8)
        if self._container is None:
            self._start(arr.shape[0], arr.shape[1])
        vf = av.VideoFrame.from_ndarray(arr, format="rgb24")
        vf.pts = self.n_frames
        vf.time_base = Fraction(1, self.fps)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        if self.n_frames == 0:  # the encoder opened with the first frame
            _restore_scheduling(self._scheduling)
        self.n_frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        _restore_scheduling(self._scheduling)


def encode_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: int, options: VideoOptions = VideoOptions()
) -> int:
    """Encode an iterable of (H, W, 3) uint8 frames; returns the number of frames."""
    with VideoWriter(path, fps, options) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.n_frames


def concat_videos(paths: Sequence[str | Path], out: str | Path, durations: Sequence[float]) -> None:
    """Join MP4s of one camera end to end into ``out`` by stream copy (no re-encoding):
    FFmpeg's concat demuxer shifts each file's timestamps by the ``durations`` (seconds,
    frames / fps) of the files before it, so frame ``i`` of the k-th input becomes frame
    ``sum(frames before it) + i`` (the containers' own durations can be a few ticks
    short). The inputs must share codec, size and rate (a writer's episodes of one
    camera do). ``out`` is written to a temporary name, then renamed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    listing, tmp = temporary_path(out), temporary_path(out)  # swept if this process dies
    # the concat demuxer's own escaping: single quotes, a quote written as '\''
    quoted = [str(Path(p).resolve()).replace("'", "'\\''") for p in paths]
    listing.write_text(
        "ffconcat version 1.0\n"
        + "".join(f"file '{q}'\nduration {d:.9f}\n" for q, d in zip(quoted, durations))
    )
    try:
        with (
            av.open(str(listing), format="concat", options={"safe": "0"}) as src,
            av.open(str(tmp), "w", format="mp4") as dst,
        ):
            stream = src.streams.video[0]
            copy = dst.add_stream_from_template(stream, opaque=True)
            for packet in src.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                dst.mux(packet)
        os.replace(tmp, out)
    finally:
        listing.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def cut_video(
    src: str | Path,
    first: int,
    frames: int,
    out: str | Path,
    fps: int,
    options: VideoOptions = VideoOptions(),
) -> bool:
    """Write frames ``first .. first + frames - 1`` of ``src`` (one episode of a LeRobot
    v3.0 file) as their own MP4 ``out``, frame 0 at time 0.

    By stream copy when the episode starts on a key frame that decodes first and holds
    exactly its frames (LeRobot encodes each episode on its own, then joins them: every
    episode does); otherwise the frames are decoded and encoded again with ``options``.
    ``out`` is written to a temporary name, then renamed. Returns True when copied,
    False when encoded again."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out)
    try:
        copied = _copy_segment(Path(src), first, frames, tmp, fps)
        if not copied:
            reader = VideoReader(src)
            encode_video(tmp, reader.iter(first, first + frames), fps, options)
        os.replace(tmp, out)
        return copied
    finally:
        tmp.unlink(missing_ok=True)


def _copy_segment(src: Path, first: int, frames: int, out: Path, fps: int) -> bool:
    """Stream-copy the segment if it can be cut exactly (see :func:`cut_video`)."""
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        tb = stream.time_base
        start = (stream.start_time or 0) + int(round(Fraction(first, fps) / tb))
        stop = start + int(round(Fraction(frames, fps) / tb))
        VideoReader._seek(inp, stream, first)
        packets = []
        for packet in inp.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            if packet.pts >= stop:
                break
            if packet.pts >= start:
                packets.append(packet)
        step = Fraction(1, fps) / tb
        expected = [start + int(round(i * step)) for i in range(frames)]
        exact = (  # every frame of the segment, the first a key frame decoded first
            len(packets) == frames
            and packets[0].is_keyframe
            and packets[0].pts == start
            and sorted(p.pts for p in packets) == expected
        )
        if not exact:
            return False
        with av.open(str(out), "w", format="mp4") as dst:
            copy = dst.add_stream_from_template(stream, opaque=True)
            for packet in packets:
                packet.pts -= start
                packet.dts -= start
                packet.stream = copy
                dst.mux(packet)
    return probe(out).n_frames == frames
