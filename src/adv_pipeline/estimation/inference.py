"""Streaming inference of a trained estimator along an episode (docs/semantics.md, Stage 2).

The cameras of an episode are decoded in lockstep into a sliding window just large
enough for the current batch and its look-ahead (``batch_size + interval`` frames, plus
frame 0 for KAI0's V(0 -> n)); a prefetch thread prepares the next batch's model inputs
while the model runs on the current one. Peak memory does not grow with episode length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch

from adv_pipeline.estimator.config import EstimatorConfig
from adv_pipeline.estimator.data import episode_inputs
from adv_pipeline.estimator.model import AdvantageEstimator, TaskPrompts, to_model_input
from adv_pipeline.lerobot import DatasetFormatError, LeRobotDatasetReader

from .columns import EpisodeValues, advantage_columns, future_index

__all__ = ["EpisodeValues", "advantage_columns", "future_index", "predict_episode"]


class FrameWindow:
    """Frames ``start .. start+len-1`` of a lockstep frame stream, each (K, H, W, 3)."""

    def __init__(self, frames: Iterator[dict[str, np.ndarray]]):
        self._frames = frames
        self._buf: list[np.ndarray] = []
        self.start = 0

    def get(self, i: int) -> np.ndarray:
        while i >= self.start + len(self._buf):
            self._buf.append(np.stack(list(next(self._frames).values())))
        if i < self.start:
            raise IndexError(f"frame {i} already left the window (starts at {self.start})")
        return self._buf[i - self.start]

    def drop_before(self, i: int) -> None:
        k = max(0, min(len(self._buf), i - self.start))
        del self._buf[:k]
        self.start += k

    def __len__(self) -> int:
        return len(self._buf)


def _batches(
    dataset: LeRobotDatasetReader,
    episode: int,
    config: EstimatorConfig,
    interval: int,
    batch_size: int,
    peak: list[int],
    threads: int = 1,
) -> Iterator[tuple[int, np.ndarray]]:
    """Model inputs, batch by batch: (first frame index, (m, T, K, H, W, 3) uint8) where
    KAI0 batches hold the b absolute pairs (0, i) then the b relative pairs (i, fut(i))."""
    n = dataset.episode(episode).length
    window = FrameWindow(
        dataset.iter_frames(
            episode,
            cameras=config.data.cameras,
            size=tuple(config.data.image_size),
            threads=threads,
        )
    )
    paired = config.model.timesteps == 2
    fut = future_index(n, interval)
    first = window.get(0).copy() if paired else None
    for b0 in range(0, n, batch_size):
        idx = np.arange(b0, min(b0 + batch_size, n))
        current = np.stack([window.get(int(i)) for i in idx])
        if paired:
            future = np.stack([window.get(int(j)) for j in fut[idx]])
            abs_pairs = np.stack([np.broadcast_to(first, current.shape), current], axis=1)
            rel_pairs = np.stack([current, future], axis=1)
            x = np.concatenate([abs_pairs, rel_pairs])
        else:
            x = current[:, None]
        peak[0] = max(peak[0], len(window))
        window.drop_before(int(idx[-1]) + 1)
        yield b0, x


def _frame_chunks(
    dataset: LeRobotDatasetReader,
    episode: int,
    config: EstimatorConfig,
    size: int,
    threads: int = 1,
) -> Iterator[tuple[int, np.ndarray]]:
    """(start, (m, K, H, W, 3) uint8) chunks of consecutive frames, cameras in lockstep
    (K = 0, a state-only estimator: empty chunks, nothing decoded)."""
    if not config.data.cameras:
        n = dataset.episode(episode).length
        h, w = config.data.image_size
        for start in range(0, n, size):
            yield start, np.empty((min(size, n - start), 0, h, w, 3), np.uint8)
        return
    buf: list[np.ndarray] = []
    start = 0
    for frames in dataset.iter_frames(
        episode, cameras=config.data.cameras, size=tuple(config.data.image_size), threads=threads
    ):
        buf.append(np.stack(list(frames.values())))
        if len(buf) == size:
            yield start, np.stack(buf)
            start += len(buf)
            buf = []
    if buf:
        yield start, np.stack(buf)


def _prefetched(items: Iterator, prefetch: int) -> Iterator:
    """Run ``items`` in a background thread, at most ``prefetch`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    done = object()
    errors: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # surfaced in the consumer
            errors.append(exc)
        finally:
            q.put(done)

    thread = threading.Thread(target=produce, name="estimation-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
    if errors:
        raise errors[0]


def _predict_factorized(
    model: AdvantageEstimator,
    config: EstimatorConfig,
    dataset: LeRobotDatasetReader,
    episode: int,
    interval: int,
    batch_size: int,
    prefetch: int,
    device,
    threads: int = 1,
    features: bool = False,
) -> EpisodeValues:
    """Each frame is encoded once; its tokens serve every pair it is part of. The token
    window holds the batch and its look-ahead (plus frame 0 for KAI0). ``features``:
    also return each frame's image tokens (one per camera), flattened."""
    n = dataset.episode(episode).length
    paired = config.model.timesteps == 2
    fut = future_index(n, interval)
    absolute = np.zeros(n, dtype=np.float64)
    relative = np.zeros(n, dtype=np.float64) if paired else None
    spread = np.zeros(n, dtype=np.float64)
    k = len(config.data.cameras)
    image_tokens = np.zeros((n, k * model.token_width), np.float32) if features else None
    # (n, S) state and (n,) task per frame (a few numbers each); a pair reads its second
    # frame's task, as in training
    states, tasks, _ = episode_inputs(dataset, episode, config.data.state)
    prompts = TaskPrompts(model, {int(t): dataset.tasks[int(t)] for t in np.unique(tasks)}, device)
    window: torch.Tensor | None = None  # tokens of frames [base, base + len)
    base, first, nxt, peak = 0, None, 0, 0
    for start, frames in _prefetched(
        _frame_chunks(dataset, episode, config, batch_size, threads), prefetch
    ):
        state = (
            None
            if states is None
            else torch.from_numpy(states[start : start + len(frames)]).to(device)
        )
        tokens = model.encode(to_model_input(torch.from_numpy(frames)).to(device), state)
        if image_tokens is not None:
            image_tokens[start : start + len(frames)] = tokens[:, :k].flatten(1).float().cpu()
        if start == 0:
            first = tokens[:1]
        window = tokens if window is None else torch.cat([window, tokens])
        have = start + len(frames)
        peak = max(peak, len(window))
        while nxt < n and min(nxt + batch_size - 1 + interval, n - 1) < have:
            idx = np.arange(nxt, min(nxt + batch_size, n))
            cur = window[idx - base]
            if paired:
                pairs = torch.cat(
                    [
                        torch.stack([first.expand_as(cur), cur], 1),
                        torch.stack([cur, window[fut[idx] - base]], 1),
                    ]
                )
                text = prompts(np.concatenate([tasks[idx], tasks[fut[idx]]]))
            else:
                pairs = cur[:, None]
                text = prompts(tasks[idx])
            value, sd = model.outputs_from_tokens(pairs, text)
            out = value.float().cpu().numpy()
            absolute[idx] = out[: len(idx)]
            if paired:
                relative[idx] = out[len(idx) :]
            if sd is not None:
                spread[idx] = sd[: len(idx)].float().cpu().numpy()
            nxt = int(idx[-1]) + 1
            window, base = window[nxt - base :], nxt
    if nxt < n:  # a decoder that stopped early must not leave zeros behind as values
        raise DatasetFormatError(
            f"{dataset.root}: episode {episode}: only {nxt} of its {n} frames were decoded "
            f"for the estimator. Fix: check its video files (lerobot-doctor check)"
        )
    distributional = config.model.value_head == "distributional"
    return EpisodeValues(absolute, relative, peak, spread if distributional else None, image_tokens)


def predict_episode(
    model: AdvantageEstimator,
    config: EstimatorConfig,
    dataset: LeRobotDatasetReader,
    episode: int,
    interval: int = 50,
    batch_size: int = 64,
    prefetch: int = 2,
    device: torch.device | str = "cpu",
    decode_threads: int = 1,
    features: bool = False,
) -> EpisodeValues:
    """Run the estimator along one episode with a prefetch thread decoding ahead
    (``decode_threads``: FFmpeg threads per camera stream, 0 = FFmpeg's choice);
    ``features``: also each frame's image tokens (:class:`EpisodeValues`)."""
    if features and not model.image_tokens:
        raise ValueError(
            f"image features need a backbone that encodes each image to one token "
            f"(small_cnn, siglip), not {model.config.backbone!r}. Fix: set "
            f"estimation.image_features: null"
        )
    if getattr(model, "factorized", False):
        with torch.inference_mode():
            return _predict_factorized(
                model,
                config,
                dataset,
                episode,
                interval,
                batch_size,
                prefetch,
                device,
                decode_threads,
                features,
            )
    n = dataset.episode(episode).length
    paired = config.model.timesteps == 2
    absolute = np.zeros(n, dtype=np.float64)
    relative = np.zeros(n, dtype=np.float64) if paired else None
    spread = np.zeros(n, dtype=np.float64)
    peak = [0]
    with torch.inference_mode():
        for b0, x in _prefetched(
            _batches(dataset, episode, config, interval, batch_size, peak, decode_threads),
            prefetch,
        ):
            value, sd = model.outputs(to_model_input(torch.from_numpy(x)).to(device))
            out = value.float().cpu().numpy().astype(np.float64)
            b = len(out) // 2 if paired else len(out)
            absolute[b0 : b0 + b] = out[:b]
            if paired:
                relative[b0 : b0 + b] = out[b:]
            if sd is not None:
                spread[b0 : b0 + b] = sd[:b].float().cpu().numpy()
    distributional = config.model.value_head == "distributional"
    return EpisodeValues(absolute, relative, peak[0], spread if distributional else None)
