"""Agreement of estimated advantage labels with ground truth (when a dataset has it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata, spearmanr

from adv_pipeline import labeling as lab
from adv_pipeline.configs import from_params
from adv_pipeline.schema import SUCCESS, split_task_index

from .columns import EpisodeValues, advantage_columns


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; NaN (without scipy's warning) when either is constant."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``positive`` labels (the
    Mann-Whitney U statistic with average ranks for ties); NaN if one class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def agreement(
    absolute_advantage: np.ndarray,
    absolute_value: np.ndarray,
    estimated_labels: np.ndarray,
    gt_labels: np.ndarray,
    stage_progress: np.ndarray | None,
    offsets: np.ndarray,
    oracle: np.ndarray | None = None,
) -> dict[str, float]:
    """ROC AUC of absolute_advantage against the GT positive label, accuracy of the
    estimated binary labels, and the Spearman correlation of absolute_value with
    stage_progress_gt (pooled, and the mean of per-episode correlations); with
    ``oracle`` scores, also their ROC AUC and the share of the way to it
    (:func:`_with_oracle`)."""
    top = int(max(gt_labels.max(initial=0), estimated_labels.max(initial=0)))
    gt_pos = gt_labels == top
    out = {
        "frames": int(len(gt_labels)),
        "roc_auc": roc_auc(absolute_advantage, gt_pos),
        "label_accuracy": float((estimated_labels == gt_labels).mean())
        if len(gt_labels)
        else float("nan"),
        "gt_positive_fraction": float(gt_pos.mean()) if len(gt_labels) else float("nan"),
    }
    if stage_progress is not None and len(stage_progress):
        out["spearman_value_progress"] = spearman(absolute_value, stage_progress)
        per = []
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            v, p = absolute_value[lo:hi], stage_progress[lo:hi]
            if hi - lo > 2 and np.ptp(v) > 0 and np.ptp(p) > 0:
                per.append(spearmanr(v, p).statistic)
        out["spearman_value_progress_per_episode"] = float(np.mean(per)) if per else float("nan")
    return out if oracle is None else _with_oracle(out, roc_auc(oracle, gt_pos))


def oracle_advantage(stage_progress: np.ndarray, offsets: np.ndarray, interval: int) -> np.ndarray:
    """``absolute_advantage`` of an exact oracle of the estimator's training target: Stage
    2's formula applied to the true ``V(0 -> n) = sp[n] - sp[0]`` of every episode (the
    best any estimator trained on ``stage_progress_gt`` can do)."""
    parts = [
        advantage_columns(EpisodeValues(sp - sp[0], None, 0), interval)["absolute_advantage"]
        for sp in (
            stage_progress[lo:hi].astype(np.float64) for lo, hi in zip(offsets[:-1], offsets[1:])
        )
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _with_oracle(scores: dict, oracle_auc: float) -> dict:
    """``scores`` plus the oracle's ROC AUC and the share of the way from chance (0.5) to
    it that ``roc_auc`` covers."""
    auc = scores["roc_auc"]
    return {
        **scores,
        "oracle_roc_auc": oracle_auc,
        "share_of_oracle": (auc - 0.5) / (oracle_auc - 0.5) if oracle_auc > 0.5 else float("nan"),
    }


def rows_of(offsets: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """Row indices of the episodes at ``positions`` (in dataset order)."""
    parts = [np.arange(offsets[p], offsets[p + 1]) for p in positions]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _gt_labels(dataset, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(GT advantage, GT labels 0..n-1) of a dataset by Stage 0's entry with ``params``."""
    cfg = from_params(lab.LabelingConfig, params, "labeling")
    result = lab.label_frames(lab.read_label_inputs(dataset, cfg), cfg)
    return result.advantage, result.labels


def estimation_report(
    estimated,
    labeled,
    checkpoint,
    stage0_params: dict,
    awbc_params: dict,
    n_plot: int = 4,
    interval: int = 50,
) -> tuple[dict, list[dict]]:
    """Report of a Stage 2 run: throughput (from the output's meta/estimation.json and its
    timing) and, when the dataset has ground truth (``progress`` and ``stage_progress_gt``),
    agreement with GT labels computed from the true ``progress`` by Stage 0's entry (with
    the ``returns`` source, and each episode's ``success``, for an estimator trained on
    returns; no oracle then):

    - ``vs_stage0_labels``: the GT labels of Stage 0's options (``stage0_params``, what
      the gt_labeling pipeline writes): ROC AUC of ``absolute_advantage`` (and, for KAI0,
      of ``relative_advantage``);
    - ``vs_awbc_options``: GT labels with the AWBC labels' own options (``awbc_params``
      with ``progress`` as the source): ROC AUC and the accuracy of the AWBC labels;

    each on all episodes and on the estimator's held-out (validation) episodes, next to
    the ROC AUC of an exact oracle of the training target on the same frames
    (:func:`oracle_advantage`, look-ahead ``interval``) and the share of the way from 0.5
    to it; plus the Spearman correlation of ``absolute_value`` with ``stage_progress_gt``.
    Returns (report, episodes to plot).
    """
    import json

    from .estimate import REPORT_PATH, TIMING_PATH

    run = {}
    for rel in (REPORT_PATH, TIMING_PATH):
        if (estimated.root / rel).is_file():
            run.update(json.loads((estimated.root / rel).read_text()))
    report: dict = {"estimation": run, "frames_labelled": estimated.num_frames}
    # the ground truth of the estimator's kind: progress, or returns (which need success)
    source = "returns" if checkpoint.metadata.get("target") == "returns" else "progress"
    needed = {"progress", "stage_progress_gt", *({SUCCESS} if source == "returns" else ())}
    if not needed <= set(estimated.column_names()):
        report["ground_truth"] = f"absent: the dataset has no {' / '.join(sorted(needed))} columns"
        return report, []
    stage0_adv, stage0_labels = _gt_labels(estimated, {**stage0_params, "advantage_source": source})
    awbc_adv, awbc_gt = _gt_labels(estimated, {**awbc_params, "advantage_source": source})
    has_relative = "relative_advantage" in estimated.column_names()  # KAI0 only
    cols = estimated.read_columns(
        [
            "absolute_advantage",
            "absolute_value",
            "stage_progress_gt",
            *(["relative_advantage"] if has_relative else []),
        ]
    )
    n_labels = from_params(lab.LabelingConfig, awbc_params, "labeling").n_bins
    _, est_labels = split_task_index(labeled.read_columns(["task_index"])["task_index"], n_labels)
    off = estimated.offsets
    # an exact value of the returns target makes its own n-step advantage 0: no oracle
    oracle = (
        oracle_advantage(cols["stage_progress_gt"], off, interval) if source == "progress" else None
    )
    val = [
        e
        for e in checkpoint.metadata.get("val_episodes", [])
        if e in set(estimated.episode_indices.tolist())
    ]
    positions = [int(np.searchsorted(estimated.episode_indices, e)) for e in val]
    subsets = {"all_episodes": (np.arange(len(est_labels)), off)}
    if positions:
        subsets["held_out_episodes"] = (
            rows_of(off, positions),
            np.concatenate([[0], np.cumsum([off[p + 1] - off[p] for p in positions])]),
        )
    for name, (rows, sub_off) in subsets.items():
        vs_awbc = agreement(
            cols["absolute_advantage"][rows],
            cols["absolute_value"][rows],
            est_labels[rows],
            awbc_gt[rows],
            cols["stage_progress_gt"][rows],
            sub_off,
            oracle[rows] if oracle is not None else None,
        )
        stage0_pos = stage0_labels[rows] == stage0_labels.max()
        vs_stage0 = {
            "roc_auc": roc_auc(cols["absolute_advantage"][rows], stage0_pos),
            "gt_positive_fraction": float(stage0_pos.mean()),
        }
        if oracle is not None:
            vs_stage0 = _with_oracle(vs_stage0, roc_auc(oracle[rows], stage0_pos))
        if has_relative:
            vs_stage0["roc_auc_relative_advantage"] = roc_auc(
                cols["relative_advantage"][rows], stage0_pos
            )
        report[name] = {
            "episodes": val if name == "held_out_episodes" else int(estimated.num_episodes),
            "frames": int(len(rows)),
            "vs_stage0_labels": vs_stage0,
            "vs_awbc_options": {
                k: vs_awbc[k]
                for k in (
                    "roc_auc",
                    "label_accuracy",
                    "gt_positive_fraction",
                    "oracle_roc_auc",
                    "share_of_oracle",
                )
                if k in vs_awbc
            },  # fmt: skip
            "spearman_value_progress": vs_awbc.get("spearman_value_progress"),
            "spearman_value_progress_per_episode": vs_awbc.get(
                "spearman_value_progress_per_episode"
            ),
        }
    plot_positions = (positions or list(range(estimated.num_episodes)))[:n_plot]
    episodes = [
        {
            "episode": int(estimated.episode_indices[p]),
            "estimated": cols["absolute_advantage"][off[p] : off[p + 1]],
            "gt": np.clip(awbc_adv[off[p] : off[p + 1]], -1, 1),
            "label": est_labels[off[p] : off[p + 1]],
        }
        for p in plot_positions
    ]
    return report, episodes
