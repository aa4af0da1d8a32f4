"""Closed-loop evaluation in the demo simulator: batched rollouts, Wilson intervals, report.

All environments of one condition are stepped together: the policy is called once per
re-plan for the whole batch, and each predicted chunk's first ``replan_every`` actions are
executed open loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adv_pipeline.sim import DemoTask, DemoTaskConfig, ExpertOperator, render, rollout

from .config import DEFAULT_GUIDANCE_REFERENCE, EvalConfig, GuidanceReference

if TYPE_CHECKING:  # the policy (and JAX) load only when a policy is rolled out
    from .inference import Policy

# the closed-loop table's columns (:func:`results_table`)
RESULT_COLUMNS = [
    "condition", "prompt", "guidance_scale", "guidance_reference", "n_episodes", "successes",
    "success_rate", "success_ci_low", "success_ci_high", "mean_final_progress", "mean_steps",
    "seconds",
]  # fmt: skip


@dataclass(frozen=True)
class EvalCondition:
    """One evaluated setting: a policy queried with a prompt (None: its default) and a
    guidance weight (and the reference prompt it extrapolates away from)."""

    name: str
    policy: Policy
    prompt: str | None = None
    guidance_scale: float = 1.0
    guidance_reference: GuidanceReference = DEFAULT_GUIDANCE_REFERENCE


@dataclass(frozen=True)
class RolloutBatch:
    """Outcomes of one condition: success bool (n,), final progress float (n,) in [0, 1],
    steps int (n,), seeds int (n,), wall time (s)."""

    name: str
    prompt: str
    guidance_scale: float
    guidance_reference: str  # "" when unguided (w = 1)
    seeds: np.ndarray
    success: np.ndarray
    final_progress: np.ndarray
    steps: np.ndarray
    seconds: float


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% (by default) Wilson score interval of a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact bounds, no rounding residue
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def task_config(config: EvalConfig) -> DemoTaskConfig:
    return DemoTaskConfig(image_size=config.image_size, fps=config.fps, **dict(config.task))


def batched_rollouts(
    policy: Policy,
    seeds: Sequence[int],
    task: DemoTaskConfig,
    prompt: str | None = None,
    guidance_scale: float = 1.0,
    replan_every: int = 8,
    max_steps: int | None = None,
    name: str = "",
    guidance_reference: GuidanceReference = DEFAULT_GUIDANCE_REFERENCE,
) -> RolloutBatch:
    """Roll out ``policy`` from ``DemoTask.reset(seed)`` for every seed, all in lock step,
    until success or ``max_steps`` (default: the task's) steps."""
    if not 1 <= replan_every <= policy.horizon:
        raise ValueError(
            f"awbc.eval.replan_every={replan_every} must be in [1, horizon={policy.horizon}]"
        )
    t0 = time.perf_counter()
    limit = task.max_steps if max_steps is None else int(max_steps)
    envs = [DemoTask(task, render_images=False) for _ in seeds]
    keys = policy.observed_state_keys  # the simulator's columns the policy reads
    states = np.stack([env.reset(int(s)).vector(keys) for env, s in zip(envs, seeds)])
    active = np.ones(len(envs), bool)
    cameras = list(policy.input_cameras)  # its own and its image features' cameras
    prompt = prompt or policy.default_prompt
    images = {
        c: np.zeros((len(envs), task.image_size, task.image_size, 3), np.uint8) for c in cameras
    }
    t = 0
    while active.any() and t < limit:
        if cameras:  # finished envs keep their last frame: the batch shape stays fixed
            for i in np.flatnonzero(active):
                frame = render(envs[i].snapshot, task)
                for c in cameras:
                    images[c][i] = frame[c]
        chunk = policy.act_batch(
            images, states, prompt, guidance_scale, guidance_reference=guidance_reference
        )
        for k in range(min(replan_every, limit - t)):
            for i in np.flatnonzero(active):
                states[i] = envs[i].step(chunk[i, k]).vector(keys)
                active[i] = not envs[i].success
            t += 1
    return RolloutBatch(
        name=name,
        prompt=prompt,
        guidance_scale=float(guidance_scale),
        guidance_reference=guidance_reference if guidance_scale != 1.0 else "",
        seeds=np.asarray(seeds, np.int64),
        success=np.array([env.success for env in envs]),
        final_progress=np.array([env.progress for env in envs], np.float64),
        steps=np.array([env.steps for env in envs], np.int64),
        seconds=time.perf_counter() - t0,
    )


def expert_rollouts(
    seeds: Sequence[int], task: DemoTaskConfig, max_steps: int | None = None
) -> RolloutBatch:
    """The scripted expert that recorded the demo's clean episodes, closed loop from the
    same ``DemoTask.reset(seed)`` states as the policies (its noise seeded by the episode
    seed): the ceiling the policies' success rates are read against."""
    t0 = time.perf_counter()
    runs = [
        rollout(
            DemoTask(task, render_images=False), ExpertOperator(int(s), task), int(s), max_steps
        )
        for s in seeds
    ]
    return RolloutBatch(
        name="expert",
        prompt="(scripted demonstrator)",
        guidance_scale=float("nan"),
        guidance_reference="",
        seeds=np.asarray(seeds, np.int64),
        success=np.array([r.success for r in runs]),
        final_progress=np.array([r.final_progress for r in runs], np.float64),
        steps=np.array([r.steps for r in runs], np.int64),
        seconds=time.perf_counter() - t0,
    )


def evaluate_conditions(
    conditions: Sequence[EvalCondition], config: EvalConfig
) -> list[RolloutBatch]:
    """Every condition on the same seeds ``seed_offset + i``, i < n_episodes, then the
    scripted expert on those seeds when ``config.expert`` (the table's ceiling)."""
    seeds = [config.seed_offset + i for i in range(config.n_episodes)]
    task = task_config(config)
    out = []
    for c in conditions:
        c.policy.reseed(config.sample_seed)
        out.append(
            batched_rollouts(
                c.policy,
                seeds,
                task,
                c.prompt,
                c.guidance_scale,
                config.replan_every,
                config.max_steps,
                c.name,
                c.guidance_reference,
            )
        )
    if config.expert:
        out.append(expert_rollouts(seeds, task, config.max_steps))
    return out


def results_table(results: Sequence[RolloutBatch]) -> pd.DataFrame:
    """One row per condition: success rate, its 95% Wilson interval, mean final progress."""
    rows = []
    for r in results:
        n, k = len(r.success), int(r.success.sum())
        lo, hi = wilson_interval(k, n)
        rows.append(
            {
                "condition": r.name,
                "prompt": r.prompt,
                "guidance_scale": r.guidance_scale,
                "guidance_reference": r.guidance_reference,
                "n_episodes": n,
                "successes": k,
                "success_rate": k / n if n else float("nan"),
                "success_ci_low": lo,
                "success_ci_high": hi,
                "mean_final_progress": float(r.final_progress.mean()) if n else float("nan"),
                "mean_steps": float(r.steps.mean()) if n else float("nan"),
                "seconds": r.seconds,
            }
        )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def results_metrics(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """kedro-mlflow metrics: ``{"<condition>.success_rate": {"value": v, "step": 0}, ...}``."""
    out = {}
    for row in table.to_dict("records"):
        for col in ("success_rate", "success_ci_low", "success_ci_high", "mean_final_progress"):
            out[f"{row['condition']}.{col}"] = {"value": float(row[col]), "step": 0}
    return out


def awbc_conditions(
    awbc: Policy,
    bc: Policy,
    guidance_scale: float,
    guidance_reference: GuidanceReference = DEFAULT_GUIDANCE_REFERENCE,
) -> list[EvalCondition]:
    """The four standard conditions: AWBC positive / negative prompt, plain BC, guided AWBC.

    The positive and negative prompts are the training dataset's top and bottom tasks
    (``tasks[-1]``, ``tasks[0]``); the guided condition asks for the positive prompt with
    ``guidance_scale`` away from ``guidance_reference`` (:meth:`Policy.reference_prompt`)."""
    return [
        EvalCondition("awbc_positive", awbc, awbc.tasks[-1]),
        EvalCondition("awbc_negative", awbc, awbc.tasks[0]),
        EvalCondition("bc", bc, bc.default_prompt),
        EvalCondition(
            f"awbc_guided_w{guidance_scale:g}",
            awbc,
            awbc.tasks[-1],
            guidance_scale,
            guidance_reference,
        ),
    ]
