"""Meta-World (``metaworld`` 3.1.1, MuJoCo) as the project's second world: recordings of
its scripted experts at several qualities, the boundary file of the experts' phases, and
the environment adapter Stage 3's closed loop rolls policies out in."""

from .config import QUALITIES, MetaWorldConfig, OperatorConfig
from .env import ACTION_NAMES, ROBOT_TYPE, STATE_NAMES, MetaWorld, MetaWorldEnv, check_tasks
from .recording import (
    Operator,
    phase_boundary,
    record_episode,
    recording_annotations,
    recording_plan,
)

__all__ = [
    "ACTION_NAMES",
    "QUALITIES",
    "ROBOT_TYPE",
    "STATE_NAMES",
    "MetaWorld",
    "MetaWorldConfig",
    "MetaWorldEnv",
    "OperatorConfig",
    "Operator",
    "check_tasks",
    "phase_boundary",
    "record_episode",
    "recording_annotations",
    "recording_plan",
]
