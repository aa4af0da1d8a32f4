"""Closed-loop evaluation in any world (:mod:`adv_pipeline.worlds`): batched rollouts,
Wilson intervals, report.

All environments of one condition are stepped together: the policy is called once per
re-plan for the whole batch, and each predicted chunk's first ``replan_every`` actions are
executed open loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adv_pipeline.schema import advantage_label, advantage_prompt, base_task
from adv_pipeline.sim import DemoTaskConfig
from adv_pipeline.worlds import EvalTask, World, WorldEnv, check_state

from .config import EvalConfig, Guidance

log = logging.getLogger(__name__)

ALL_TASKS = "all"  # the table's rows over every task (rollouts pooled)

if TYPE_CHECKING:  # the policy (and JAX) load only when a policy is rolled out
    from .inference import Policy

# the closed-loop table's columns (:func:`results_table`)
RESULT_COLUMNS = [
    "task", "condition", "prompt", "guidance_scale", "guidance_reference", "n_episodes",
    "successes", "success_rate", "success_ci_low", "success_ci_high", "mean_final_progress",
    "mean_steps",
]  # fmt: skip


@dataclass(frozen=True)
class EvalCondition:
    """One evaluated setting: a policy queried, in each task, with that task's text and
    the advantage ``label`` (None: the plain text), with or without ``guidance``."""

    name: str
    policy: Policy
    label: str | None = None
    guidance: Guidance | None = None


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
    task: str = ""


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


def _first_task(world: World, policy) -> EvalTask:
    return world.tasks([base_task(policy.default_prompt)])[0]


def _start(envs: Sequence[WorldEnv], seeds: Sequence[int]) -> None:
    for env, s in zip(envs, seeds):
        env.reset(int(s))


def _batch(name, prompt, w, reference, task, seeds, envs, t0) -> RolloutBatch:
    return RolloutBatch(
        name=name,
        prompt=prompt,
        guidance_scale=float(w),
        guidance_reference=reference,
        seeds=np.asarray(seeds, np.int64),
        success=np.array([env.success for env in envs]),
        final_progress=np.array([env.progress for env in envs], np.float64),
        steps=np.array([env.steps for env in envs], np.int64),
        seconds=time.perf_counter() - t0,
        task=task.name,
    )


def batched_rollouts(
    policy: Policy,
    seeds: Sequence[int],
    world: World,
    prompt: str | None = None,
    guidance: Guidance | None = None,
    replan_every: int = 8,
    max_steps: int | None = None,
    name: str = "",
    task: EvalTask | None = None,
) -> RolloutBatch:
    """Roll out ``policy`` in ``world``'s ``task`` (default: the task of the policy's
    default prompt) from every seed's start state, all in lock step, until success or
    ``max_steps`` (default: the world's) steps."""
    if not 1 <= replan_every <= policy.horizon:
        raise ValueError(
            f"awbc.eval.replan_every={replan_every} must be in [1, horizon={policy.horizon}]"
        )
    t0 = time.perf_counter()
    task = task or _first_task(world, policy)
    limit = world.max_steps(task.name) if max_steps is None else int(max_steps)
    envs = [world.make_env(task.name) for _ in seeds]
    _start(envs, seeds)
    keys = policy.observed_state_keys  # the simulator's columns the policy reads
    states = np.stack([env.state(keys) for env in envs])
    check_state(
        world.name, task.name, keys, states[0], policy.observed_state_dim, policy.state_dims
    )
    active = np.ones(len(envs), bool)
    cameras = list(policy.input_cameras)  # its own and its image features' cameras
    prompt = prompt or policy.default_prompt
    images: dict[str, np.ndarray] = {}
    t = 0
    while active.any() and t < limit:
        if cameras:  # finished envs keep their last frame: the batch shape stays fixed
            for i in np.flatnonzero(active):
                for c, frame in envs[i].images(cameras).items():
                    images.setdefault(c, np.zeros((len(envs), *frame.shape), np.uint8))[i] = frame
        chunk = policy.act_batch(images, states, prompt, guidance)
        for k in range(min(replan_every, limit - t)):
            for i in np.flatnonzero(active):
                envs[i].step(chunk[i, k])
                states[i] = envs[i].state(keys)
                active[i] = not envs[i].success
            t += 1
    guided = guidance is not None and guidance.guided
    scale, reference = (guidance.scale, guidance.reference) if guided else (1.0, "")
    return _batch(name, prompt, scale, reference, task, seeds, envs, t0)


def expert_rollouts(
    seeds: Sequence[int], world: World, task: EvalTask, max_steps: int | None = None
) -> RolloutBatch:
    """The world's scripted expert, closed loop from the same start states as the policies
    (the demo's noise seeded by the episode seed): the ceiling the policies' success rates
    are read against."""
    t0 = time.perf_counter()
    limit = world.max_steps(task.name) if max_steps is None else int(max_steps)
    envs = [world.make_env(task.name) for _ in seeds]
    _start(envs, seeds)
    for env in envs:
        while not env.success and env.steps < limit:
            env.step(np.asarray(env.expert_action(), np.float32))
    return _batch("expert", "(scripted demonstrator)", float("nan"), "", task, seeds, envs, t0)


def evaluate_conditions(
    conditions: Sequence[EvalCondition], config: EvalConfig, world: World
) -> list[RolloutBatch]:
    """Every condition in every task of ``world`` the policies were trained on, on the
    same seeds ``seed_offset + i``, i < n_episodes (paired), then the scripted expert on
    those seeds when ``config.expert`` (the table's ceiling)."""
    seeds = [config.seed_offset + i for i in range(config.n_episodes)]
    texts = list(dict.fromkeys(base_task(p) for p in conditions[0].policy.tasks))
    out = []
    for task in world.tasks(texts):
        for c in conditions:
            c.policy.reseed(config.sample_seed)
            prompt = task.text if c.label is None else advantage_prompt(task.text, c.label)
            out.append(
                batched_rollouts(
                    c.policy,
                    seeds,
                    world,
                    prompt,
                    c.guidance,
                    config.replan_every,
                    config.max_steps,
                    c.name,
                    task,
                )
            )
        if config.expert:
            out.append(expert_rollouts(seeds, world, task, config.max_steps))
    for r in out:  # how long, in the log: the table holds only what the same command repeats
        log.info("%s, %s: %d rollouts in %.1f s", r.task, r.name, len(r.seeds), r.seconds)
    return out


def _row(task: str, name: str, r: RolloutBatch | None, parts: Sequence[RolloutBatch]) -> dict:
    success = np.concatenate([p.success for p in parts])
    steps = np.concatenate([p.steps for p in parts])
    progress = np.concatenate([p.final_progress for p in parts])
    n, k = len(success), int(success.sum())
    lo, hi = wilson_interval(k, n)
    return {
        "task": task,
        "condition": name,
        "prompt": r.prompt if r is not None else "",
        "guidance_scale": parts[0].guidance_scale,
        "guidance_reference": parts[0].guidance_reference,
        "n_episodes": n,
        "successes": k,
        "success_rate": k / n if n else float("nan"),
        "success_ci_low": lo,
        "success_ci_high": hi,
        "mean_final_progress": float(progress.mean()) if n else float("nan"),
        "mean_steps": float(steps.mean()) if n else float("nan"),
    }


def results_table(results: Sequence[RolloutBatch]) -> pd.DataFrame:
    """One row per task and condition: success rate, its 95% Wilson interval, mean final
    progress; with several tasks, then one row per condition over all of them (task
    ``all``: the rollouts pooled, so the interval is that of the average success)."""
    rows = [_row(r.task, r.name, r, [r]) for r in results]
    if len({r.task for r in results}) > 1:
        for name in dict.fromkeys(r.name for r in results):
            parts = [r for r in results if r.name == name]
            rows.append(_row(ALL_TASKS, name, None, parts))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def results_metrics(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """kedro-mlflow metrics: ``{"<condition>.success_rate": {"value": v, "step": 0}, ...}``
    (one task), ``"<task>.<condition>.success_rate"`` (several; task ``all``: pooled)."""
    out = {}
    several = table["task"].nunique() > 1
    for row in table.to_dict("records"):
        name = f"{row['task']}.{row['condition']}" if several else row["condition"]
        for col in ("success_rate", "success_ci_low", "success_ci_high", "mean_final_progress"):
            out[f"{name}.{col}"] = {"value": float(row[col]), "step": 0}
    return out


def awbc_conditions(
    awbc: Policy,
    bc: Policy,
    guidance: Guidance,
    curated_bc: Policy | None = None,
) -> list[EvalCondition]:
    """The standard conditions: AWBC positive / negative prompt, plain BC, guided AWBC, and
    BC on the curated episodes when given. An ``awbc`` policy trained by
    ``awbc.method: weighted`` or ``filtered`` takes plain prompts: one condition named
    after its method, beside BC (and curated BC).

    The positive and negative labels are the training dataset's top and bottom ones
    (``tasks[-1]``'s, ``tasks[0]``'s); the guided condition asks for the positive prompt
    with ``guidance`` (its scale, away from its reference: :meth:`Policy.reference_prompt`)."""
    method = awbc.config.data.method
    if method != "prompt":
        conditions = [EvalCondition(method, awbc, None), EvalCondition("bc", bc, None)]
    else:
        top, worst = (_label(awbc.tasks[i]) for i in (-1, 0))
        conditions = [
            EvalCondition("awbc_positive", awbc, top),
            EvalCondition("awbc_negative", awbc, worst),
            EvalCondition("bc", bc, None),
            EvalCondition(f"awbc_guided_w{guidance.scale:g}", awbc, top, guidance),
        ]
    if curated_bc is not None:
        conditions.append(EvalCondition("bc_curated", curated_bc, None))
    return conditions


def _label(prompt: str) -> str:
    label = advantage_label(prompt)
    if label is None:
        raise ValueError(
            f"the AWBC policy's training tasks carry no advantage label ({prompt!r}). Fix: "
            f"train it on a dataset labelled by Stage 0 or Stage 2"
        )
    return label
