"""The suite's own scheduling: tests marked ``xdist_group`` share one worker, so an expensive
session fixture (the toy default run) is computed once, not once per worker.

pytest 9.2 stores a node's id where pytest-xdist 3.8's ``--dist loadgroup`` no longer
reaches it: the groups were silently ignored and the toy run computed twice. This runs the
README's test options on a small file and checks that the group held.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = """
import os
import pytest


@pytest.fixture(scope="session")
def shared():
    with open(os.environ["FIXTURE_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")


@pytest.mark.xdist_group("shared")
@pytest.mark.parametrize("i", range(4))
def test_grouped(shared, i):
    pass


@pytest.mark.parametrize("i", range(4))
def test_free(i):
    pass
"""


def test_tests_of_one_xdist_group_share_one_worker_and_its_session_fixture(tmp_path: Path):
    (tmp_path / "test_groups.py").write_text(TESTS)
    log = tmp_path / "fixture.log"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-n", "2", "--dist", "loadgroup"]
        + ["-p", "no:cacheprovider", "test_groups.py"],
        cwd=tmp_path,
        env={"FIXTURE_LOG": str(log), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    grouped = [line for line in proc.stdout.splitlines() if "PASSED" in line and "grouped" in line]
    assert len(grouped) == 4 and all("@shared" in line for line in grouped), proc.stdout
    assert len(log.read_text().splitlines()) == 1, "the session fixture ran on several workers"
