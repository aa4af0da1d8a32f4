"""The demo simulator (:mod:`adv_pipeline.sim`) behind the adapter interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from adv_pipeline.sim import (
    ENV_STATE_KEY,
    PROPRIO_DIM,
    STATE_KEY,
    DemoTask,
    DemoTaskConfig,
    ExpertOperator,
    render,
)
from adv_pipeline.sim.config import ENV_STATE_NAMES
from adv_pipeline.sim.dataset import DEMO_ROBOT_TYPE

from .base import EvalTask, WorldError


class DemoEnv:
    """One demo task (:class:`~adv_pipeline.worlds.base.WorldEnv`); images are rendered
    only when asked for, the expert's noise is seeded by the episode seed."""

    def __init__(self, config: DemoTaskConfig) -> None:
        self.config = config
        self.task = DemoTask(config, render_images=False)
        self._expert = ExpertOperator(0, config)
        self._obs = self.task.observe()

    def reset(self, seed: int) -> None:
        self._obs = self.task.reset(int(seed))
        self._expert = ExpertOperator(int(seed), self.config)

    def step(self, action: np.ndarray) -> None:
        self._obs = self.task.step(np.asarray(action, np.float32))

    def state(self, keys: Sequence[str]) -> np.ndarray:
        try:
            return self._obs.vector(keys)
        except KeyError as exc:
            raise WorldError(f"world 'demo': {exc.args[0]}") from None

    def images(self, cameras: Sequence[str]) -> Mapping[str, np.ndarray]:
        if not cameras:
            return {}
        frame = render(self.task.snapshot, self.config)
        return {c: frame[c] for c in cameras}

    def expert_action(self) -> np.ndarray:
        return self._expert(self._obs)

    @property
    def success(self) -> bool:
        return self.task.success

    @property
    def progress(self) -> float:
        return self.task.progress

    @property
    def steps(self) -> int:
        return self.task.steps


class DemoWorld:
    """The demo's bimanual hand-over task (:class:`~adv_pipeline.worlds.base.World`):
    one task, whatever its text."""

    name = "demo"
    robot_type = DEMO_ROBOT_TYPE

    def __init__(self, config: DemoTaskConfig) -> None:
        self.config = config

    def tasks(self, texts: Sequence[str]) -> list[EvalTask]:
        if len(texts) != 1:
            raise WorldError(
                f"world 'demo' has one task; the policy was trained on {len(texts)} task texts "
                f"({list(texts)}). Fix: evaluate it in the world that recorded its data"
            )
        return [EvalTask("demo", texts[0])]

    def make_env(self, task: str) -> DemoEnv:
        return DemoEnv(self.config)

    def state_dims(self, task: str) -> Mapping[str, int]:
        return {STATE_KEY: PROPRIO_DIM, ENV_STATE_KEY: len(ENV_STATE_NAMES)}

    def max_steps(self, task: str) -> int:
        return int(self.config.max_steps)
