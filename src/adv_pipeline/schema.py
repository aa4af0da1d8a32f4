"""Column names and the advantage prompt format, shared by every stage (docs/semantics.md).

Stage 0 writes prompts ``"<task>, Advantage: <label>"`` into tasks.jsonl, Stage 2 writes
the advantage columns, Stage 3 reads the prompts back: all through this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------- annotation columns (inputs)
STAGE_PROGRESS = "stage_progress_gt"  # in [0, 1]: stage k of K covers [k/K, (k+1)/K]
PROGRESS = "progress"  # the default advantage source of Stage 0
INTERVENTION = "intervention"  # 1 where a human took over (DAgger); optional
STATE_COLUMN = "observation.state"  # what the robot records of itself (LeRobot's key)
NEXT_SUCCESS = "next.success"  # LeRobot's key: the task is solved after this frame's action
SUCCESS = "success"  # per frame, its episode's outcome: 1 / 0, -1 not said (annotation; demo)
QUALITY = "quality"  # recordings of several operators: the operator's quality (analysis only)

# ---------------------------------------------------------------- columns Stage 2 writes
RELATIVE_ADVANTAGE = "relative_advantage"  # KAI0 only: V(n -> n + I), scaled near the end
ABSOLUTE_VALUE = "absolute_value"
ABSOLUTE_ADVANTAGE = "absolute_advantage"
ESTIMATED_COLUMNS = (RELATIVE_ADVANTAGE, ABSOLUTE_VALUE, ABSOLUTE_ADVANTAGE)
# distributional value heads only: the standard deviation of absolute_value's distribution
ABSOLUTE_VALUE_SPREAD = "absolute_value_spread"
ADVANTAGE_SOURCES = (PROGRESS, ABSOLUTE_ADVANTAGE, RELATIVE_ADVANTAGE)

# ---------------------------------------------------------------- prompts
ADVANTAGE_SEPARATOR = ", Advantage: "
BINARY_LABELS = ("negative", "positive")  # task_index 0, 1


def advantage_labels(discretization: str, n_slices: int) -> tuple[str, ...]:
    """Label texts of the bins, worst to best: ``negative, positive`` (binary) or the
    bin index ``0 .. n_slices-1`` (n_slices)."""
    return BINARY_LABELS if discretization == "binary" else tuple(str(i) for i in range(n_slices))


def advantage_prompt(task: str, label: str) -> str:
    """``"<task>, Advantage: <label>"``."""
    return f"{task}{ADVANTAGE_SEPARATOR}{label}"


def split_task_index(task_index: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(task row, label) of labelled ``task_index`` values: a labelled dataset's
    tasks.jsonl lists, for every task, its ``n_labels`` prompts worst to best, so
    ``task_index = task * n_labels + label`` (docs/semantics.md, "Prompts")."""
    task_index = np.asarray(task_index, dtype=np.int64)
    return task_index // n_labels, task_index % n_labels


def advantage_label(prompt: str) -> str | None:
    """The advantage label of a prompt (``"positive"`` of ``"<task>, Advantage: positive"``),
    None when it has no advantage part."""
    parts = prompt.split(ADVANTAGE_SEPARATOR, 1)
    return parts[1] if len(parts) == 2 else None


def base_task(prompt: str) -> str:
    """The plain task text of a prompt (the prompt itself when it has no advantage part)."""
    return prompt.split(ADVANTAGE_SEPARATOR, 1)[0]


def default_prompt(tasks: Sequence[str]) -> str:
    """The prompt asking for the best regime: the last task (the top advantage bin, e.g.
    "<task>, Advantage: positive" for binary labels)."""
    if not tasks:
        raise ValueError(
            "the training dataset's meta/tasks.jsonl lists no task; cannot build a default prompt"
        )
    return tasks[-1]
