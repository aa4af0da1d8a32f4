"""Meta-World recordings: episodes of several operator qualities as one LeRobot dataset,
and the boundary file of the expert's phases (what the ``annotation`` pipeline reads).

Frame t holds the state observation before action t; ``next.success`` says whether the
task is solved after it. An episode ends on its first successful frame or at
``max_steps`` (then it failed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from adv_pipeline.annotation.records import EpisodeAnnotation
from adv_pipeline.lerobot import (
    IMAGE_KEY_PREFIX,
    NewDataset,
    VideoOptions,
    feature_spec,
    video_feature_spec,
)
from adv_pipeline.schema import INTERVENTION, NEXT_SUCCESS, QUALITY, STATE_COLUMN

from .config import QUALITIES, MetaWorldConfig, OperatorConfig
from .env import (
    ACTION_NAMES,
    ROBOT_TYPE,
    STATE_NAMES,
    CameraRenderer,
    check_tasks,
    make_expert,
    make_raw_env,
)

# where a detour's wrong waypoint is drawn (m, Meta-World's hand workspace)
WAYPOINT_LOW = np.array([-0.3, 0.45, 0.08])
WAYPOINT_HIGH = np.array([0.3, 0.85, 0.3])


class Operator:
    """One episode's operator of quality ``quality`` around the scripted expert.

    ``act(obs, expert)`` gives ``(action (4,), intervention)``; all randomness comes from
    ``rng`` (the recording is reproducible from its seed)."""

    def __init__(
        self, quality: str, config: OperatorConfig, rng: np.random.Generator, max_steps: int
    ) -> None:
        self.quality, self.c, self.rng = quality, config, rng
        self.ou = np.zeros(3)
        self.t = 0
        self.takeover_left = 0
        self.plan: dict[int, tuple[str, np.ndarray | None]] = {}  # step -> (mode, waypoint)
        if quality in ("detour", "dagger"):
            self._plan_detours(1 if quality == "dagger" else config.detours, max_steps)

    def _plan_detours(self, n: int, max_steps: int) -> None:
        c, rng = self.c, self.rng
        for start in np.sort(rng.integers(5, max(6, max_steps // 2), size=n)):
            t = int(start)
            waypoint = rng.uniform(WAYPOINT_LOW, WAYPOINT_HIGH)
            for _ in range(int(rng.integers(c.detour_steps[0], c.detour_steps[1] + 1))):
                self.plan.setdefault(t, ("detour", waypoint))
                t += 1
            for _ in range(int(rng.integers(c.hesitate_steps[0], c.hesitate_steps[1] + 1))):
                self.plan.setdefault(t, ("hesitate", None))
                t += 1

    def _ou_step(self) -> np.ndarray:
        c = self.c
        kick = c.ou_sigma * np.sqrt(2 * c.ou_theta) * self.rng.normal(size=3)
        self.ou += -c.ou_theta * self.ou + kick
        return self.ou

    def act(self, obs: np.ndarray, expert: np.ndarray) -> tuple[np.ndarray, int]:
        c, rng = self.c, self.rng
        t, self.t = self.t, self.t + 1
        noise = c.expert_noise * rng.normal(size=4)
        if self.quality == "dagger":
            if self.takeover_left == 0 and rng.random() < c.takeover_rate:
                lo, hi = c.takeover_steps
                self.takeover_left = int(rng.integers(lo, hi + 1))
            if self.takeover_left > 0:
                self.takeover_left -= 1
                return np.clip(expert + noise, -1, 1).astype(np.float32), 1
        action = expert + noise
        if self.quality in ("noisy", "dagger"):
            action[:3] += self._ou_step()
        mode, waypoint = self.plan.get(t, ("", None))
        if mode == "detour":
            action = np.append(np.clip(10.0 * (waypoint - obs[:3]), -1, 1), -1.0)
        elif mode == "hesitate":
            action = np.array([0.0, 0.0, 0.0, -1.0])
        return np.clip(action, -1, 1).astype(np.float32), 0


@dataclass(frozen=True)
class RecordedEpisode:
    """One recorded episode (T frames) with its task text (what the writer wants)."""

    task: str
    success: bool
    columns: Mapping[str, np.ndarray] = field(repr=False)
    camera: str | None = None
    frames: np.ndarray | None = field(default=None, repr=False)  # uint8 (T, H, W, 3)

    @property
    def length(self) -> int:
        return len(self.columns["action"])

    def iter_frames(self) -> Iterator[dict]:
        if self.frames is None:
            return iter([{}] * self.length)  # state observations only: no camera
        return ({self.camera: frame} for frame in self.frames)


def record_episode(
    task: str, text: str, seed: int, quality: str, config: MetaWorldConfig, noise_seed
) -> RecordedEpisode:
    """Roll out the operator of ``quality`` from the start state of ``seed`` until the
    first success or ``config.max_steps`` frames."""
    env = make_raw_env(task, seed)
    expert = make_expert(task)
    rng = np.random.default_rng(noise_seed)
    operator = Operator(quality, config.operators, rng, config.max_steps)
    obs, _ = env.reset()
    camera = CameraRenderer(env, config.camera, config.image_size) if config.camera else None
    states, actions, succ, interv, frames = [], [], [], [], []
    for _ in range(config.max_steps):
        action, intervened = operator.act(obs, expert(obs))
        if camera is not None:
            frames.append(camera.render())
        states.append(obs.astype(np.float32))
        actions.append(action)
        interv.append(intervened)
        obs, _, _, _, info = env.step(action.astype(np.float64))
        succ.append(bool(info["success"]))
        if succ[-1]:
            break
    if camera is not None:
        camera.close()
    columns = {
        STATE_COLUMN: np.stack(states),
        "action": np.stack(actions),
        NEXT_SUCCESS: np.array(succ, dtype=bool),
        INTERVENTION: np.array(interv, dtype=np.int64),
        QUALITY: np.full(len(actions), QUALITIES.index(quality), dtype=np.int64),
    }
    images = np.stack(frames) if frames else None
    return RecordedEpisode(text, bool(succ[-1]), columns, config.camera, images)


@dataclass(frozen=True)
class EpisodeRecipe:
    """Picklable recipe of one episode (runs in a writer worker process)."""

    task: str
    text: str
    seed: int
    quality: str
    config: MetaWorldConfig
    noise_seed: tuple[int, ...]

    def __call__(self) -> RecordedEpisode:
        return record_episode(
            self.task, self.text, self.seed, self.quality, self.config, self.noise_seed
        )


def episode_recipes(config: MetaWorldConfig) -> list[EpisodeRecipe]:
    """Every episode of the recording, task by task, qualities best first within a task."""
    out = []
    for k, task in enumerate(config.tasks):
        for i, quality in enumerate(config.qualities()):
            out.append(
                EpisodeRecipe(
                    task, config.text(task), config.episode_seed(i), quality, config,
                    (config.seed, k, i),
                )
            )  # fmt: skip
    return out


def recording_features(config: MetaWorldConfig) -> dict[str, dict]:
    """info.json features of a Meta-World recording (its camera's video, if any)."""
    video = {}
    if config.camera:
        size = config.image_size
        video[IMAGE_KEY_PREFIX + config.camera] = video_feature_spec(
            size, size, config.fps, VideoOptions()
        )
    return {
        **video,
        STATE_COLUMN: feature_spec(np.zeros((1, len(STATE_NAMES)), np.float32), STATE_NAMES),
        "action": feature_spec(np.zeros((1, len(ACTION_NAMES)), np.float32), ACTION_NAMES),
        NEXT_SUCCESS: feature_spec(np.zeros(1, bool)),
        INTERVENTION: feature_spec(np.zeros(1, np.int64)),
        QUALITY: feature_spec(np.zeros(1, np.int64), QUALITIES),
    }


def recording_plan(config: MetaWorldConfig) -> NewDataset:
    """The write plan of a Meta-World recording (tasks checked before any simulation)."""
    check_tasks(config.tasks)
    return NewDataset(
        fps=config.fps,
        features=recording_features(config),
        episodes=episode_recipes(config),
        robot_type=ROBOT_TYPE,
        video=VideoOptions(),
        workers=config.workers,
    )


def phase_boundary(state: np.ndarray, phase_move: float) -> int:
    """The first frame of the second phase of an episode's (T, 39) states: the object has
    moved ``phase_move`` m from its start (the expert reached and took it, and now moves
    it); if it never does, the frame after the hand came closest to it (the reach's end).
    Always inside [1, T - 1]."""
    obj, hand = state[:, 4:7], state[:, 0:3]
    moved = np.linalg.norm(obj - obj[0], axis=1) > phase_move
    if moved.any():
        t = int(np.argmax(moved))
    else:
        t = int(np.argmin(np.linalg.norm(hand - obj, axis=1))) + 1
    return int(np.clip(t, 1, len(state) - 1))


def recording_annotations(dataset, config: MetaWorldConfig) -> list[EpisodeAnnotation]:
    """The boundary file of a recording: per episode, start 0, end T - 1, the phase
    boundary (:func:`phase_boundary`) and whether it succeeded (its last ``next.success``),
    from the recorded columns of ``dataset`` (a :class:`LeRobotDatasetReader`)."""
    cols = dataset.read_columns([STATE_COLUMN, NEXT_SUCCESS])
    state, success = np.asarray(cols[STATE_COLUMN], np.float64), np.asarray(cols[NEXT_SUCCESS])
    offsets = dataset.offsets
    records = []
    for i, e in enumerate(dataset.episode_indices.tolist()):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        boundary = phase_boundary(state[lo:hi], config.phase_move)
        records.append(
            EpisodeAnnotation(int(e), 0, hi - lo - 1, (boundary,), bool(success[hi - 1]))
        )
    return records
