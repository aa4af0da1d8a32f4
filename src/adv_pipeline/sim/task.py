"""Closed-loop environment wrapper :class:`DemoTask` and :class:`Observation`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import DemoTaskConfig
from .render import render
from .state import initial_snapshot, is_success, policy_state, progress_of, stage_of, step_snapshot


@dataclass(frozen=True)
class Observation:
    """What a policy sees at one step.

    Attributes:
        images: ``{key: uint8 (H, W, 3)}`` for key in CAMERA_KEYS (empty dict
            when the task was built with ``render_images=False``).
        state: float32 (STATE_DIM,) proprioception + block + goal (see
            ``STATE_NAMES``; positions in m, openings in [0, 1]).
    """

    images: dict[str, np.ndarray] = field(repr=False)
    state: np.ndarray


class DemoTask:
    """Bimanual hand-over task (deterministic given seed and actions).

    Args:
        config: task constants.
        render_images: if False, observations carry no images (fast path for
            scripted, state-based policies).
    """

    def __init__(self, config: DemoTaskConfig | None = None, render_images: bool = True) -> None:
        self.config = config if config is not None else DemoTaskConfig()
        self.render_images = render_images
        self._s: np.ndarray = initial_snapshot(self.config, 0)

    # -- core API ---------------------------------------------------------
    def reset(self, seed: int) -> Observation:
        """Start a new episode whose block / goal / gripper starts depend on ``seed``."""
        self._s = initial_snapshot(self.config, seed)
        return self.observe()

    def step(self, action: np.ndarray) -> Observation:
        """Apply a float (ACTION_DIM,) action (clipped to [-1, 1]) for one step."""
        self._s = step_snapshot(self._s, action, self.config)
        return self.observe()

    def observe(self) -> Observation:
        """Observation of the current state (renders if ``render_images``)."""
        images = render(self._s, self.config) if self.render_images else {}
        return Observation(images=images, state=policy_state(self._s))

    # -- state queries ----------------------------------------------------
    @property
    def snapshot(self) -> np.ndarray:
        """Copy of the low-dimensional sim state, float64 (SNAPSHOT_DIM,)."""
        return self._s.copy()

    @property
    def progress(self) -> float:
        """True physical task progress in [0, 1] (can go down)."""
        return progress_of(self._s, self.config)

    @property
    def stage(self) -> int:
        """Current stage (0: bring block to hand-over, 1: place in goal)."""
        return stage_of(self._s, self.config)

    @property
    def success(self) -> bool:
        """Block released inside the goal zone."""
        return is_success(self._s, self.config)

    @property
    def steps(self) -> int:
        """Number of steps taken since the last reset."""
        return int(self._s[-1])

    @property
    def done(self) -> bool:
        """Success or ``config.max_steps`` reached."""
        return self.success or self.steps >= self.config.max_steps
