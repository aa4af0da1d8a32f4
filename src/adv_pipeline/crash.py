"""Crash safety of processes: helpers die with their parent, and named failpoints let the
crash tests kill a run at an exact place.

``ADV_PIPELINE_FAILPOINT=<name>[:<n>]`` in the environment makes the n-th (default: first)
call of ``failpoint(<name>)`` in a process kill that process with SIGKILL, as a power cut
or the OOM killer would. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

FAILPOINT_ENV = "ADV_PIPELINE_FAILPOINT"
_PR_SET_PDEATHSIG = 1
_passed: dict[str, int] = {}


def failpoint(name: str) -> None:
    """SIGKILL this process here if ``ADV_PIPELINE_FAILPOINT`` names this point."""
    spec = os.environ.get(FAILPOINT_ENV)
    if not spec:
        return
    wanted, _, nth = spec.partition(":")
    if wanted != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make the kernel SIGKILL this process when its parent dies (Linux; a no-op
    elsewhere), so that workers of a killed run never linger. Call it first thing in a
    child process; ``parent_pid`` (the parent's pid before forking) closes the race of a
    parent that died before the call."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def child_dies_with_parent() -> None:
    """``preexec_fn`` of :mod:`subprocess` launches (torchrun): the child is killed when
    this process dies."""
    die_with_parent()
