"""Meta-World behind the adapter interface: tasks, their scripted experts, environments.

Meta-World (``metaworld`` 3.1.1) is imported on first use. Each v3 task's goal-observable
environment takes its start state (object and goal placement) from the seed it is built
with and returns to it on every reset, so an environment is built once per (task, seed)
and kept (about 0.1 s to build).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from adv_pipeline.configs import closest
from adv_pipeline.schema import STATE_COLUMN
from adv_pipeline.worlds.base import EvalTask, WorldError

from .config import MetaWorldConfig

# headless offscreen rendering (the cameras): mujoco reads this when it is first imported,
# which Meta-World's import does, after this module's
os.environ.setdefault("MUJOCO_GL", "egl")

ROBOT_TYPE = "metaworld_sawyer"
"""meta/info.json robot_type of Meta-World recordings (closed-loop evaluation replays them)."""

_OBJECT = ["x", "y", "z", "qw", "qx", "qy", "qz"]
_FRAME = [
    "hand_x", "hand_y", "hand_z", "gripper_distance",
    *(f"obj1_{n}" for n in _OBJECT), *(f"obj2_{n}" for n in _OBJECT),
]  # fmt: skip
STATE_NAMES: list[str] = [*_FRAME, *(f"prev_{n}" for n in _FRAME), "goal_x", "goal_y", "goal_z"]
"""The 39 values of Meta-World's state observation (this frame, the previous one, the goal)."""
ACTION_NAMES: list[str] = ["hand_dx", "hand_dy", "hand_dz", "grip_effort"]
"""Meta-World's action: end-effector displacement and grip effort, each in [-1, 1]."""


def _policy_map() -> Mapping[str, type]:
    from metaworld.policies import ENV_POLICY_MAP

    return ENV_POLICY_MAP


@lru_cache(maxsize=1)
def known_tasks() -> tuple[str, ...]:
    """Meta-World's v3 tasks that have an environment (goal observable) and an expert."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as envs

    names = {k.removesuffix("-goal-observable") for k in envs}
    return tuple(sorted(names & set(_policy_map())))


def check_tasks(tasks: Sequence[str], where: str = "metaworld.tasks") -> None:
    """Refuse a task Meta-World does not have, or one without a scripted expert."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as envs

    known = known_tasks()
    for task in tasks:
        if task in known:
            continue
        if f"{task}-goal-observable" in envs:
            raise WorldError(
                f"{where}: Meta-World task {task!r} has no scripted expert in "
                f"metaworld.policies, so it cannot be recorded. Fix: choose one of "
                f"{', '.join(known)}"
            )
        raise WorldError(
            f"{where}: no Meta-World v3 task {task!r}{closest(task, known)} Fix: choose one "
            f"of {', '.join(known)}"
        )


def make_raw_env(task: str, seed: int):
    """Meta-World's goal-observable environment of ``task`` at the start state of ``seed``."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as envs

    return envs[f"{task}-goal-observable"](seed=int(seed))


class CameraRenderer:
    """One camera of one Meta-World environment through MuJoCo's offscreen renderer:
    ``size`` x ``size`` RGB, shadows, reflections and anti-aliasing off (about 7-10 ms a
    frame on a CPU with Mesa's EGL), turned right side up. ``close()`` frees the GL context
    (a context left to the garbage collector at exit prints EGL errors)."""

    def __init__(self, env, camera: str, size: int) -> None:
        import mujoco

        env.model.vis.quality.offsamples = 0
        self._env, self.camera = env, camera
        self._renderer = mujoco.Renderer(env.model, int(size), int(size))
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            self._renderer.scene.flags[flag] = 0

    def render(self) -> np.ndarray:
        """uint8 (size, size, 3) of the current state."""
        self._renderer.update_scene(self._env.data, camera=self.camera)
        return np.ascontiguousarray(self._renderer.render()[::-1])

    def close(self) -> None:
        self._renderer.close()


def make_expert(task: str):
    """The scripted expert of ``task``: ``obs (39,) -> action (4,)``."""
    policy = _policy_map()[task]()

    def act(obs: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():  # "Constant(s) may be too high": it clips, as we do
            warnings.simplefilter("ignore", UserWarning)
            return np.clip(policy.get_action(obs), -1.0, 1.0).astype(np.float32)

    return act


class MetaWorldEnv:
    """One task's environment for the closed loop (:class:`~adv_pipeline.worlds.base.
    WorldEnv`); the raw environments of the seeds it was reset to are kept in ``cache``."""

    def __init__(self, task: str, cache: dict, camera: str | None = None, size: int = 84):
        self.task, self.camera, self.size = task, camera, size
        self._cache = cache
        self._expert = make_expert(task)
        self._env = None
        self._obs = np.zeros(len(STATE_NAMES), np.float64)
        self._success = False
        self._steps = 0

    def reset(self, seed: int) -> None:
        key = (self.task, int(seed))
        if key not in self._cache:
            self._cache[key] = make_raw_env(self.task, seed)
        self._env = self._cache[key]
        self._obs, _ = self._env.reset()
        self._success, self._steps = False, 0

    def step(self, action: np.ndarray) -> None:
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self._obs, _, _, _, info = self._env.step(action)
        self._success = self._success or bool(info["success"])
        self._steps += 1

    def state(self, keys: Sequence[str]) -> np.ndarray:
        for key in keys:
            if key != STATE_COLUMN:
                raise WorldError(
                    f"world 'metaworld' gives the state column {STATE_COLUMN!r} only, not "
                    f"{key!r}. Fix: train the policy with awbc.data.state_key: {STATE_COLUMN}"
                )
        return self._obs.astype(np.float32)

    def images(self, cameras: Sequence[str]) -> Mapping[str, np.ndarray]:
        if not cameras:
            return {}
        if list(cameras) != [self.camera]:
            raise WorldError(
                f"world 'metaworld' renders the camera of metaworld.camera ({self.camera!r}), "
                f"not {list(cameras)}. Fix: set metaworld.camera to the camera the policy "
                f"was trained on"
            )
        key = ("renderer", self.task, id(self._env))
        if key not in self._cache:
            self._cache[key] = CameraRenderer(self._env, self.camera, self.size)
        return {self.camera: self._cache[key].render()}

    def expert_action(self) -> np.ndarray:
        return self._expert(self._obs)

    @property
    def success(self) -> bool:
        return self._success

    @property
    def progress(self) -> float:
        return float("nan")

    @property
    def steps(self) -> int:
        return self._steps


class MetaWorld:
    """Meta-World as a world (:class:`~adv_pipeline.worlds.base.World`)."""

    name = "metaworld"
    robot_type = ROBOT_TYPE

    def __init__(self, config: MetaWorldConfig) -> None:
        self.config = config
        self._cache: dict = {}

    def tasks(self, texts: Sequence[str]) -> list[EvalTask]:
        by_text: dict[str, str] = {}
        for task in dict.fromkeys([*self.config.tasks, *self.config.task_texts]):
            by_text.setdefault(self.config.text(task), task)
        out = []
        for text in texts:
            if text not in by_text:
                raise WorldError(
                    f"world 'metaworld': no task has the text {text!r} (known: "
                    f"{', '.join(repr(t) for t in by_text)}). Fix: list the task in "
                    f"metaworld.tasks with that text in metaworld.task_texts"
                )
            out.append(EvalTask(by_text[text], text))
        check_tasks([t.name for t in out], "awbc.eval (the training dataset's tasks)")
        return out

    def make_env(self, task: str) -> MetaWorldEnv:
        return MetaWorldEnv(task, self._cache, self.config.camera, self.config.image_size)

    def close(self) -> None:
        """Free the cameras' GL contexts (the environments stay)."""
        for key in [k for k in self._cache if k[0] == "renderer"]:
            self._cache.pop(key).close()

    def state_dims(self, task: str) -> Mapping[str, int]:
        return {STATE_COLUMN: len(STATE_NAMES)}

    def max_steps(self, task: str) -> int:
        return int(self.config.max_steps)
