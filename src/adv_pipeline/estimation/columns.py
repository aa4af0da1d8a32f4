"""Stage 2's columns from an estimator's values along an episode (numpy only, so that
reports and notebooks use the formulas without torch; docs/semantics.md, Stage 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adv_pipeline.labeling.returns import n_step_advantage, step_rewards
from adv_pipeline.schema import ABSOLUTE_VALUE_SPREAD


@dataclass(frozen=True)
class EpisodeValues:
    """Raw model outputs along one episode of n frames.

    Attributes:
        absolute: (n,) KAI0: V(frame 0 -> frame i); PI06: V(frame i).
        relative: (n,) KAI0: V(frame i -> frame fut(i)), unscaled; None for PI06.
        peak_window: most frames held in the window at once.
        spread: (n,) standard deviation of ``absolute``'s distribution (distributional
            value heads), else None.
        features: float32 (n, K * w) each frame's image tokens (K cameras, width w),
            when asked for (Stage 2's ``image_features``), else None.
    """

    absolute: np.ndarray
    relative: np.ndarray | None
    peak_window: int
    spread: np.ndarray | None = None
    features: np.ndarray | None = None


@dataclass(frozen=True)
class EpisodeReturns:
    """What RECAP's n-step advantage of one episode needs besides its values (an
    estimator trained on returns).

    Attributes:
        scale: the normaliser of the episode's task (its training episodes' largest
            ``length + penalty * failed``), from the checkpoint.
        failed: the episode is known to have failed (its ``success`` column is 0).
        penalty: C_fail, in frames (the checkpoint's ``failure_penalty``).
    """

    scale: float
    failed: bool
    penalty: float


def future_index(n: int, interval: int) -> np.ndarray:
    """``fut(i) = min(i + interval, n - 1)`` for i in 0..n-1."""
    return np.minimum(np.arange(n) + interval, n - 1)


def advantage_columns(
    values: EpisodeValues, interval: int, returns: EpisodeReturns | None = None
) -> dict[str, np.ndarray]:
    """The Stage 2 columns of one episode (float32, (n,)); with ``returns`` (an estimator
    trained on returns) those of :func:`returns_columns`, else:

    - KAI0 ``relative_advantage[i] = V(i -> fut)``, times ``I / (fut - i)`` when
      ``fut - i != I``, 0 when ``fut == i``;
    - ``absolute_value[i]``: V(0 -> i) (KAI0) or V(i) (PI06), 0 at i = 0;
    - ``absolute_advantage[i] = (absolute_value[fut] - absolute_value[i]) * I / (fut - i)``,
      0 when ``fut == i``; both advantages clipped to [-1, 1];
    - ``absolute_value_spread[i]`` (distributional heads): the standard deviation of
      ``absolute_value[i]``'s distribution, 0 at i = 0.
    """
    if returns is not None:
        return returns_columns(values, interval, returns)
    absolute = values.absolute.copy()
    n = len(absolute)
    absolute[0] = 0.0
    fut = future_index(n, interval)
    gap = (fut - np.arange(n)).astype(np.float64)
    moving = gap > 0
    scale = np.zeros(n)
    scale[moving] = interval / gap[moving]
    abs_adv = np.zeros(n)
    abs_adv[moving] = (absolute[fut[moving]] - absolute[moving]) * scale[moving]
    out = {
        "absolute_value": absolute.astype(np.float32),
        "absolute_advantage": np.clip(abs_adv, -1, 1).astype(np.float32),
    }
    if values.relative is not None:
        rel = np.where(moving, values.relative * scale, 0.0)
        out = {"relative_advantage": np.clip(rel, -1, 1).astype(np.float32), **out}
    if values.spread is not None:
        spread = values.spread.copy()
        spread[0] = 0.0  # as absolute_value[0]: nothing is estimated at frame 0
        out[ABSOLUTE_VALUE_SPREAD] = spread.astype(np.float32)
    return out


def returns_columns(
    values: EpisodeValues, interval: int, returns: EpisodeReturns
) -> dict[str, np.ndarray]:
    """The Stage 2 columns of one episode under a value trained on returns (float32, (n,)):
    ``absolute_value[i] = V(i)`` (the predicted normalised return, every frame);
    ``absolute_advantage[i] = sum(r[i .. i+I-1]) + V(i+I) - V(i)``, r = -1 per frame (and
    ``-penalty`` at a failed episode's last frame) divided by ``scale``, the sum stopping
    at the episode's end and V = 0 past it (docs/semantics.md, "Advantage from returns"),
    clipped to [-1, 1]; ``absolute_value_spread`` as :func:`advantage_columns`."""
    n = len(values.absolute)
    offsets = np.array([0, n])
    rewards = step_rewards(offsets, np.array([returns.failed]), returns.penalty) / returns.scale
    value = values.absolute.astype(np.float64)
    adv = n_step_advantage(rewards, value, offsets, interval)
    out = {
        "absolute_value": value.astype(np.float32),
        "absolute_advantage": np.clip(adv, -1, 1).astype(np.float32),
    }
    if values.spread is not None:
        out[ABSOLUTE_VALUE_SPREAD] = values.spread.astype(np.float32)
    return out
