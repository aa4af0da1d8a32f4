"""Per-episode feature statistics and their aggregation, as LeRobot stores them.

Each feature's stats are ``{min, max, mean, std, count}`` over axis 0 (frames), with
population std and ``count`` a one-element list, plus the quantiles ``q01 q10 q50 q90
q99`` that LeRobot 0.4+ writes (and its quantile normalisation, pi0.5's default, reads).
Image/video stats are per channel in [0, 1] with nested shape (3, 1, 1). Dataset stats
pool the episodes' as LeRobot does: count-weighted mean and pooled std, quantiles
count-weighted means of the episodes' quantiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Stats = dict[str, np.ndarray]

# Frames sampled per episode for video stats (LeRobot samples a few hundred at most).
VIDEO_STATS_MAX_FRAMES = 100
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _quantiles(x: np.ndarray) -> dict[str, np.ndarray]:
    """QUANTILES of (N, ...) values over axis 0 (linear interpolation)."""
    q = np.quantile(x, list(QUANTILES.values()), axis=0)
    return dict(zip(QUANTILES, q))


def column_stats(values: np.ndarray) -> Stats:
    """Stats of one numeric column.

    Args:
        values: (T,) or (T, D) numeric array for one episode.

    Returns:
        min/max/mean/std of shape (1,) or (D,), count of shape (1,).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([x.shape[0]], dtype=np.int64),
        **_quantiles(x),
    }


def video_stats(frames: np.ndarray, episode_length: int) -> Stats:
    """Per-channel stats of sampled frames, scaled to [0, 1], shaped (3, 1, 1).

    Args:
        frames: (N, H, W, 3) uint8 frames sampled from the episode.
        episode_length: number of frames in the episode (reported as ``count``).
    """
    x = np.asarray(frames, dtype=np.float32) / 255.0
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    shape = (flat.shape[1], 1, 1)
    return {
        "min": flat.min(axis=0).reshape(shape),
        "max": flat.max(axis=0).reshape(shape),
        "mean": flat.mean(axis=0).reshape(shape),
        "std": flat.std(axis=0).reshape(shape),
        "count": np.array([episode_length], dtype=np.int64),
        # quantiles from every 16th pixel: a sort of every sampled pixel of a 480x640
        # camera costs seconds per episode (LeRobot downsamples images for stats too)
        **{k: v.reshape(shape) for k, v in _quantiles(flat[::16]).items()},
    }


def sample_indices(length: int, max_frames: int = VIDEO_STATS_MAX_FRAMES) -> np.ndarray:
    """Evenly spaced frame indices (at most ``max_frames``) for video stats."""
    n = min(length, max_frames)
    return np.unique(np.linspace(0, length - 1, n).round().astype(np.int64))


def segment_stats(values: np.ndarray, offsets: np.ndarray) -> list[Stats]:
    """:func:`column_stats` of every episode of a concatenated column at once.

    Args:
        values: (N,) or (N, D) numeric array, episodes back to back.
        offsets: (E + 1,) row offsets, ``offsets[e]:offsets[e + 1]`` is episode e; every
            episode non-empty, ``offsets[-1] == N``.

    Returns:
        E stats dicts, as :func:`column_stats` gives for each episode's rows.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x.reshape(len(x), -1)
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    if counts.size and counts.min() < 1:
        raise ValueError(
            f"episode {int(np.argmin(counts))} has no rows; stats need at least one frame per "
            f"episode"
        )
    if offsets[-1] != len(x):
        raise ValueError(f"offsets end at {offsets[-1]} but the column has {len(x)} rows")
    starts = offsets[:-1]
    mean = np.add.reduceat(x, starts, axis=0) / counts[:, None]
    var = (
        np.add.reduceat((x - np.repeat(mean, counts, axis=0)) ** 2, starts, axis=0)
        / counts[:, None]
    )
    lo, hi, std = (
        np.minimum.reduceat(x, starts, axis=0),
        np.maximum.reduceat(x, starts, axis=0),
        np.sqrt(var),
    )
    return [
        {
            "min": lo[e],
            "max": hi[e],
            "mean": mean[e],
            "std": std[e],
            "count": np.array([counts[e]], dtype=np.int64),
            **_quantiles(x[offsets[e] : offsets[e + 1]]),  # one sort per episode
        }
        for e in range(len(counts))
    ]


def aggregate_stats(per_episode: Sequence[Mapping[str, Stats]]) -> dict[str, Stats]:
    """Combine per-episode stats into dataset stats (count-weighted mean and pooled std).

    Values may be numpy arrays or the nested lists of episodes_stats.jsonl."""
    keys: list[str] = []
    for ep in per_episode:
        keys.extend(k for k in ep if k not in keys)
    out: dict[str, Stats] = {}
    for key in keys:
        items = [ep[key] for ep in per_episode if key in ep]

        def stacked(name: str) -> np.ndarray:
            return np.asarray([s[name] for s in items], dtype=np.float64)

        counts = stacked("count").reshape(len(items), -1)[:, 0]
        means, stds = stacked("mean"), stacked("std")
        w = (counts / counts.sum()).reshape((-1,) + (1,) * (means.ndim - 1))
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        out[key] = {
            "min": stacked("min").min(axis=0),
            "max": stacked("max").max(axis=0),
            "mean": mean,
            "std": np.sqrt(np.maximum(var, 0.0)),
            "count": np.array([int(counts.sum())], dtype=np.int64),
        }
        for q in QUANTILES:  # where every episode has it (older datasets lack them)
            if all(q in s for s in items):
                out[key][q] = (w * stacked(q)).sum(axis=0)
    return out


def stats_to_json(stats: Mapping[str, Stats]) -> dict:
    """Numpy stats -> JSON-ready nested lists (lists pass through unchanged)."""
    return {
        k: {n: v if isinstance(v, list) else np.asarray(v).tolist() for n, v in s.items()}
        for k, s in stats.items()
    }


def stats_from_json(obj: Mapping[str, Mapping[str, list]]) -> dict[str, Stats]:
    """JSON stats -> numpy arrays."""
    return {k: {n: np.asarray(v) for n, v in s.items()} for k, s in obj.items()}
