"""Stage 0: per-frame advantage from progress, per-stage statistics, and its
discretisation into ``task_index`` with advantage prompts (docs/semantics.md, "Stage 0").

Pure numpy over whole datasets: every array is frame-aligned over all episodes in
episode order, with ``offsets`` (E + 1,) giving each episode's row range. No Kedro here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from adv_pipeline.lerobot import DatasetFormatError, DerivedDataset, LeRobotDatasetReader
from adv_pipeline.schema import (
    ADVANTAGE_SOURCES,
    INTERVENTION,
    PROGRESS,
    STAGE_PROGRESS,
    advantage_labels,
    advantage_prompt,
)

log = logging.getLogger(__name__)

DISCRETIZATIONS = ("binary", "n_slices")
DECILES = tuple(range(0, 101, 10))


@dataclass(frozen=True)
class LabelingConfig:
    """Options of the seed's ``gt_label.py``, validated.

    Attributes:
        threshold: percent of frames (per stage) labelled positive in binary mode, (0, 100].
        chunk_size: look-ahead in frames for the progress difference (>= 1).
        discretization: ``binary`` or ``n_slices``.
        n_slices: number of equal-percentile bins in ``n_slices`` mode (>= 2).
        advantage_source: ``progress`` (differenced over chunk_size), or a column used
            as-is: ``absolute_advantage`` / ``relative_advantage`` (written by Stage 2).
        stage_nums: number of stages split by ``stage_progress_gt`` (>= 1).
        task_text: the task part of every prompt, ``"<task>, Advantage: ..."``.
        force_intervention: frames with intervention = 1 go to the top bin.
        workers: threads rewriting episode files (about one per CPU core pays best).
    """

    threshold: float = 70.0
    chunk_size: int = 50
    discretization: Literal["binary", "n_slices"] = "binary"
    n_slices: int = 10
    advantage_source: Literal["progress", "absolute_advantage", "relative_advantage"] = "progress"
    stage_nums: int = 1
    task_text: str = "fold the cloth"
    force_intervention: bool = True
    workers: int = 2

    def __post_init__(self) -> None:
        if not 0 < float(self.threshold) <= 100:
            raise ValueError(
                f"threshold must be in (0, 100] (percent of frames labelled positive), got "
                f"{self.threshold}"
            )
        if int(self.chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1 frame, got {self.chunk_size}")
        if self.discretization not in DISCRETIZATIONS:
            raise ValueError(
                f"discretization must be one of {DISCRETIZATIONS}, got {self.discretization!r}"
            )
        if int(self.n_slices) < 2:
            raise ValueError(f"n_slices must be >= 2, got {self.n_slices}")
        if self.advantage_source not in ADVANTAGE_SOURCES:
            raise ValueError(
                f"advantage_source must be one of {ADVANTAGE_SOURCES}, got "
                f"{self.advantage_source!r}"
            )
        if int(self.stage_nums) < 1:
            raise ValueError(f"stage_nums must be >= 1, got {self.stage_nums}")

    @property
    def n_bins(self) -> int:
        return 2 if self.discretization == "binary" else int(self.n_slices)

    def prompts(self) -> list[str]:
        """tasks.jsonl rows: task_index k -> ``"<task_text>, Advantage: <label k>"``."""
        return [
            advantage_prompt(self.task_text, label)
            for label in advantage_labels(self.discretization, self.n_slices)
        ]


@dataclass(frozen=True)
class LabelInputs:
    """Frame-aligned inputs of the labelling, over all episodes.

    Attributes:
        episode_indices: (E,) episode indices, in order.
        offsets: (E + 1,) row ranges of the episodes.
        source: (N,) float64 values of the advantage source column.
        stage_progress: (N,) float64 stage progress, or None when stage_nums == 1.
        intervention: (N,) bool, or None when the column is absent or forcing is off.
    """

    episode_indices: np.ndarray
    offsets: np.ndarray
    source: np.ndarray
    stage_progress: np.ndarray | None
    intervention: np.ndarray | None


def read_label_inputs(dataset: LeRobotDatasetReader, config: LabelingConfig) -> LabelInputs:
    """Read and check the columns the labelling needs, before anything is written.

    Checks: the source column (and ``stage_progress_gt`` when ``stage_nums > 1``)
    exists; ``stage_progress_gt``, wherever present, lies in [0, 1]; every float column
    is finite (they are all copied into the labelled dataset, which must stay valid).
    """
    if dataset.num_frames == 0:
        raise DatasetFormatError(
            f"{dataset.root}: the dataset has no frames. Fix: label a dataset with at least one "
            f"episode"
        )
    needed = {config.advantage_source: f"advantage_source={config.advantage_source}"}
    if config.stage_nums > 1:
        needed[STAGE_PROGRESS] = f"stage_nums={config.stage_nums}"
    available = dataset.column_names()
    for column, because in needed.items():
        hint = (
            " (written by the estimation pipeline)"
            if column not in (PROGRESS, STAGE_PROGRESS)
            else ""
        )
        dataset.require_column(
            column,
            f"{hint}, needed because {because}",
            "choose another option or a dataset with that column",
        )
    why = {c: f", needed because {b}" for c, b in needed.items()}
    for column in needed:
        dtype = str(dataset.features.get(column, {}).get("dtype"))
        if not dtype.startswith(("float", "int", "uint")):
            first = dataset.episodes[0].episode_index
            raise DatasetFormatError(
                f"{dataset.data_path(first)}: column {column} holds {dtype} values, not "
                f"numbers{why[column]}. Fix: store it as float32"
            )
    use_intervention = config.force_intervention and INTERVENTION in available
    has_stage = STAGE_PROGRESS in available
    columns = list(
        dict.fromkeys(
            [
                *needed,
                *([STAGE_PROGRESS] if has_stage else []),
                *([INTERVENTION] if use_intervention else []),
            ]
        )
    )
    try:
        data = dataset.read_columns(columns)
    except DatasetFormatError as exc:  # a later episode lacks a column: say why it is needed
        missing = [c for c in needed if repr(c) in str(exc)]
        raise DatasetFormatError(
            str(exc).replace(". Fix:", f"{''.join(why[c] for c in missing)}. Fix:", 1)
        ) from exc
    for column in needed:
        dataset.check_array(
            column, data[column], why[column], (0.0, 1.0) if column == STAGE_PROGRESS else None
        )
    if has_stage:  # checked whenever present: the estimator trains on it
        dataset.check_array(
            STAGE_PROGRESS,
            data[STAGE_PROGRESS],
            " (stage progress, read by the estimator)",
            (0.0, 1.0),
        )
    dataset.check_values(dataset.float_columns(), ", copied into the labelled dataset")
    eps, off = dataset.episode_indices, dataset.offsets
    source = np.asarray(data[config.advantage_source], dtype=np.float64).reshape(
        len(data[config.advantage_source]), -1
    )[:, 0]
    stage = (
        np.asarray(data[STAGE_PROGRESS], dtype=np.float64).reshape(-1)
        if config.stage_nums > 1
        else None
    )
    intervention = None
    if use_intervention:
        flag = np.asarray(data[INTERVENTION])
        intervention = flag.reshape(len(flag), -1)[:, 0] == 1
    return LabelInputs(eps, off, source, stage, intervention)


def progress_advantage(progress: np.ndarray, offsets: np.ndarray, chunk_size: int) -> np.ndarray:
    """``adv[i] = p[i+c] - p[i]`` inside each episode; near the end, the normalised
    extrapolation ``(p[last] - p[i]) / (n - i) * c`` (0 at the last frame).

    Args:
        progress: (N,) progress values, episodes concatenated.
        offsets: (E + 1,) episode row ranges.
        chunk_size: look-ahead c in frames.

    Returns:
        (N,) float64 advantage.
    """
    p = np.asarray(progress, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    c = int(chunk_size)
    adv = np.empty_like(p)
    m = max(len(p) - c, 0)
    adv[:m] = p[c : c + m] - p[:m]  # the look-ahead, right wherever i + c stays in the episode
    # the last min(n, c) frames of each episode: extrapolate to the episode's last frame
    k = np.minimum(np.diff(offsets), c)
    end = np.repeat(offsets[1:], k)  # exclusive end row of each tail frame's episode
    rows = end - k.repeat(k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    adv[rows] = (p[end - 1] - p[rows]) / (end - rows) * c  # (p[last] - p[i]) / (n - i) * c
    return adv


def frame_advantage(inputs: LabelInputs, config: LabelingConfig) -> np.ndarray:
    """(N,) advantage per frame from the configured source."""
    if config.advantage_source == PROGRESS:
        return progress_advantage(inputs.source, inputs.offsets, int(config.chunk_size))
    return inputs.source.copy()


def stage_index(stage_progress: np.ndarray | None, stage_nums: int, n: int) -> np.ndarray:
    """(N,) int stage of each frame: ``int(sp / (1 / S))`` capped at S - 1 (all 0 if S == 1)."""
    if stage_nums == 1 or stage_progress is None:
        return np.zeros(n, dtype=np.int64)
    s = (np.asarray(stage_progress, dtype=np.float64) / (1.0 / stage_nums)).astype(np.int64)
    return np.minimum(s, stage_nums - 1)


def stage_cuts(adv: np.ndarray, stage: np.ndarray, config: LabelingConfig) -> list[np.ndarray]:
    """Per stage: the binary threshold as a 1-element array, or the n_slices boundaries."""
    cuts = []
    for s in range(int(config.stage_nums)):
        values = adv[stage == s]
        if values.size == 0:
            log.warning("stage %d has no frames: its threshold/boundaries are 0.0", s)
            cuts.append(np.zeros(1 if config.discretization == "binary" else config.n_slices))
        elif config.discretization == "binary":
            cuts.append(np.array([np.percentile(values, 100.0 - float(config.threshold))]))
        else:
            cuts.append(np.percentile(values, 100.0 * np.arange(config.n_slices) / config.n_slices))
    return cuts


def assign_task_index(
    adv: np.ndarray,
    stage: np.ndarray,
    cuts: list[np.ndarray],
    config: LabelingConfig,
    intervention: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) int64 task_index: binary ``adv >= thr_s``; n_slices ``max j with adv >= b_j``;
    intervention frames forced to the top bin when configured."""
    labels = np.zeros(len(adv), dtype=np.int64)
    for s, cut in enumerate(cuts):
        m = stage == s
        if config.discretization == "binary":
            labels[m] = adv[m] >= cut[0]
        else:
            labels[m] = np.clip(np.searchsorted(cut, adv[m], side="right") - 1, 0, None)
    if config.force_intervention and intervention is not None:
        labels[intervention] = config.n_bins - 1
    return labels


def label_statistics(
    adv: np.ndarray,
    stage: np.ndarray,
    cuts: list[np.ndarray],
    labels: np.ndarray,
    config: LabelingConfig,
    intervention: np.ndarray | None,
) -> dict:
    """What the seed's dry run prints, per stage and overall, JSON-ready.

    ``positive_fraction`` is the share of frames in the top bin after intervention
    forcing; ``unforced_positive_fraction`` before it (what the threshold sets).
    """
    top = config.n_bins - 1
    unforced = assign_task_index(adv, stage, cuts, config, None)
    stages = []
    for s, cut in enumerate(cuts):
        m = stage == s
        v = adv[m]
        entry = {
            "stage": s,
            "frames": int(m.sum()),
            "mean": float(v.mean()) if v.size else 0.0,
            "std": float(v.std()) if v.size else 0.0,
            "min": float(v.min()) if v.size else 0.0,
            "max": float(v.max()) if v.size else 0.0,
            "deciles": dict(
                zip(
                    map(str, DECILES),
                    np.percentile(v, DECILES).tolist() if v.size else [0.0] * len(DECILES),
                )
            ),
            "positive_fraction": float((labels[m] == top).mean()) if v.size else 0.0,
            "unforced_positive_fraction": float((unforced[m] == top).mean()) if v.size else 0.0,
            "label_counts": np.bincount(labels[m], minlength=config.n_bins).astype(int).tolist(),
        }
        if config.discretization == "binary":
            entry["threshold"] = float(cut[0])
        else:
            entry["boundaries"] = [float(b) for b in cut]
        if intervention is not None:
            entry["forced_frames"] = int((m & intervention).sum())
        stages.append(entry)
    return {
        "config": {k: v for k, v in asdict(config).items() if k != "workers"},
        "frames": int(len(adv)),
        "prompts": config.prompts(),
        "forced_frames": int(intervention.sum()) if intervention is not None else 0,
        "positive_fraction": float((labels == top).mean()) if len(labels) else 0.0,
        "stages": stages,
    }


def labeled_dataset(
    dataset: LeRobotDatasetReader, labels: np.ndarray, config: LabelingConfig
) -> DerivedDataset:
    """Write plan of the labelled dataset: new task_index and tasks.jsonl prompts."""
    return DerivedDataset(
        dataset, {"task_index": labels}, tasks=config.prompts(), workers=config.workers
    )
