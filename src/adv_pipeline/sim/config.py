"""Configuration and public constants of the bimanual hand-over demo task.

World units are metres on a 1 m x 1 m table seen from above: x grows to the
right (left arm on the left edge, right arm on the right edge), y grows
downwards in the images.  Time is discretised at ``fps`` steps per second.
"""

from __future__ import annotations

from dataclasses import dataclass

CAMERA_KEYS: tuple[str, str, str] = ("top_head", "hand_left", "hand_right")
"""Image keys of every observation / rendered frame."""

TASK_TEXT: str = "hand over the block and place it in the goal"
"""Natural-language task instruction."""

STATE_NAMES: list[str] = [
    "left_x",  # left gripper grasp point x (m)
    "left_y",  # left gripper grasp point y (m)
    "left_opening",  # left gripper opening in [0, 1] (1 = fully open)
    "right_x",
    "right_y",
    "right_opening",
    "block_x",  # block centre x (m)
    "block_y",  # block centre y (m)
    "block_held_left",  # 1.0 if the left gripper holds the block
    "block_held_right",  # 1.0 if the right gripper holds the block
    "goal_x",  # goal zone centre x (m)
    "goal_y",  # goal zone centre y (m)
]
STATE_DIM: int = len(STATE_NAMES)
"""The simulator's low-dimensional state that the scripted demonstrators act on."""

PROPRIO_NAMES: list[str] = STATE_NAMES[:6]
"""What a real robot records of itself: the dataset's ``observation.state``."""
ENV_STATE_NAMES: list[str] = STATE_NAMES[6:]
"""Where the block and the goal are (privileged: a real robot must see them): the
dataset's ``observation.environment_state`` (LeRobot's key for simulator state)."""
PROPRIO_DIM: int = len(PROPRIO_NAMES)
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"

ACTION_NAMES: list[str] = [
    "left_vx",  # left gripper velocity command x, in [-1, 1] (x max_speed m/s)
    "left_vy",  # left gripper velocity command y, in [-1, 1]
    "left_grip",  # left opening target: opening -> (grip + 1) / 2, in [-1, 1]
    "right_vx",
    "right_vy",
    "right_grip",
]
ACTION_DIM: int = len(ACTION_NAMES)

QUALITIES: tuple[str, str, str] = ("expert", "suboptimal", "dagger")
"""Demonstration quality modes understood by :func:`generate_episode`."""

NUM_STAGES: int = 2
"""Stage 0: left arm brings the block to the hand-over zone and the right arm
takes it.  Stage 1: the right arm places the block in the goal zone."""


@dataclass(frozen=True)
class DemoTaskConfig:
    """Physical, rendering and time-limit constants of :class:`DemoTask`.

    Attributes:
        image_size: side of every square camera image (pixels).
        fps: control / camera frequency (Hz).
        max_steps: time limit of closed-loop rollouts (steps); about 1.5x the
            typical expert episode length.
        episode_cap: hard cap on generated demonstration length (steps),
            about 3x the typical expert length.
        max_speed: gripper speed for a unit velocity command (m/s).
        grip_speed: max rate of change of the opening (1/s).
        grasp_radius: max grasp-point-to-block distance for a grasp (m).
        close_threshold: opening below which a gripper grasps (unitless).
        release_threshold: opening above which a gripper releases.
        block_half: half side of the square block (m).
        handover_x, handover_y: hand-over zone centre (m).
        handover_radius: hand-over zone radius (m).
        goal_radius: goal zone radius (m); success needs the block centre
            within ``goal_radius - 0.02`` m of the goal centre, released.
        left_x_max: the left arm cannot reach x > left_x_max (m).
        right_x_min: the right arm cannot reach x < right_x_min (m).
        wrist_fov: side of the square table patch seen by a wrist camera (m).
    """

    image_size: int = 96
    fps: int = 30
    max_steps: int = 200
    episode_cap: int = 400
    max_speed: float = 0.33
    grip_speed: float = 3.0
    grasp_radius: float = 0.032
    close_threshold: float = 0.4
    release_threshold: float = 0.55
    block_half: float = 0.028
    handover_x: float = 0.5
    handover_y: float = 0.5
    handover_radius: float = 0.06
    goal_radius: float = 0.07
    left_x_max: float = 0.58
    right_x_min: float = 0.42
    wrist_fov: float = 0.42

    @property
    def dt(self) -> float:
        """Control period (s)."""
        return 1.0 / self.fps
