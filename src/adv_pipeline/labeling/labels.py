"""Stage 0: per-frame advantage from progress, thresholds per stage (or per task and
stage), and its discretisation into ``task_index`` with advantage prompts
(docs/semantics.md, "Stage 0").

Every episode keeps its own task: with T tasks present and L labels, the output's
``tasks.jsonl`` row ``t * L + l`` is ``"<task t>, Advantage: <label l>"`` and a frame's
``task_index`` is ``task * L + label`` (:func:`adv_pipeline.schema.split_task_index`).

The arithmetic is the reference scripts' (``gt_label.py`` / ``discretize_advantage.py``),
dtype for dtype, so the labels are identical to theirs, ties included: the advantage in
float32, the stage in float32, percentiles over a float64 array with one stage and over
a float32 array with several, and their bin search. Pure numpy over whole datasets:
every array is frame-aligned over all episodes in episode order, with ``offsets``
(E + 1,) giving each episode's row range. No Kedro here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from adv_pipeline.configs import check_choices
from adv_pipeline.labeling.returns import SUCCESS_FIX, returns_advantage
from adv_pipeline.lerobot import DatasetFormatError, DerivedDataset, LeRobotDatasetReader
from adv_pipeline.schema import (
    INTERVENTION,
    PROGRESS,
    STAGE_PROGRESS,
    SUCCESS,
    advantage_labels,
    advantage_prompt,
    base_task,
)

log = logging.getLogger(__name__)

DECILES = tuple(range(0, 101, 10))


@dataclass(frozen=True)
class LabelingConfig:
    """Options of the seed's ``gt_label.py``, validated.

    Attributes:
        threshold: percent of frames (per group) labelled positive in binary mode, (0, 100].
        chunk_size: look-ahead in frames for the progress difference (>= 1).
        discretization: ``binary`` or ``n_slices``.
        n_slices: number of equal-percentile bins in ``n_slices`` mode (>= 2).
        advantage_source: ``progress`` (differenced over chunk_size), ``returns``
            (RECAP's n-step advantage on Monte Carlo returns, n = chunk_size, from each
            episode's ``success``; :mod:`.returns`), or a column used as-is:
            ``absolute_advantage`` / ``relative_advantage`` (written by Stage 2).
        failure_penalty: ``returns``: C_fail, the reward of a failed episode's last
            frame on top of the -1 every frame costs, in frames (>= 0).
        value_bins: ``returns``: equal bins of progress in [0, 1] over which the
            ground-truth value averages each task's normalised returns (>= 1).
        stage_nums: number of stages split by ``stage_progress_gt`` (>= 1).
        threshold_scope: ``stage`` (the seed: percentiles per stage over all episodes) or
            ``task_stage`` (per task and stage, as pi*0.6 sets a threshold per task).
        task_text: None keeps every episode's own task in its prompts; a text replaces
            the task of every episode (the seed's behaviour).
        force_intervention: frames with intervention = 1 go to the top bin (after the
            thresholds are computed from all frames; false reproduces the seed).
        failed_episodes: what the frames of failed episodes (``success`` = 0, written by
            the annotation pipeline) get: ``negative``, the worst bin, and they take no
            part in the thresholds (progress annotated on a failure says only that time
            passed); ``progress``, labelled from their progress like any other frame (the
            seed, which knows no failures). Intervention frames are forced to the top bin
            after this rule. Datasets without a ``success`` column are not affected.
        workers: threads rewriting episode files (about one per CPU core pays best).
    """

    threshold: float = 70.0
    chunk_size: int = 50
    discretization: Literal["binary", "n_slices"] = "binary"
    n_slices: int = 10
    advantage_source: Literal["progress", "returns", "absolute_advantage", "relative_advantage"] = (
        "progress"
    )
    stage_nums: int = 1
    threshold_scope: Literal["stage", "task_stage"] = "stage"
    task_text: str | None = None
    force_intervention: bool = True
    failed_episodes: Literal["negative", "progress"] = "negative"
    failure_penalty: float = 50.0
    value_bins: int = 20
    workers: int = 2

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0 < float(self.threshold) <= 100:
            raise ValueError(
                f"threshold must be in (0, 100] (percent of frames labelled positive), got "
                f"{self.threshold}"
            )
        if int(self.chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1 frame, got {self.chunk_size}")
        if int(self.n_slices) < 2:
            raise ValueError(f"n_slices must be >= 2, got {self.n_slices}")
        if int(self.stage_nums) < 1:
            raise ValueError(f"stage_nums must be >= 1, got {self.stage_nums}")
        if not float(self.failure_penalty) >= 0:
            raise ValueError(f"failure_penalty must be >= 0 frames, got {self.failure_penalty}")
        if int(self.value_bins) < 1:
            raise ValueError(f"value_bins must be >= 1, got {self.value_bins}")
        if self.task_text is not None and not str(self.task_text).strip():
            raise ValueError("task_text must be null (each episode's own task) or a non-empty text")

    @property
    def n_bins(self) -> int:
        return 2 if self.discretization == "binary" else int(self.n_slices)

    def labels(self) -> tuple[str, ...]:
        """Label texts of the bins, worst to best."""
        return advantage_labels(self.discretization, self.n_slices)


@dataclass(frozen=True)
class LabelInputs:
    """Frame-aligned inputs of the labelling, over all episodes.

    Attributes:
        episode_indices: (E,) episode indices, in order.
        offsets: (E + 1,) row ranges of the episodes.
        source: (N,) values of the advantage source column, in its stored dtype.
        stage_progress: (N,) stage progress in its stored dtype, or None when stage_nums == 1.
        intervention: (N,) bool, or None when the column is absent or forcing is off.
        task: (N,) int64 row of ``tasks`` of each frame.
        tasks: the task texts present (each source task without an advantage part, in the
            source's order), or ``(task_text,)`` when the config replaces them.
        failed: (N,) bool, frames of failed episodes (``success`` = 0), or None when the
            column is absent or ``failed_episodes`` is ``progress``.
        outcome_failed: (N,) bool, frames of failed episodes, read for the ``returns``
            source (whatever ``failed_episodes`` says), else None.
    """

    episode_indices: np.ndarray
    offsets: np.ndarray
    source: np.ndarray
    stage_progress: np.ndarray | None
    intervention: np.ndarray | None
    task: np.ndarray
    tasks: tuple[str, ...]
    failed: np.ndarray | None = None
    outcome_failed: np.ndarray | None = None


def read_label_inputs(dataset: LeRobotDatasetReader, config: LabelingConfig) -> LabelInputs:
    """Read and check the columns the labelling needs, before anything is written.

    Checks: the source column (and ``stage_progress_gt`` when ``stage_nums > 1``)
    exists; ``stage_progress_gt``, wherever present, lies in [0, 1]; every float column
    is finite (they are all copied into the labelled dataset, which must stay valid).
    Read once per reader and the options it depends on (the pre-run check and the node
    share it).
    """
    key = (
        "label_inputs",
        config.advantage_source,
        config.stage_nums,
        config.force_intervention,
        config.task_text,
        config.failed_episodes,
    )
    return dataset.memo(key, lambda: _read_label_inputs(dataset, config))


def _read_label_inputs(dataset: LeRobotDatasetReader, config: LabelingConfig) -> LabelInputs:
    if dataset.num_frames == 0:
        raise DatasetFormatError(
            f"{dataset.root}: the dataset has no frames. Fix: label a dataset with at least one "
            f"episode"
        )
    returns = config.advantage_source == "returns"
    source_column = PROGRESS if returns else config.advantage_source
    needed = {source_column: f"advantage_source={config.advantage_source}"}
    if returns:
        needed[SUCCESS] = "advantage_source=returns (each episode's outcome)"
    if config.stage_nums > 1:
        needed[STAGE_PROGRESS] = f"stage_nums={config.stage_nums}"
    available = dataset.column_names()
    for column, because in needed.items():
        hint = (
            " (written by the estimation pipeline)"
            if column not in (PROGRESS, STAGE_PROGRESS, SUCCESS)
            else ""
        )
        fix = (
            "choose another option or a dataset with that column"
            if column not in (PROGRESS, STAGE_PROGRESS, SUCCESS)
            else SUCCESS_FIX
            if column == SUCCESS
            else "mark its stages in an annotation file and run the annotation pipeline on it "
            "first (kedro run --pipelines annotation, annotation.progress_columns: "
            "[progress_gt, progress]), then label its output (raw_dataset_path=<the "
            "annotated dataset>); Meta-World: kedro run --env metaworld --pipelines metaworld"
        )
        dataset.require_column(column, f"{hint}, needed because {because}", fix)
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
    use_success = (config.failed_episodes == "negative" or returns) and SUCCESS in available
    columns = list(
        dict.fromkeys(
            [
                *needed,
                *([STAGE_PROGRESS] if has_stage else []),
                *([INTERVENTION] if use_intervention else []),
                *([SUCCESS] if use_success else []),
                "task_index",
            ]
        )
    )
    # one pass over the files: the columns used, and every float column checked finite
    # (they are all copied into the labelled dataset, which must stay valid)
    copied = dict.fromkeys(dataset.float_columns(), ", copied into the labelled dataset")
    data = dataset.read_columns(columns, check=list(copied), why={**copied, **why})
    for column in needed:  # stage progress is a fraction of its stages; the sources (progress,
        # advantages) are not bounded (docs/semantics.md; an estimated progress strays past 0, 1)
        unit = column == STAGE_PROGRESS
        dataset.check_array(column, data[column], why[column], (0.0, 1.0) if unit else None)
    flags = {  # 0 or 1 per frame
        INTERVENTION: (use_intervention, "force_intervention=true"),
        SUCCESS: (
            use_success,
            "advantage_source=returns" if returns else "failed_episodes=negative",
        ),
    }
    for column, (used, option) in flags.items():
        if used:
            why_flag = f" (a 0/1 flag), needed because {option}"
            dataset.check_array(column, data[column], why_flag, (0, 1))
    if has_stage:  # checked whenever present: the estimator trains on it
        dataset.check_array(
            STAGE_PROGRESS,
            data[STAGE_PROGRESS],
            " (stage progress, read by the estimator)",
            (0.0, 1.0),
        )
    source = data[source_column]
    stage = data[STAGE_PROGRESS].reshape(-1) if config.stage_nums > 1 else None
    intervention = None
    if use_intervention:
        flag = np.asarray(data[INTERVENTION])
        intervention = flag.reshape(len(flag), -1)[:, 0] == 1
    failed = outcome_failed = None
    if use_success:
        flag = np.asarray(data[SUCCESS])
        outcome_failed = flag.reshape(len(flag), -1)[:, 0] == 0
        failed = outcome_failed if config.failed_episodes == "negative" else None
    task, tasks = _frame_tasks(dataset.tasks, data["task_index"], config.task_text)
    return LabelInputs(
        dataset.episode_indices,
        dataset.offsets,
        source.reshape(len(source), -1)[:, 0],
        stage,
        intervention,
        task,
        tasks,
        failed,
        outcome_failed if returns else None,
    )


def _frame_tasks(
    source_tasks: list[str], task_index: np.ndarray, task_text: str | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each frame's task (a row of the returned texts): the source task of its
    ``task_index`` without any advantage part, only tasks present, in source order."""
    if task_text is not None:
        return np.zeros(len(task_index), dtype=np.int64), (str(task_text),)
    bases = [base_task(t) for t in source_tasks]
    present = np.unique(np.asarray(task_index, dtype=np.int64))
    names = tuple(dict.fromkeys(bases[int(k)] for k in present))
    row = np.array([names.index(b) if b in names else -1 for b in bases], dtype=np.int64)
    return row[np.asarray(task_index, dtype=np.int64)], names


def progress_advantage(progress: np.ndarray, offsets: np.ndarray, chunk_size: int) -> np.ndarray:
    """``adv[i] = p[i+c] - p[i]`` inside each episode; near the end, the normalised
    extrapolation ``(p[last] - p[i]) / (n - i) * c`` (0 at the last frame).

    Computed in the dtype the progress is stored in (as the reference does), returned
    as float32.

    Args:
        progress: (N,) progress values, episodes concatenated.
        offsets: (E + 1,) episode row ranges.
        chunk_size: look-ahead c in frames.

    Returns:
        (N,) float32 advantage.
    """
    p = np.asarray(progress)
    offsets = np.asarray(offsets, dtype=np.int64)
    c = int(chunk_size)
    adv = np.empty(len(p), dtype=p.dtype)
    m = max(len(p) - c, 0)
    adv[:m] = p[c : c + m] - p[:m]  # the look-ahead, right wherever i + c stays in the episode
    # the last min(n, c) frames of each episode: extrapolate to the episode's last frame
    k = np.minimum(np.diff(offsets), c)
    end = np.repeat(offsets[1:], k)  # exclusive end row of each tail frame's episode
    rows = end - k.repeat(k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    remaining = (end - rows).astype(p.dtype)  # n - i, as the reference's int meets a float
    adv[rows] = (p[end - 1] - p[rows]) / remaining * p.dtype.type(c)
    return adv.astype(np.float32)


def frame_advantage(inputs: LabelInputs, config: LabelingConfig) -> np.ndarray:
    """(N,) float32 advantage per frame from the configured source."""
    if config.advantage_source == PROGRESS:
        return progress_advantage(inputs.source, inputs.offsets, int(config.chunk_size))
    if config.advantage_source == "returns":
        return returns_advantage(
            inputs.offsets,
            inputs.source,
            inputs.outcome_failed[np.asarray(inputs.offsets[:-1], dtype=np.int64)],
            inputs.task,
            int(config.chunk_size),
            float(config.failure_penalty),
            int(config.value_bins),
        )
    return np.asarray(inputs.source).astype(np.float32)


def stage_index(stage_progress: np.ndarray | None, stage_nums: int, n: int) -> np.ndarray:
    """(N,) int stage of each frame: ``int(sp / (1 / S))`` in the stored dtype (float32),
    capped at S - 1 (all 0 if S == 1)."""
    if stage_nums == 1 or stage_progress is None:
        return np.zeros(n, dtype=np.int64)
    s = (np.asarray(stage_progress) / (1.0 / stage_nums)).astype(np.int64)
    return np.minimum(s, stage_nums - 1)


@dataclass(frozen=True)
class LabelGroups:
    """Frames that share thresholds: per stage (the seed), or per task and stage.

    Attributes:
        index: (N,) int64 group of each frame.
        keys: per group, (task text or None for all tasks, stage).
    """

    index: np.ndarray
    keys: tuple[tuple[str | None, int], ...]

    def name(self, g: int) -> str:
        task, stage = self.keys[g]
        return f"stage {stage}" if task is None else f"{task!r}, stage {stage}"


def label_groups(inputs: LabelInputs, stage: np.ndarray, config: LabelingConfig) -> LabelGroups:
    """The groups whose frames share a threshold (``config.threshold_scope``); frames of
    failed episodes (``inputs.failed``) belong to none (index -1): they stay in the worst
    bin and take no part in the thresholds."""
    stages = int(config.stage_nums)
    if config.threshold_scope == "stage":
        index, keys = stage, tuple((None, s) for s in range(stages))
    else:
        index = inputs.task * stages + stage
        keys = tuple((t, s) for t in inputs.tasks for s in range(stages))
    if inputs.failed is not None:
        index = np.where(inputs.failed, -1, index)
    return LabelGroups(index, keys)


def group_cuts(adv: np.ndarray, groups: LabelGroups, config: LabelingConfig) -> list[np.ndarray]:
    """Per group: the binary threshold as a 1-element array, or the n_slices boundaries.

    As the reference: percentiles of a float64 array with one stage, of a float32 array
    with several; n_slices points ``(100 / n) * j``, one percentile call each.
    """
    dtype = np.float64 if config.stage_nums == 1 else np.float32
    cuts = []
    for g in range(len(groups.keys)):
        values = adv[groups.index == g].astype(dtype)
        if values.size == 0:
            log.warning("%s has no frames: its threshold/boundaries are 0.0", groups.name(g))
            cuts.append(np.zeros(1 if config.discretization == "binary" else config.n_slices))
        elif config.discretization == "binary":
            cuts.append(np.array([np.percentile(values, 100 - float(config.threshold))]))
        else:
            step = 100 / config.n_slices
            cuts.append(np.array([np.percentile(values, step * j) for j in range(config.n_slices)]))
    return cuts


def assign_labels(
    adv: np.ndarray,
    groups: LabelGroups,
    cuts: list[np.ndarray],
    config: LabelingConfig,
    intervention: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) int64 label, 0 (worst) to n_bins - 1: binary ``adv >= thr``; n_slices the bin
    ``[b_j, b_j+1)`` holding adv (the reference's search: the last matching bin with one
    stage, the first with several), ``n - 1`` from ``b_{n-1}`` up; then intervention frames
    forced to the top bin when configured."""
    labels = np.zeros(len(adv), dtype=np.int64)
    first_match = config.stage_nums > 1
    for g, cut in enumerate(cuts):
        m = groups.index == g
        r = adv[m]
        if config.discretization == "binary":
            labels[m] = r >= cut[0]
            continue
        out = np.zeros(len(r), dtype=np.int64)
        taken = np.zeros(len(r), dtype=bool)
        for j in range(len(cut) - 1):
            hit = (r >= cut[j]) & (r < cut[j + 1])
            if first_match:
                hit &= ~taken
                taken |= hit
            out[hit] = j
        out[r >= cut[-1]] = config.n_slices - 1
        labels[m] = out
    if config.force_intervention and intervention is not None:
        labels[intervention] = config.n_bins - 1
    return labels


def output_tasks(inputs: LabelInputs, config: LabelingConfig) -> list[str]:
    """tasks.jsonl of the labelled dataset: row ``t * L + l`` is ``"<task t>, Advantage:
    <label l>"`` for every task t present and label l (L = n_bins)."""
    return [advantage_prompt(task, label) for task in inputs.tasks for label in config.labels()]


def task_index(inputs: LabelInputs, labels: np.ndarray, config: LabelingConfig) -> np.ndarray:
    """(N,) int64 ``task_index``: the frame's task row times n_bins plus its label."""
    return inputs.task * config.n_bins + labels


@dataclass(frozen=True)
class FrameLabels:
    """Stage 0's result for every frame: ``advantage`` (N,) float32, the threshold
    ``groups`` and their ``cuts``, and ``labels`` (N,) int64 in 0 .. n_bins - 1."""

    advantage: np.ndarray
    groups: LabelGroups
    cuts: list[np.ndarray]
    labels: np.ndarray


def label_frames(inputs: LabelInputs, config: LabelingConfig) -> FrameLabels:
    """Stage 0's entry: advantage, thresholds per group and labels of every frame of
    ``inputs`` (:func:`read_label_inputs`), what the gt_labeling pipeline and Stage 2's
    agreement report both use."""
    adv = frame_advantage(inputs, config)
    stage = stage_index(inputs.stage_progress, config.stage_nums, len(adv))
    groups = label_groups(inputs, stage, config)
    cuts = group_cuts(adv, groups, config)
    return FrameLabels(
        adv, groups, cuts, assign_labels(adv, groups, cuts, config, inputs.intervention)
    )


def label_statistics(
    adv: np.ndarray,
    groups: LabelGroups,
    cuts: list[np.ndarray],
    labels: np.ndarray,
    config: LabelingConfig,
    inputs: LabelInputs,
) -> dict:
    """What the seed's dry run prints, per group (stage, or task and stage) and overall,
    JSON-ready.

    ``positive_fraction`` is the share of frames in the top bin after intervention
    forcing; ``unforced_positive_fraction`` before it (what the threshold sets).
    """
    top = config.n_bins - 1
    intervention = inputs.intervention
    unforced = assign_labels(adv, groups, cuts, config, None)
    entries = []
    for g, cut in enumerate(cuts):
        m = groups.index == g
        v = adv[m].astype(np.float64)
        task, stage = groups.keys[g]
        entry = {
            "stage": stage,
            **({"task": task} if task is not None else {}),
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
        entries.append(entry)
    return {
        "config": {k: v for k, v in asdict(config).items() if k != "workers"},
        "frames": int(len(adv)),
        "tasks": list(inputs.tasks),
        "prompts": output_tasks(inputs, config),
        "task_index_layout": f"task_index = task * {config.n_bins} + label",
        "forced_frames": int(intervention.sum()) if intervention is not None else 0,
        "failed_frames": int(inputs.failed.sum()) if inputs.failed is not None else 0,
        "positive_fraction": float((labels == top).mean()) if len(labels) else 0.0,
        "stages": entries,
    }


def labeled_dataset(
    dataset: LeRobotDatasetReader, inputs: LabelInputs, labels: np.ndarray, config: LabelingConfig
) -> DerivedDataset:
    """Write plan of the labelled dataset: the new ``task_index`` and tasks.jsonl."""
    return DerivedDataset(
        dataset,
        {"task_index": task_index(inputs, labels, config)},
        tasks=output_tasks(inputs, config),
        workers=config.workers,
    )
