"""Low-dimensional sim state ("snapshot"), dynamics and progress measures.

A snapshot is a float64 vector of shape (SNAPSHOT_DIM,).  Everything in this
module is a pure function of a snapshot (and the config), so episodes can be
stored as (T, SNAPSHOT_DIM) arrays and re-rendered lazily.
"""

from __future__ import annotations

import numpy as np

from .config import STATE_DIM, DemoTaskConfig

# Snapshot layout (indices).  The first STATE_DIM entries are the policy state.
LX, LY, LO, RX, RY, RO, BX, BY, HL, HR, GX, GY = range(12)
B0X, B0Y = 12, 13  # block start position (m), normalises stage-0 progress
OLX, OLY, ORX, ORY = 14, 15, 16, 17  # block offset from each holding gripper (m)
STEP = 18  # step counter
SNAPSHOT_DIM: int = 19

_Y_MIN, _Y_MAX = 0.04, 0.96
_X_MIN, _X_MAX = 0.02, 0.98
_TEAR_DIST = 0.05  # both grippers holding but pulling apart further: left slips (m)


def initial_snapshot(config: DemoTaskConfig, seed: int) -> np.ndarray:
    """Sample the start state for ``seed`` (block, goal and gripper starts).

    Returns:
        float64 (SNAPSHOT_DIM,) snapshot, grippers open, nothing held.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x51A1])
    s = np.zeros(SNAPSHOT_DIM, dtype=np.float64)
    s[LX], s[LY] = rng.uniform(0.07, 0.14), rng.uniform(0.3, 0.7)
    s[RX], s[RY] = rng.uniform(0.86, 0.93), rng.uniform(0.3, 0.7)
    s[LO] = rng.uniform(0.75, 0.9)
    s[RO] = rng.uniform(0.75, 0.9)
    while True:
        bx, by = rng.uniform(0.14, 0.36), rng.uniform(0.12, 0.88)
        if np.hypot(bx - s[LX], by - s[LY]) > 0.1:
            break
    s[BX], s[BY] = bx, by
    s[B0X], s[B0Y] = bx, by
    s[GX], s[GY] = rng.uniform(0.68, 0.88), rng.uniform(0.14, 0.86)
    return s


def policy_state(snapshot: np.ndarray) -> np.ndarray:
    """Policy-visible state: float32 (STATE_DIM,) (see ``STATE_NAMES``)."""
    return snapshot[:STATE_DIM].astype(np.float32)


def step_snapshot(snapshot: np.ndarray, action: np.ndarray, config: DemoTaskConfig) -> np.ndarray:
    """Advance the physics by one control period.

    Args:
        snapshot: float64 (SNAPSHOT_DIM,) current state (not modified).
        action: (ACTION_DIM,) command, clipped to [-1, 1]; NaN is treated as 0.
        config: task constants.

    Returns:
        The next snapshot, float64 (SNAPSHOT_DIM,).
    """
    a = np.clip(np.nan_to_num(np.asarray(action, dtype=np.float64).reshape(-1)[:6]), -1.0, 1.0)
    s = snapshot.copy()
    dv = config.max_speed * config.dt
    dg = config.grip_speed * config.dt
    s[LX] = min(max(s[LX] + a[0] * dv, _X_MIN), config.left_x_max)
    s[LY] = min(max(s[LY] + a[1] * dv, _Y_MIN), _Y_MAX)
    s[RX] = min(max(s[RX] + a[3] * dv, config.right_x_min), _X_MAX)
    s[RY] = min(max(s[RY] + a[4] * dv, _Y_MIN), _Y_MAX)
    s[LO] += min(max(0.5 * (a[2] + 1.0) - s[LO], -dg), dg)
    s[RO] += min(max(0.5 * (a[5] + 1.0) - s[RO], -dg), dg)

    for gx, gy, go, held, ox, oy in ((LX, LY, LO, HL, OLX, OLY), (RX, RY, RO, HR, ORX, ORY)):
        if s[held] > 0.5 and s[go] > config.release_threshold:
            s[held] = 0.0
        elif s[held] < 0.5 and s[go] < config.close_threshold:
            if np.hypot(s[BX] - s[gx], s[BY] - s[gy]) < config.grasp_radius:
                s[held] = 1.0
                s[ox], s[oy] = s[BX] - s[gx], s[BY] - s[gy]

    hl, hr = s[HL] > 0.5, s[HR] > 0.5
    plx, ply = s[LX] + s[OLX], s[LY] + s[OLY]
    prx, pry = s[RX] + s[ORX], s[RY] + s[ORY]
    if hl and hr:
        if np.hypot(plx - prx, ply - pry) > _TEAR_DIST:
            s[HL] = 0.0
            s[BX], s[BY] = prx, pry
        else:
            s[BX], s[BY] = 0.5 * (plx + prx), 0.5 * (ply + pry)
    elif hl:
        s[BX], s[BY] = plx, ply
    elif hr:
        s[BX], s[BY] = prx, pry
    s[STEP] += 1.0
    return s


def stage_of(snapshot: np.ndarray, config: DemoTaskConfig) -> int:
    """Current stage: 1 once the right gripper holds the block (or the free
    block lies right of the hand-over centre), else 0."""
    if snapshot[HR] > 0.5:
        return 1
    if snapshot[HL] < 0.5 and snapshot[BX] > config.handover_x:
        return 1
    return 0


def is_success(snapshot: np.ndarray, config: DemoTaskConfig) -> bool:
    """True when the block is released inside the goal zone."""
    if snapshot[HL] > 0.5 or snapshot[HR] > 0.5:
        return False
    d = np.hypot(snapshot[BX] - snapshot[GX], snapshot[BY] - snapshot[GY])
    return bool(d < config.goal_radius - 0.02)


def progress_of(snapshot: np.ndarray, config: DemoTaskConfig) -> float:
    """True physical task progress in [0, 1] (unitless, continuous).

    Stage 0 (max 0.5): 15% reaching the block with the left gripper, 10%
    holding it, 75% block distance travelled towards the hand-over zone.
    Stage 1 (0.5 .. 1): 10% right gripper holding alone, 80% block distance
    travelled from the hand-over centre to the goal, 10% released in goal.
    Carrying the block away or dropping it lowers the value.
    """
    s = snapshot
    if is_success(s, config):
        return 1.0
    hl, hr = s[HL] > 0.5, s[HR] > 0.5
    if stage_of(s, config) == 0:
        reach = 1.0 if hl else 1.0 - min(np.hypot(s[LX] - s[BX], s[LY] - s[BY]) / 0.4, 1.0)
        d = np.hypot(s[BX] - config.handover_x, s[BY] - config.handover_y) - config.handover_radius
        d0 = max(
            np.hypot(s[B0X] - config.handover_x, s[B0Y] - config.handover_y)
            - config.handover_radius,
            0.05,
        )
        h = 1.0 - min(max(d / d0, 0.0), 1.0)
        return float(0.5 * (0.15 * reach + 0.10 * hl + 0.75 * h))
    d_hg = max(np.hypot(s[GX] - config.handover_x, s[GY] - config.handover_y), 0.05)
    g = 1.0 - min(max(np.hypot(s[BX] - s[GX], s[BY] - s[GY]) / d_hg, 0.0), 1.0)
    solo = hr and not hl
    return float(0.5 + 0.5 * (0.10 * solo + 0.80 * g))
