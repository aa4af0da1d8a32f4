"""The servers as users start them: the real ``adv-pipeline`` command in its own process,
on a free loopback port that it picks itself (``--port 0``), ready once it prints the
address it listens on."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .conftest import REPO

CLI = Path(sys.executable).with_name("adv-pipeline")  # the console script of pip install -e


@contextlib.contextmanager
def server_process(args: list[str], log: Path, listening: str) -> Iterator[Callable[[], re.Match]]:
    """Start ``adv-pipeline <args>`` in its own process, its stdout and stderr in ``log``;
    yields ``wait()``, which returns the match of the regex ``listening`` once the process
    has printed it (the caller may do other work while the server starts). Terminates the
    process (SIGKILL after 10 s) on leaving, whatever happened."""
    assert CLI.is_file(), f"{CLI} is missing: install the project (pip install -e .)"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def wait(timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (match := re.search(listening, log.read_text(errors="replace"))):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
                raise RuntimeError(
                    f"adv-pipeline {args[0]} {why} before listening:\n{log.read_text()}"
                )
            time.sleep(0.05)
        return match

    try:
        yield wait
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
