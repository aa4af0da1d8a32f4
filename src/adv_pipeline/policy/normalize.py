"""Normalisation of state and action vectors, as openpi does it: per-dimension mean/std
or quantile (q01/q99 -> [-1, 1], pi0.5's default), from statistics computed over the
training episodes' parquet columns without decoding any video (the seed's
``compute_norm_states_fast``), in bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from adv_pipeline.lerobot import LeRobotDatasetReader

MIN_STD = 1e-2  # constant or near-binary dimensions are not blown up
QUANTILE_EPS = 1e-6  # openpi's: a constant dimension maps to -1, not to inf
HIST_BINS = 5000  # quantiles are read off a histogram between each dimension's min and max
EPISODES_PER_READ = 256  # parquet files read at once: memory is bounded by this, not the dataset

Mode = Literal["quantile", "mean_std"]


@dataclass(frozen=True)
class NormStats:
    """Per-dimension statistics (float32 (D,)) of one vector column, and how they are used.

    ``mode="quantile"`` maps [q01, q99] to [-1, 1]; ``"mean_std"`` subtracts the mean and
    divides by the std. ``min``/``max`` bound what :meth:`unnormalize` returns: a policy
    never outputs an action outside the range it was trained on.
    """

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mode: Mode = "quantile"

    @classmethod
    def of(cls, values: np.ndarray, mode: Mode = "quantile") -> NormStats:
        """Exact statistics of (N, D) values (small arrays; datasets use :func:`column_stats`)."""
        x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        f = lambda a: np.asarray(a, np.float32)  # noqa: E731
        return cls(
            f(x.mean(0)),
            f(np.maximum(x.std(0), MIN_STD)),
            f(np.quantile(x, 0.01, axis=0)),
            f(np.quantile(x, 0.99, axis=0)),
            f(x.min(0)),
            f(x.max(0)),
            mode,
        )

    @classmethod
    def concat(cls, parts: Sequence[NormStats], mode: Mode) -> NormStats:
        """The statistics of columns placed side by side (all are per dimension)."""
        fields = ("mean", "std", "q01", "q99", "min", "max")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields), mode)

    def with_mode(self, mode: Mode) -> NormStats:
        return NormStats(self.mean, self.std, self.q01, self.q99, self.min, self.max, mode)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.mode == "quantile":
            return ((x - self.q01) / (self.q99 - self.q01 + QUANTILE_EPS) * 2.0 - 1.0).astype(
                np.float32
            )
        return ((x - self.mean) / self.std).astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        """Back to dataset units, clipped to the training data's [min, max] per dimension."""
        x = np.asarray(x, np.float32)
        if self.mode == "quantile":
            out = (x + 1.0) / 2.0 * (self.q99 - self.q01 + QUANTILE_EPS) + self.q01
        else:
            out = x * self.std + self.mean
        return np.clip(out, self.min, self.max).astype(np.float32)

    def to_json(self) -> dict:
        fields = ("mean", "std", "q01", "q99", "min", "max")
        return {"mode": self.mode, **{k: getattr(self, k).tolist() for k in fields}}

    @classmethod
    def from_json(cls, d: dict) -> NormStats:
        if (
            "mode" not in d
        ):  # checkpoints from before quantile norm: mean/std, outputs clipped to [-1, 1]
            mean, std = np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32)
            ones = np.ones_like(mean)
            return cls(mean, std, mean - 2 * std, mean + 2 * std, -ones, ones, "mean_std")
        a = {k: np.asarray(d[k], np.float32) for k in ("mean", "std", "q01", "q99", "min", "max")}
        return cls(**a, mode=d["mode"])


def _histogram_quantile(counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: float) -> np.ndarray:
    """Per-dimension quantile ``q`` from histograms ``counts`` (D, BINS) over [lo, hi],
    linearly interpolated inside the bin (error below one bin width)."""
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1:]
    target = q * total
    b = np.argmax(cum >= target, axis=1)
    before = np.where(b > 0, np.take_along_axis(cum, (b - 1)[:, None], 1)[:, 0], 0)
    inside = np.take_along_axis(counts, b[:, None], 1)[:, 0]
    frac = np.where(inside > 0, (target[:, 0] - before) / np.maximum(inside, 1), 0.0)
    width = (hi - lo) / counts.shape[1]
    return lo + (b + frac) * width


def column_stats(
    reader: LeRobotDatasetReader,
    columns: Sequence[str],
    episodes: Sequence[int],
    on_batch: Callable[[dict[str, np.ndarray]], None] | None = None,
    also: Sequence[str] = (),
) -> dict[str, NormStats]:
    """Statistics of vector ``columns`` over ``episodes``, read from the parquet files
    ``EPISODES_PER_READ`` episodes at a time in two passes (moments and range, then a
    ``HIST_BINS``-bin histogram per dimension for q01/q99). Memory does not grow with the
    number of episodes.

    ``on_batch(columns)`` sees every batch of the first pass, with the columns ``also``
    read with it (e.g. to hash the data).
    """
    episodes = [int(e) for e in episodes]
    batches = [
        episodes[i : i + EPISODES_PER_READ] for i in range(0, len(episodes), EPISODES_PER_READ)
    ]
    n = 0
    acc: dict[str, list[np.ndarray]] = {}
    for eps in batches:
        cols = reader.read_columns([*columns, *also], eps)
        if on_batch is not None:
            on_batch(cols)
        for c in columns:
            x = cols[c].astype(np.float64).reshape(len(cols[c]), -1)
            s = [x.sum(0), (x * x).sum(0), x.min(0), x.max(0)]
            if c not in acc:
                acc[c] = s
            else:
                a = acc[c]
                acc[c] = [a[0] + s[0], a[1] + s[1], np.minimum(a[2], s[2]), np.maximum(a[3], s[3])]
        n += len(cols[columns[0]])
    if n == 0:
        raise ValueError("no frames to compute normalisation statistics from")
    counts = {c: np.zeros((len(acc[c][0]), HIST_BINS), np.int64) for c in columns}
    for eps in batches:
        cols = reader.read_columns(list(columns), eps)
        for c in columns:
            x = cols[c].astype(np.float64).reshape(len(cols[c]), -1)
            lo, hi = acc[c][2], acc[c][3]
            scale = HIST_BINS / np.maximum(hi - lo, 1e-12)
            b = np.clip(((x - lo) * scale).astype(np.int64), 0, HIST_BINS - 1)
            d = x.shape[1]
            flat = (b + np.arange(d) * HIST_BINS).reshape(-1)
            counts[c] += np.bincount(flat, minlength=d * HIST_BINS).reshape(d, HIST_BINS)
    out = {}
    for c in columns:
        s, ss, lo, hi = acc[c]
        mean = s / n
        std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
        f = lambda a: np.asarray(a, np.float32)  # noqa: E731
        out[c] = NormStats(
            f(mean),
            f(np.maximum(std, MIN_STD)),
            f(_histogram_quantile(counts[c], lo, hi, 0.01)),
            f(_histogram_quantile(counts[c], lo, hi, 0.99)),
            f(lo),
            f(hi),
        )
    return out
