"""Package boundaries: the LeRobot format has one owner (nothing outside lerobot/ imports
its modules), and no stage package imports Kedro."""

from __future__ import annotations

import ast

import pytest

from .conftest import REPO

SRC = REPO / "src" / "adv_pipeline"


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _modules(*exclude):
    return [
        p
        for p in sorted(SRC.rglob("*.py"))
        if not any(part in exclude for part in p.relative_to(SRC).parts)
    ]


def test_nothing_outside_lerobot_imports_its_internals():
    offenders = {
        str(p.relative_to(SRC)): name
        for p in _modules("lerobot")
        for name in _imports(p)
        if name.startswith("adv_pipeline.lerobot.")
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "package", ["lerobot", "sim", "labeling", "estimator", "estimation", "policy"]
)
def test_stage_packages_do_not_import_kedro(package):
    offenders = {
        str(p.relative_to(SRC)): n
        for p in sorted((SRC / package).rglob("*.py"))
        for n in _imports(p)
        if n.split(".")[0] in ("kedro", "kedro_datasets", "kedro_mlflow")
    }
    assert offenders == {}
