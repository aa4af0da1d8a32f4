"""The environment adapter interface: what Stage 3's closed loop needs of a simulator.

A world (the demo task, Meta-World, a user's own simulator) gives environments that
reset to seeded start states, return the policy's state columns and camera images, take
the policy's action, and say whether the task succeeded. :func:`adv_pipeline.policy.
evaluate.evaluate_conditions` rolls any policy out through it without knowing the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from adv_pipeline.errors import InputError


class WorldError(InputError):
    """A world, task or adapter that cannot be used; the message names it and the fix."""


class WorldEnv(Protocol):
    """One simulator instance of one task."""

    def reset(self, seed: int) -> None:
        """Go to the start state of ``seed`` (the same seed gives the same state)."""

    def step(self, action: np.ndarray) -> None:
        """Apply one policy action (the dataset's ``action`` column, float32 (A,))."""

    def state(self, keys: Sequence[str]) -> np.ndarray:
        """float32 (D,): the state columns ``keys`` side by side, as the dataset stores them."""

    def images(self, cameras: Sequence[str]) -> Mapping[str, np.ndarray]:
        """``{camera: uint8 (H, W, 3)}`` of the current state."""

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action in the current state (the table's ceiling row)."""

    @property
    def success(self) -> bool:
        """Whether the task is solved in the current state."""

    @property
    def progress(self) -> float:
        """Task progress in [0, 1] (NaN where the world cannot say)."""

    @property
    def steps(self) -> int:
        """Actions applied since the last reset."""


@dataclass(frozen=True)
class EvalTask:
    """One task a world evaluates: its simulator name and the task text of its prompts."""

    name: str
    text: str


class World(Protocol):
    """A simulator behind the adapter interface (see :mod:`adv_pipeline.worlds`)."""

    name: str
    robot_type: str  # meta/info.json robot_type of the datasets recorded in it

    def tasks(self, texts: Sequence[str]) -> list[EvalTask]:
        """The tasks to evaluate for a policy trained on task texts ``texts`` (refuses a
        text the world does not know, naming it)."""

    def make_env(self, task: str) -> WorldEnv:
        """A new environment of ``task``."""

    def state_dims(self, task: str) -> Mapping[str, int]:
        """``{state column: width}`` its environments give."""

    def max_steps(self, task: str) -> int:
        """The rollout time limit of ``task`` (steps)."""


def check_state(
    world: str, task: str, keys: Sequence[str], state: np.ndarray, want: int, dims: Mapping
) -> None:
    """Refuse an adapter's state whose width is not the policy's ``want`` (the widths of
    its columns ``dims``, named in the message), before any rollout."""
    got = int(np.shape(state)[-1]) if np.ndim(state) else 0
    if got != want:
        parts = ", ".join(f"{k}: {dims[k]}" for k in keys if k in dims) or f"{want} values"
        raise WorldError(
            f"world {world!r}, task {task!r}: the adapter's state({list(keys)}) has {got} "
            f"values, the policy reads {want} ({parts}). Fix: make the adapter return those "
            f"columns as the training dataset stores them"
        )


def check_world_columns(
    world: World, task: str, dataset_dims: Mapping[str, int], derived: Sequence[str]
) -> None:
    """Refuse, before any training, a world whose adapter cannot give the policy's state:
    each column of ``dataset_dims`` (the policy's state columns and their widths in the
    training dataset) must be one the world gives at that width, unless it is ``derived``
    from the cameras (Stage 2's image features)."""
    dims = world.state_dims(task)
    for key, width in dataset_dims.items():
        if key in derived:
            continue
        if key not in dims:
            raise WorldError(
                f"world {world.name!r} gives no state column {key!r} (it gives "
                f"{', '.join(f'{k}: {d}' for k, d in dims.items())}), which the policy reads "
                f"(awbc.data.state_key). Fix: train on the columns the world gives, or make "
                f"its adapter return {key!r}"
            )
        if int(dims[key]) != int(width):
            raise WorldError(
                f"world {world.name!r}: its adapter's {key!r} has {dims[key]} values, the "
                f"training dataset's has {width}. Fix: make the adapter return the column as "
                f"the dataset stores it, or evaluate in the world that recorded the dataset "
                f"(awbc.eval.env)"
            )
