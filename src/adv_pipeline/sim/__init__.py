"""Deterministic numpy-only bimanual hand-over simulator (demo data + evaluator).

Task: on a 1 m x 1 m table seen from above, the left gripper grasps a block
and brings it to the central hand-over zone (stage 0); the right gripper takes
it and places it in a randomly placed goal zone (stage 1).
"""

from .config import (
    ACTION_DIM,
    ACTION_NAMES,
    CAMERA_KEYS,
    ENV_STATE_KEY,
    ENV_STATE_NAMES,
    NUM_STAGES,
    PROPRIO_DIM,
    PROPRIO_NAMES,
    QUALITIES,
    STATE_DIM,
    STATE_KEY,
    STATE_NAMES,
    TASK_TEXT,
    DemoTaskConfig,
)
from .demonstrator import (
    DaggerOperator,
    ExpertOperator,
    SuboptimalOperator,
    expert_action,
    make_policy,
)
from .episodes import (
    COLUMN_NAMES,
    DemoEpisode,
    RolloutResult,
    generate_episode,
    generate_mix,
    rollout,
    stage_progress,
)
from .render import render
from .state import SNAPSHOT_DIM, initial_snapshot, is_success, progress_of, stage_of, step_snapshot
from .task import DemoTask, Observation

__all__ = [
    "ACTION_DIM",
    "ACTION_NAMES",
    "CAMERA_KEYS",
    "COLUMN_NAMES",
    "ENV_STATE_KEY",
    "ENV_STATE_NAMES",
    "NUM_STAGES",
    "PROPRIO_DIM",
    "PROPRIO_NAMES",
    "QUALITIES",
    "SNAPSHOT_DIM",
    "STATE_DIM",
    "STATE_KEY",
    "STATE_NAMES",
    "TASK_TEXT",
    "DaggerOperator",
    "DemoEpisode",
    "DemoTask",
    "DemoTaskConfig",
    "ExpertOperator",
    "Observation",
    "RolloutResult",
    "SuboptimalOperator",
    "expert_action",
    "generate_episode",
    "generate_mix",
    "initial_snapshot",
    "is_success",
    "make_policy",
    "progress_of",
    "render",
    "rollout",
    "stage_of",
    "stage_progress",
    "step_snapshot",
]
