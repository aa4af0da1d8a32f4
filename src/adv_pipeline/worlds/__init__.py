"""The worlds policies are recorded and evaluated in, each behind one environment adapter
(:mod:`.base`): the demo task and Meta-World. A user's simulator plugs in with
:func:`register_world` (a factory from the evaluation's parameters to a
:class:`~.base.World`) and ``awbc.eval.env: <its name>``, without touching Stage 3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adv_pipeline.configs import closest
from adv_pipeline.sim.dataset import DEMO_ROBOT_TYPE

from .base import EvalTask, World, WorldEnv, WorldError, check_state, check_world_columns
from .metaworld.env import ROBOT_TYPE as METAWORLD_ROBOT_TYPE

WorldFactory = Callable[[Mapping[str, Any]], World]
"""``factory(params) -> World``; params: ``{"eval": EvalConfig, "metaworld": {...}}``."""

_WORLDS: dict[str, WorldFactory] = {}


_ROBOT_TYPES: dict[str, str] = {}


def register_world(name: str, factory: WorldFactory, robot_type: str | None = None) -> None:
    """Make ``awbc.eval.env: name`` build its world with ``factory``; datasets whose
    info.json robot_type is ``robot_type`` are evaluated in it when ``env: auto``."""
    _WORLDS[name] = factory
    if robot_type is not None:
        _ROBOT_TYPES[robot_type] = name


def world_names() -> list[str]:
    return sorted(_WORLDS)


def world_for_robot_type(robot_type: str | None) -> str | None:
    """The world that records datasets of ``robot_type`` (None: no world does)."""
    return _ROBOT_TYPES.get(str(robot_type))


def make_world(name: str, params: Mapping[str, Any]) -> World:
    """The world named ``name`` (refused, naming the known worlds, when none is)."""
    if name not in _WORLDS:
        raise WorldError(
            f"awbc.eval.env: no world named {name!r}{closest(name, world_names())} Known worlds: "
            f"{', '.join(world_names())}. Fix: name one of them, or register yours with "
            f"adv_pipeline.worlds.register_world"
        )
    return _WORLDS[name](params)


def _demo(params: Mapping[str, Any]) -> World:
    from adv_pipeline.policy.evaluate import task_config

    from .demo import DemoWorld

    return DemoWorld(task_config(params["eval"]))


def _metaworld(params: Mapping[str, Any]) -> World:
    from adv_pipeline.configs import from_params

    from .metaworld import MetaWorld, MetaWorldConfig

    return MetaWorld(from_params(MetaWorldConfig, params.get("metaworld"), "metaworld"))


register_world("demo", _demo, DEMO_ROBOT_TYPE)
register_world("metaworld", _metaworld, METAWORLD_ROBOT_TYPE)

__all__ = [
    "EvalTask",
    "World",
    "WorldEnv",
    "WorldError",
    "check_state",
    "check_world_columns",
    "make_world",
    "register_world",
    "world_for_robot_type",
    "world_names",
]
