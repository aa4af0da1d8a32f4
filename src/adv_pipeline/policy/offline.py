"""Offline evaluation on held-out episodes, for datasets no simulator can replay.

Every ``val_frame_stride``-th frame of the held-out episodes (the episodes training left
out, from the checkpoint's metadata) is fed to each policy with several prompts:

* ``awbc_positive`` / ``awbc_negative``: the top / bottom advantage prompt of the frame's
  task; ``awbc_unconditioned``: the plain task text; ``awbc_labelled``: the frame's own
  label (what the demonstrator did); ``bc``: the BC policy with the plain task text;
  ``weighted`` / ``filtered``: a policy of that ``awbc.method`` (plain task text) instead
  of the AWBC rows.

The predicted chunk is compared with the recorded one (the padding past an episode's end
masked): mean squared and absolute error per action dimension in dataset units, and the
squared error in normalised units (comparable across dimensions). ``positive_vs_negative``
measures how far the two prompts move the chunk (mean absolute difference, same noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.loader import split_episodes
from adv_pipeline.schema import base_task

from .data import FramePlan, Samples, decode_samples
from .inference import Policy

BATCH = 256  # frames per policy call


@dataclass(frozen=True)
class HeldOut:
    """Decoded held-out frames: ``samples`` (prompt = the frame's task_index) of
    ``episodes``."""

    episodes: tuple[int, ...]
    samples: Samples


def held_out_episodes(policy: Policy, reader: LeRobotDatasetReader) -> list[int]:
    """The episodes the policy did not train on: its checkpoint's record, or the split its
    data config implies (checkpoints that predate the record)."""
    recorded = policy.metadata.get("val_episodes")
    if recorded is not None:
        return [int(e) for e in recorded]
    dc = policy.config.data
    return split_episodes(reader.episode_indices.tolist(), dc.val_fraction, dc.val_seed)[1]


def load_held_out(
    reader: LeRobotDatasetReader, policy: Policy, max_episodes: int, stride: int
) -> HeldOut:
    """Every ``stride``-th frame of the first ``max_episodes`` held-out episodes, decoded
    as training decodes them."""
    episodes = tuple(held_out_episodes(policy, reader)[:max_episodes])
    frames = [np.arange(0, reader.episode(e).length, stride, dtype=np.int64) for e in episodes]
    plan = FramePlan(
        np.concatenate([np.full(len(f), e, np.int64) for e, f in zip(episodes, frames)] or [[]]),
        np.concatenate(frames or [[]]).astype(np.int64),
    )
    samples = decode_samples(
        reader, plan, policy.config.data, policy.camera_keys, np.arange(len(reader.tasks))
    )
    return HeldOut(episodes, samples)


def task_prompts(tasks: Sequence[str], task_index: np.ndarray) -> dict[str, list[str]]:
    """Per frame: its own prompt, the bottom and top advantage prompts of its task
    (tasks.jsonl lists each task's prompts worst to best) and the plain task text."""
    groups: dict[str, list[str]] = {}
    for t in tasks:
        groups.setdefault(base_task(t), []).append(t)
    own = [tasks[i] for i in task_index]
    return {
        "labelled": own,
        "negative": [groups[base_task(t)][0] for t in own],
        "positive": [groups[base_task(t)][-1] for t in own],
        "unconditioned": [base_task(t) for t in own],
    }


def predict(policy: Policy, samples: Samples, prompts: Sequence[str], seed: int) -> np.ndarray:
    """(n, H, D_action) chunks in dataset units, noise from ``seed`` (the same for every
    prompt list, so conditions differ only by their prompts)."""
    policy.reseed(seed)
    out = []
    for i in range(0, len(samples), BATCH):
        part = samples[i : i + BATCH]
        images = {k: part.images[:, c] for c, k in enumerate(policy.camera_keys)}
        out.append(
            policy.act_batch(images, part.state, list(prompts[i : i + BATCH]), complete_states=True)
        )
    return np.concatenate(out) if out else np.zeros((0, policy.horizon, policy.action_dim))


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(D,) mean over frames and chunk steps of (n, H, D) ``values`` where ``mask`` (n, H)
    is True (the padding past an episode's end left out)."""
    m = mask[..., None].astype(np.float64)
    return (np.asarray(values, np.float64) * m).sum(axis=(0, 1)) / np.maximum(m.sum(axis=(0, 1)), 1)


def _rows(condition: str, metric: str, per_dim: np.ndarray, overall: float) -> list[dict]:
    rows = [{"condition": condition, "metric": metric, "dimension": "all", "value": overall}]
    rows += [
        {"condition": condition, "metric": metric, "dimension": str(d), "value": float(v)}
        for d, v in enumerate(per_dim)
    ]
    return rows


def error_rows(condition: str, pred: np.ndarray, held: Samples, policy: Policy) -> list[dict]:
    """mse, mae (dataset units) and mse_normalized, per dimension and overall, over the
    unpadded chunk entries."""
    err = pred.astype(np.float64) - held.actions
    stats = policy.assets.action_stats
    err_n = stats.normalize(pred).astype(np.float64) - stats.normalize(held.actions)
    mse, mae = masked_mean(err**2, held.mask), masked_mean(np.abs(err), held.mask)
    mse_n = masked_mean(err_n**2, held.mask)
    return (
        _rows(condition, "mse", mse, float(mse.mean()))
        + _rows(condition, "mae", mae, float(mae.mean()))
        + _rows(condition, "mse_normalized", mse_n, float(mse_n.mean()))
    )


def _shift_rows(awbc: Policy, s: Samples, pos: np.ndarray, neg: np.ndarray) -> list[dict]:
    """How far the positive and negative prompts (chunks ``pos``, ``neg``) move an AWBC
    policy's chunk, in dataset and normalised units."""
    per_dim = masked_mean(np.abs(pos - neg), s.mask)
    stats = awbc.assets.action_stats
    per_dim_n = masked_mean(np.abs(stats.normalize(pos) - stats.normalize(neg)), s.mask)
    return _rows("positive_vs_negative", "mean_abs_shift", per_dim, float(per_dim.mean())) + _rows(
        "positive_vs_negative", "mean_abs_shift_normalized", per_dim_n, float(per_dim_n.mean())
    )


def offline_table(awbc: Policy, bc: Policy, held: HeldOut, seed: int) -> pd.DataFrame:
    """The long table ``condition, metric, dimension, value`` (see the module docstring);
    empty when nothing was held out."""
    columns = ["condition", "metric", "dimension", "value"]
    s = held.samples
    if len(s) == 0:
        return pd.DataFrame(columns=columns)
    prompts = task_prompts(awbc.tasks, s.prompt)
    method = awbc.config.data.method
    kinds = ("positive", "negative", "unconditioned", "labelled") if method == "prompt" else ()
    preds = {kind: predict(awbc, s, prompts[kind], seed) for kind in kinds}
    rows = [r for kind in kinds for r in error_rows(f"awbc_{kind}", preds[kind], s, awbc)]
    if method != "prompt":  # weighted, filtered: plain prompts, one row named after the method
        rows += error_rows(method, predict(awbc, s, prompts["unconditioned"], seed), s, awbc)
    rows += error_rows("bc", predict(bc, s, prompts["unconditioned"], seed), s, bc)
    if method == "prompt":
        rows += _shift_rows(awbc, s, preds["positive"], preds["negative"])
    table = pd.DataFrame(rows, columns=columns)
    table.attrs.update(frames=len(s), episodes=len(held.episodes))
    return table


def offline_metrics(table: pd.DataFrame, frames: int, episodes: int) -> dict[str, dict]:
    """kedro-mlflow metrics: the overall value of every (condition, metric), and the
    held-out frame and episode counts."""
    out = {
        "held_out_frames": {"value": float(frames), "step": 0},
        "held_out_episodes": {"value": float(episodes), "step": 0},
    }
    for row in table[table["dimension"] == "all"].to_dict("records"):
        out[f"{row['condition']}.{row['metric']}"] = {"value": float(row["value"]), "step": 0}
    return out
