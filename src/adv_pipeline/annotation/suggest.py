"""Boundary suggestions from gripper open/close events (a person confirms each)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gripper_events(
    values: np.ndarray, dims: Sequence[int], min_gap: int = 5, min_range: float = 1e-3
) -> list[int]:
    """Frames where a gripper opens or closes.

    Each gripper dimension is split at the midpoint of its 5th and 95th percentiles;
    an event is the first frame on the other side. Events closer than ``min_gap``
    frames to an earlier one are merged (a gripper chattering at the threshold).

    Args:
        values: (T, D) state or action of one episode.
        dims: the gripper dimensions of ``values``.
        min_gap: frames.
        min_range: a dimension that moves less than this never triggers.

    Returns:
        Sorted frame indices.
    """
    x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    bad = [d for d in dims if not -x.shape[1] <= d < x.shape[1]]
    if bad:
        raise ValueError(f"gripper dimensions {bad} do not exist: the column has {x.shape[1]}")
    events: list[int] = []
    for d in dims:
        lo, hi = np.percentile(x[:, d], [5, 95])
        if hi - lo < min_range:
            continue
        above = x[:, d] > (lo + hi) / 2
        events.extend((np.flatnonzero(above[1:] != above[:-1]) + 1).tolist())
    merged: list[int] = []
    for e in sorted(events):
        if not merged or e - merged[-1] >= min_gap:
            merged.append(int(e))
    return merged
