"""Advantage prompts: ``"<task>, Advantage: <label>"`` as written by the labelling stage."""

from __future__ import annotations

from collections.abc import Sequence

ADVANTAGE_SEPARATOR = ", Advantage: "


def base_task(prompt: str) -> str:
    """The plain task text of a prompt (the prompt itself when it has no advantage part)."""
    return prompt.split(ADVANTAGE_SEPARATOR, 1)[0]


def advantage_prompt(task: str, label: str) -> str:
    return f"{task}{ADVANTAGE_SEPARATOR}{label}"


def default_prompt(tasks: Sequence[str]) -> str:
    """The prompt asking for the best regime: the last task (the top advantage bin, e.g.
    "<task>, Advantage: positive" for binary labels)."""
    if not tasks:
        raise ValueError("the training dataset's meta/tasks.jsonl lists no task; cannot build a default prompt")
    return tasks[-1]
