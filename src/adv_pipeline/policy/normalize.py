"""Mean/std normalisation of state and action vectors, computed over the training dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-2  # constant or near-binary dimensions are not blown up


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean and std (float32 (D,)) of one vector column."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> NormStats:
        """Statistics of (N, D) values."""
        values = np.asarray(values, dtype=np.float64)
        return cls(
            values.mean(0).astype(np.float32), np.maximum(values.std(0), MIN_STD).astype(np.float32)
        )

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) * self.std + self.mean).astype(np.float32)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> NormStats:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
