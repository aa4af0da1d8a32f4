"""The project's error for what a user can fix: bad input data, options or output paths.

Its message names the file (or parameter), what is wrong and ``Fix: ...``; the command
line prints it as one short block instead of a traceback (:mod:`adv_pipeline.cli`).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, options or output path; the message ends with the fix."""


def user_error(exc: BaseException | None) -> InputError | None:
    """The :class:`InputError` behind ``exc`` (itself, or what it wraps), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
