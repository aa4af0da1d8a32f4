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


def test_one_launch_shape_for_torchrun_and_jax():
    """Stage 1, Stage 2 and Stage 3 take the same ``launch:`` keys; JAX refuses a layout
    with several processes per node, before any work."""
    from adv_pipeline.distributed import LaunchConfig, check_jax_launch, init_jax_distributed
    from adv_pipeline.estimation import EstimationConfig
    from adv_pipeline.estimator import EstimatorConfig
    from adv_pipeline.policy import AwbcParams

    for config in (EstimatorConfig(), EstimationConfig(), AwbcParams()):
        assert isinstance(config.launch, LaunchConfig)
    init_jax_distributed(LaunchConfig())  # one host: nothing to join
    with pytest.raises(ValueError, match=r"nproc_per_node=2: JAX runs one process per node"):
        check_jax_launch(LaunchConfig(nproc_per_node=2))
    with pytest.raises(ValueError, match="0 <= node_rank < nnodes"):
        LaunchConfig(nnodes=2, node_rank=2)
