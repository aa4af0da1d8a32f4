"""Scripted demonstrators: a clean expert and operators of lower quality.

All demonstrators act from the policy state only (float32 (STATE_DIM,), see
``STATE_NAMES``), so they can drive :class:`DemoTask` in closed loop exactly
like a learned policy.  Actions are float32 (ACTION_DIM,) in [-1, 1]: velocity
commands never exceed ~0.85 in norm and grip commands sit near +/-0.7, so no
action dimension is saturated at its bounds.

Quality modes:

* ``"expert"``: direct, fast (0.85 x max speed), tiny noise.
* ``"suboptimal"``: slower operator with hesitation pauses, detours to random
  waypoints and state-dependent mistakes that undo progress: carrying the
  block back away from the hand-over zone and dropping it there, carrying it
  away from the goal, releasing it short of the goal.
* ``"dagger"``: a weak, noisy version of the suboptimal operator acts
  (intervention 0); a supervisor watching the true progress hands control to
  the expert (intervention 1) for 20-45 steps whenever progress is undone or
  stalls for 35 steps.

With ``recover_at`` set, every operator turns into the expert from that step
on, so generated episodes always end in success.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ACTION_DIM, STATE_DIM, DemoTaskConfig
from .state import (
    B0X,
    B0Y,
    BX,
    BY,
    GX,
    GY,
    HL,
    HR,
    LO,
    LX,
    LY,
    RO,
    RX,
    RY,
    SNAPSHOT_DIM,
    progress_of,
    stage_of,
)

OPEN_CMD = 0.7  # grip command to open (opening target 0.85)
CLOSE_CMD = -0.7  # grip command to close (opening target 0.15)
EXPERT_SPEED = 0.85  # expert velocity command norm cap
_LEFT_HOME = np.array([0.15, 0.5])
_RIGHT_HOME = np.array([0.85, 0.5])
_RIGHT_GRASP_DX = 0.022  # right arm grasps the block on its right side (m)


def _state_vec(task_state: Any) -> np.ndarray:
    """Accept an Observation (proprioception + environment state), a policy state
    (STATE_DIM,) or a snapshot."""
    if hasattr(task_state, "environment_state"):
        s = np.concatenate([task_state.state, task_state.environment_state])
    else:
        s = task_state
    return np.asarray(s, dtype=np.float64).reshape(-1)[:STATE_DIM]


def expert_targets(
    s: np.ndarray, config: DemoTaskConfig
) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Expert set-points: (left target xy (m), left grip cmd, right target xy, right grip cmd)."""
    L, R = s[[LX, LY]], s[[RX, RY]]
    B, G = s[[BX, BY]], s[[GX, GY]]
    H = np.array([config.handover_x, config.handover_y])
    hl, hr = s[HL] > 0.5, s[HR] > 0.5
    stage = 1 if hr or (not hl and B[0] > config.handover_x) else 0
    # left arm
    if hl and hr:
        lt, lg = L, OPEN_CMD  # hand-over: let go
    elif hl:
        lt, lg = L + (H - B), CLOSE_CMD  # carry the block to the hand-over centre
    elif stage == 0:
        d = np.hypot(*(B - L))
        lt, lg = B, (CLOSE_CMD if d < 0.012 else OPEN_CMD)
    else:
        lt, lg = _LEFT_HOME, OPEN_CMD
    # right arm
    grasp = B + np.array([_RIGHT_GRASP_DX, 0.0])
    if hr and hl:
        rt, rg = R, CLOSE_CMD  # wait for the left arm to let go
    elif hr:
        rt = R + (G - B)
        rg = OPEN_CMD if np.hypot(*(G - B)) < 0.012 else CLOSE_CMD
    elif stage == 1 or (hl and np.hypot(*(B - H)) < 0.02):
        rt, rg = grasp, (CLOSE_CMD if np.hypot(*(grasp - R)) < 0.012 else OPEN_CMD)
    else:
        rt, rg = H + np.array([0.075, 0.0]), OPEN_CMD  # wait next to the hand-over zone
    return lt, lg, rt, rg


def _velocity(
    pos: np.ndarray, target: np.ndarray, speed: float, config: DemoTaskConfig
) -> np.ndarray:
    """Proportional velocity command towards ``target``, norm capped at ``speed``."""
    v = (target - pos) / (config.max_speed * config.dt * 3.0)
    n = np.hypot(*v)
    return v * (speed / n) if n > speed else v


def _compose(
    s: np.ndarray,
    lt: np.ndarray,
    lg: float,
    rt: np.ndarray,
    rg: float,
    speed: float,
    noise: float,
    rng: np.random.Generator,
    config: DemoTaskConfig,
) -> np.ndarray:
    a = np.empty(ACTION_DIM, dtype=np.float64)
    a[0:2] = _velocity(s[[LX, LY]], lt, speed, config)
    a[2] = lg
    a[3:5] = _velocity(s[[RX, RY]], rt, speed, config)
    a[5] = rg
    a += rng.normal(0.0, noise, ACTION_DIM) + rng.normal(0.0, 0.01, ACTION_DIM)
    return np.clip(a, -0.98, 0.98).astype(np.float32)


def expert_action(
    task_state: Any,
    rng: np.random.Generator,
    config: DemoTaskConfig | None = None,
    speed: float = EXPERT_SPEED,
    noise: float = 0.01,
) -> np.ndarray:
    """Clean expert action, float32 (ACTION_DIM,).

    Args:
        task_state: Observation, policy state (STATE_DIM,) or snapshot.
        rng: noise source (tiny Gaussian noise on every dimension).
        config: task config (defaults to ``DemoTaskConfig()``).
        speed: velocity command norm cap (fraction of max speed).
        noise: extra Gaussian action noise std.
    """
    cfg = config if config is not None else DemoTaskConfig()
    s = _state_vec(task_state)
    lt, lg, rt, rg = expert_targets(s, cfg)
    return _compose(s, lt, lg, rt, rg, speed, noise, rng, cfg)


_PARAMS = {
    # speed: velocity-norm cap range; noise: action noise std; p_*: per-step trigger
    # probabilities of pause / detour / carry-back (left, near hand-over) / carry-away
    # (right, far from goal) / drop short of the goal.
    "suboptimal": dict(
        speed=(0.6, 0.8),
        noise=0.05,
        p_pause=0.006,
        p_detour=0.003,
        p_back=0.03,
        p_away=0.012,
        p_drop=0.05,
    ),
    "weak": dict(
        speed=(0.45, 0.7),
        noise=0.25,
        p_pause=0.02,
        p_detour=0.012,
        p_back=0.06,
        p_away=0.04,
        p_drop=0.08,
    ),
}


class ExpertOperator:
    """Closed-loop expert policy: ``op(observation) -> action``."""

    def __init__(self, seed: int, config: DemoTaskConfig | None = None) -> None:
        self.config = config if config is not None else DemoTaskConfig()
        self.rng = np.random.default_rng(seed)
        self.last_intervention = 0

    def __call__(self, observation: Any) -> np.ndarray:
        return expert_action(observation, self.rng, self.config)


class SuboptimalOperator:
    """Hesitating, detouring, mistake-making operator (stateful, see module doc).

    Args:
        seed: randomness of the mistake process.
        config: task config.
        recover_at: from this step on act as the expert (None: never).
        profile: ``"suboptimal"`` or ``"weak"`` (noisier, more mistakes).
    """

    def __init__(
        self,
        seed: int,
        config: DemoTaskConfig | None = None,
        recover_at: int | None = None,
        profile: str = "suboptimal",
    ) -> None:
        self.config = config if config is not None else DemoTaskConfig()
        self.rng = np.random.default_rng(seed)
        self.p = _PARAMS[profile]
        self.speed = float(self.rng.uniform(*self.p["speed"]))
        self.recover_at = recover_at
        self.t = 0
        self.mode, self.timer, self.arm = "normal", 0, 0
        self.vec = np.zeros(2)
        self.release_after = False
        self.counts = {"back": 0, "away": 0, "drop": 0, "detour": 0}
        self.last_intervention = 0

    def reset_mode(self) -> None:
        """Abort the current hesitation / detour / mistake."""
        self.mode, self.timer = "normal", 0

    def _trigger(self, s: np.ndarray) -> None:
        cfg, rng, p = self.config, self.rng, self.p
        B, G = s[[BX, BY]], s[[GX, GY]]
        H = np.array([cfg.handover_x, cfg.handover_y])
        hl, hr = s[HL] > 0.5, s[HR] > 0.5
        dh, dg = np.hypot(*(B - H)), np.hypot(*(B - G))
        u = rng.random()
        c = self.counts
        if hl and not hr and cfg.handover_radius < dh < 0.18 and u < p["p_back"] and c["back"] < 2:
            c["back"] += 1
            ang = np.arctan2(*(B - H)[::-1]) + rng.uniform(-0.7, 0.7)
            self.mode, self.arm, self.timer = "carry", 0, int(rng.integers(12, 30))
            self.vec, self.release_after = np.array([np.cos(ang), np.sin(ang)]), True
        elif hr and not hl and 0.1 < dg < 0.3 and u < p["p_away"] and c["away"] < 2:
            c["away"] += 1
            ang = np.arctan2(*(B - G)[::-1]) + rng.uniform(-0.9, 0.9)
            self.mode, self.arm, self.timer = "carry", 1, int(rng.integers(12, 30))
            self.vec, self.release_after = (
                np.array([np.cos(ang), np.sin(ang)]),
                bool(rng.random() < 0.5),
            )
        elif hr and not hl and cfg.goal_radius < dg < 0.14 and u < p["p_drop"] and c["drop"] < 2:
            c["drop"] += 1
            self.mode, self.arm, self.timer = "drop", 1, 6
        elif u > 1.0 - p["p_pause"]:
            self.mode, self.timer = "pause", int(rng.integers(8, 26))
        elif u > 1.0 - p["p_pause"] - p["p_detour"] and c["detour"] < 3:
            c["detour"] += 1
            self.arm = 0 if stage_from_state(s, cfg) == 0 else 1
            lo_x = 0.05 if self.arm == 0 else cfg.right_x_min
            hi_x = cfg.left_x_max if self.arm == 0 else 0.95
            self.mode, self.timer = "detour", int(rng.integers(15, 40))
            self.vec = np.array([rng.uniform(lo_x, hi_x), rng.uniform(0.1, 0.9)])

    def __call__(self, observation: Any) -> np.ndarray:
        s = _state_vec(observation)
        cfg, rng = self.config, self.rng
        self.t += 1
        if self.recover_at is not None and self.t > self.recover_at:
            return expert_action(s, rng, cfg)
        if self.mode == "normal":
            self._trigger(s)
        lt, lg, rt, rg = expert_targets(s, cfg)
        arms = [[lt, lg], [rt, rg]]
        pos = [s[[LX, LY]], s[[RX, RY]]]
        hold = [2.0 * s[LO] - 1.0, 2.0 * s[RO] - 1.0]
        speed = self.speed
        if self.mode == "pause":
            arms = [[pos[0], hold[0]], [pos[1], hold[1]]]
        elif self.mode == "detour":
            arms[self.arm] = [self.vec, hold[self.arm]]
            if np.hypot(*(self.vec - pos[self.arm])) < 0.02:
                self.timer = 0
        elif self.mode == "carry":
            arms[self.arm] = [pos[self.arm] + 0.1 * self.vec, CLOSE_CMD]
        elif self.mode == "drop":
            arms[self.arm] = [pos[self.arm], OPEN_CMD]
        if self.mode != "normal":
            self.timer -= 1
            if self.timer <= 0:
                if self.mode == "carry" and self.release_after:
                    self.mode, self.timer = "drop", 6
                else:
                    self.mode = "normal"
        (lt, lg), (rt, rg) = arms
        return _compose(s, lt, lg, rt, rg, speed, self.p["noise"], rng, cfg)


class DaggerOperator:
    """Weak operator supervised by the expert (``last_intervention`` = 1 when
    the expert produced the last action).

    The supervisor tracks the true progress (computed from the state and the
    block position seen at the first call) and takes over for 20-45 steps when
    progress drops 0.04 below its best value or stalls for 35 steps.
    """

    def __init__(
        self, seed: int, config: DemoTaskConfig | None = None, recover_at: int | None = None
    ) -> None:
        self.config = config if config is not None else DemoTaskConfig()
        self.rng = np.random.default_rng(seed)
        self.weak = SuboptimalOperator(int(self.rng.integers(2**31)), self.config, None, "weak")
        self.recover_at = recover_at
        self.t = 0
        self.b0: np.ndarray | None = None
        self.best, self.t_best, self.timer = -1.0, 0, 0
        self.last_intervention = 0

    def __call__(self, observation: Any) -> np.ndarray:
        s = _state_vec(observation)
        if self.b0 is None:
            self.b0 = s[[BX, BY]].copy()
        p = progress_from_state(s, self.b0, self.config)
        if p > self.best + 0.005:
            self.best, self.t_best = p, self.t
        if self.timer <= 0 and (p < self.best - 0.04 or self.t - self.t_best > 35):
            self.timer = int(self.rng.integers(20, 46))
            self.weak.reset_mode()
        forced = self.recover_at is not None and self.t >= self.recover_at
        self.t += 1
        if self.timer > 0 or forced:
            self.timer -= 1
            if self.timer <= 0:
                self.best, self.t_best = p, self.t
            self.last_intervention = 1
            return expert_action(s, self.rng, self.config)
        self.last_intervention = 0
        return self.weak(s)


def stage_from_state(s: np.ndarray, config: DemoTaskConfig) -> int:
    """Stage computed from a policy state (STATE_DIM,)."""
    snap = np.zeros(SNAPSHOT_DIM)
    snap[:STATE_DIM] = s[:STATE_DIM]
    return stage_of(snap, config)


def progress_from_state(s: np.ndarray, block_start: np.ndarray, config: DemoTaskConfig) -> float:
    """True progress from a policy state (STATE_DIM,) and the block start xy (m)."""
    snap = np.zeros(SNAPSHOT_DIM)
    snap[:STATE_DIM] = s[:STATE_DIM]
    snap[B0X], snap[B0Y] = block_start
    return progress_of(snap, config)


def make_policy(
    quality: str, seed: int, config: DemoTaskConfig | None = None, recover_at: int | None = None
) -> ExpertOperator | SuboptimalOperator | DaggerOperator:
    """Stateful scripted policy ``policy(observation) -> action`` for a quality mode.

    Args:
        quality: one of ``QUALITIES``.
        seed: randomness of the operator (noise, mistakes).
        config: task config.
        recover_at: step from which the operator behaves like the expert
            (None: never; used to guarantee success of generated episodes).
    """
    if quality == "expert":
        return ExpertOperator(seed, config)
    if quality == "suboptimal":
        return SuboptimalOperator(seed, config, recover_at)
    if quality == "dagger":
        return DaggerOperator(seed, config, recover_at)
    raise ValueError(f"unknown quality {quality!r}")
