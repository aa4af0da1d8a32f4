"""Closed-loop environment wrapper :class:`DemoTask` and :class:`Observation`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ENV_STATE_KEY, PROPRIO_DIM, STATE_KEY, DemoTaskConfig
from .render import render
from .state import initial_snapshot, is_success, policy_state, progress_of, stage_of, step_snapshot


@dataclass(frozen=True)
class Observation:
    """What a policy sees at one step.

    Attributes:
        images: ``{key: uint8 (H, W, 3)}`` for key in CAMERA_KEYS (empty dict
            when the task was built with ``render_images=False``).
        state: float32 (PROPRIO_DIM,) proprioception, the dataset's ``observation.state``
            (``PROPRIO_NAMES``: gripper positions in m, openings in [0, 1]).
        environment_state: float32 (6,) where the block and the goal are and who holds
            the block (``ENV_STATE_NAMES``), the dataset's ``observation.environment_state``:
            privileged, for the scripted demonstrators and the privileged variant.
    """

    images: dict[str, np.ndarray] = field(repr=False)
    state: np.ndarray
    environment_state: np.ndarray

    def vector(self, keys: tuple[str, ...] | list[str]) -> np.ndarray:
        """The dataset columns ``keys`` of this step, concatenated (a policy's input)."""
        columns = {STATE_KEY: self.state, ENV_STATE_KEY: self.environment_state}
        unknown = [k for k in keys if k not in columns]
        if unknown:
            raise KeyError(f"the demo simulator has no {unknown}; it gives {sorted(columns)}")
        return np.concatenate([columns[k] for k in keys])


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
        full = policy_state(self._s)
        return Observation(images, full[:PROPRIO_DIM], full[PROPRIO_DIM:])

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
