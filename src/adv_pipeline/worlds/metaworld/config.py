"""``parameters_metaworld.yml``'s ``metaworld`` namespace: what a Meta-World recording holds.

No Meta-World import here: the configuration is checked (task names included, against
the installed package's task list) before any simulation starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

QUALITIES: tuple[str, ...] = ("expert", "noisy", "detour", "dagger")
"""Operator qualities, best first; ``quality`` column = index in this tuple.

- ``expert``: Meta-World's scripted expert, with small white action noise.
- ``noisy``: the expert's action plus Ornstein-Uhlenbeck noise (time-correlated drift).
- ``detour``: the expert, interrupted by detours through a wrong waypoint (gripper open,
  so a held object drops), hesitations (no motion), then re-grasps.
- ``dagger``: a perturbed policy (OU noise, detours) acts; the expert takes over for a
  while at random moments (``intervention = 1`` on the expert's frames).
"""


CAMERAS: tuple[str, ...] = (
    "corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV",
)  # fmt: skip
"""Meta-World's named cameras."""


@dataclass(frozen=True)
class OperatorConfig:
    """How the worse operators perturb the expert (actions are in [-1, 1]).

    Attributes:
        expert_noise: standard deviation of the expert's white action noise.
        ou_sigma: OU noise scale (stationary standard deviation per action dimension).
        ou_theta: OU mean reversion per step (1 / correlation time in steps).
        detours: detours per ``detour`` episode.
        detour_steps: (min, max) steps spent heading for the wrong waypoint.
        hesitate_steps: (min, max) steps without motion after a detour.
        takeover_rate: per-step probability that the expert takes over (``dagger``).
        takeover_steps: (min, max) steps of an expert takeover.
    """

    expert_noise: float = 0.05
    ou_sigma: float = 0.15
    ou_theta: float = 0.1
    detours: int = 2
    detour_steps: tuple[int, int] = (8, 20)
    hesitate_steps: tuple[int, int] = (4, 12)
    takeover_rate: float = 0.04
    takeover_steps: tuple[int, int] = (10, 20)

    def __post_init__(self) -> None:
        for name in ("detour_steps", "hesitate_steps", "takeover_steps"):
            lo, hi = (int(v) for v in getattr(self, name))
            if not 0 <= lo <= hi:
                raise ValueError(f"metaworld.operators.{name}: need 0 <= min <= max, got {lo, hi}")
        if not 0.0 <= self.takeover_rate <= 1.0:
            raise ValueError("metaworld.operators.takeover_rate must be in [0, 1]")


@dataclass(frozen=True)
class MetaWorldConfig:
    """A Meta-World recording and the world Stage 3 evaluates in.

    Attributes:
        tasks: Meta-World v3 task names (``metaworld.policies.ENV_POLICY_MAP`` keys), each
            with a scripted expert.
        task_texts: ``{task: text}`` of each episode's task (tasks.jsonl); a task not listed
            gets its name without ``-v3``, dashes as spaces.
        episodes_per_task: episodes recorded per task.
        mix: share of episodes per quality (:data:`QUALITIES`), normalised.
        seed: the recording's seed: episode ``i`` starts from Meta-World's state of seed
            ``1_000_000 * (seed + 1) + i`` (disjoint from the evaluation's
            ``awbc.eval.seed_offset + i``); its operator noise is seeded by (seed, task, i).
        max_steps: episode cap in recording and rollouts (steps; Meta-World's own is 500).
        fps: frames per second (Meta-World steps at 80 Hz: 5 substeps of 2.5 ms).
        phase_move: the object must move this far (m) from its start for the second
            phase (transport) to begin: the boundary of the annotation file.
        operators: :class:`OperatorConfig`.
        camera: None (state observations only) or one of Meta-World's cameras (e.g.
            ``corner2``), recorded as ``observation.images.<camera>`` through MuJoCo's
            offscreen renderer (shadows, reflections and anti-aliasing off; EGL unless
            ``MUJOCO_GL`` says otherwise) and rendered for the closed loop.
        image_size: side of the square camera image (pixels).
        workers: processes recording episodes.
    """

    tasks: tuple[str, ...] = ("pick-place-v3", "push-v3")
    task_texts: Mapping[str, str] = field(default_factory=dict)
    episodes_per_task: int = 100
    mix: Mapping[str, float] = field(
        default_factory=lambda: {"expert": 0.3, "noisy": 0.25, "detour": 0.2, "dagger": 0.25}
    )
    seed: int = 0
    max_steps: int = 200
    fps: int = 80
    phase_move: float = 0.02
    operators: OperatorConfig = OperatorConfig()
    camera: str | None = None
    image_size: int = 84
    workers: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            object.__setattr__(self, "tasks", (self.tasks,))
        object.__setattr__(self, "tasks", tuple(str(t) for t in self.tasks))
        if not self.tasks:
            raise ValueError("metaworld.tasks: name at least one task, e.g. [pick-place-v3]")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"metaworld.tasks lists a task twice: {list(self.tasks)}")
        unknown = sorted(set(self.mix) - set(QUALITIES))
        if unknown:
            raise ValueError(
                f"metaworld.mix has unknown qualities {unknown}; use {', '.join(QUALITIES)}"
            )
        if any(float(v) < 0 for v in self.mix.values()) or sum(self.mix.values()) <= 0:
            raise ValueError("metaworld.mix: shares must be >= 0 with a positive sum")
        if self.camera is not None and self.camera not in CAMERAS:
            raise ValueError(
                f"metaworld.camera={self.camera!r}: one of {', '.join(CAMERAS)}, or null"
            )
        if not 16 <= int(self.image_size) <= 512:
            raise ValueError(f"metaworld.image_size={self.image_size}: 16 to 512 pixels")
        if self.episodes_per_task < 1 or not 2 <= self.max_steps <= 500 or self.fps < 1:
            raise ValueError(
                "metaworld: episodes_per_task >= 1, max_steps in [2, 500] (Meta-World stops "
                "an episode at 500 steps) and fps >= 1 are needed"
            )

    def text(self, task: str) -> str:
        """The task text of ``task``."""
        return str(self.task_texts.get(task) or task.removesuffix("-v3").replace("-", " "))

    def qualities(self) -> list[str]:
        """The quality of each of a task's episodes: ``round(share * n)`` of each, best
        quality first, the remainder to the expert."""
        total = float(sum(self.mix.values()))
        n = self.episodes_per_task
        counts = {q: int(round(self.mix.get(q, 0) / total * n)) for q in QUALITIES}
        excess = sum(counts.values()) - self.episodes_per_task
        for q in reversed(QUALITIES):  # rounding: take from the worst, give to the expert
            take = min(max(excess, 0), counts[q])
            counts[q] -= take
            excess -= take
        counts["expert"] += -excess if excess < 0 else 0
        return [q for q in QUALITIES for _ in range(counts[q])]

    def episode_seed(self, i: int) -> int:
        """The start-state seed of a task's episode ``i``."""
        return 1_000_000 * (self.seed + 1) + i
