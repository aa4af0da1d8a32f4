"""The Kedro dataset classes only load and save: their save on a prepared result writes
nothing (the work happened in the node), and they import no model, simulator or stage."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from kedro.io import DatasetError

from adv_pipeline.checkpoints import Runs, load_checkpoint, open_run, write_checkpoint
from adv_pipeline.datasets import CheckpointDirDataset, LeRobotDataset, LeRobotTarget, RunsDataset
from adv_pipeline.outputs import OutputTarget

from ..conftest import REPO, synthetic_plan
from ..reliability.conftest import tree_digest


def test_lerobot_dataset_loads_and_saves_only_what_a_node_wrote(tmp_path):
    written = synthetic_plan().write(tmp_path / "ds")
    before = tree_digest(tmp_path)
    catalog_entry = LeRobotDataset(path=str(tmp_path / "ds"))
    catalog_entry.save(written)  # the node wrote it here: nothing to do
    assert tree_digest(tmp_path) == before
    assert catalog_entry.load() is written  # later nodes reuse the reader
    other = LeRobotDataset(path=str(tmp_path / "elsewhere"))
    with pytest.raises(
        DatasetError, match=r"elsewhere: the node wrote its dataset to .*/ds, not here"
    ):
        other.save(written)
    with pytest.raises(DatasetError, match="expected the dataset a node wrote here"):
        other.save(synthetic_plan())  # a plan is not run by a save
    with pytest.raises(DatasetError, match=r"no LeRobot dataset here .*Fix: run the pipeline"):
        other.load()
    assert tree_digest(tmp_path) == before and not other.exists() and catalog_entry.exists()


def test_targets_and_runs_give_places_and_create_nothing(tmp_path):
    target = LeRobotTarget(path=str(tmp_path / "out"), overwrite=True)
    assert target.load() == OutputTarget(tmp_path / "out", True)
    runs = RunsDataset(path=str(tmp_path / "runs"), run="seed1")
    assert runs.load() == Runs(tmp_path / "runs", "seed1")
    assert list(tmp_path.iterdir()) == []
    for slot in (target, runs):
        with pytest.raises(DatasetError, match="input only"):
            slot.save(object())


def test_checkpoint_dataset_reads_the_latest_run_and_copies_only_foreign_checkpoints(tmp_path):
    root = tmp_path / "runs"
    first = open_run(Runs(root), {"seed": 0}, resume=False)
    write_checkpoint(first, 5, {"w": np.zeros(2, np.float32)}, {})
    second = open_run(Runs(root, "b"), {"seed": 1}, resume=False)
    write_checkpoint(second, 3, {"w": np.ones(2, np.float32)}, {})
    entry = CheckpointDirDataset(path=str(root))
    assert entry.load().run_dir == second and entry.load().step == 3
    assert CheckpointDirDataset(path=str(root), run=first.name).load().step == 5
    before = tree_digest(root)
    entry.save(entry.load())  # trained in place: nothing to do
    assert tree_digest(root) == before
    elsewhere = CheckpointDirDataset(path=str(tmp_path / "copy"))
    elsewhere.save(load_checkpoint(first))
    np.testing.assert_array_equal(elsewhere.load().load_weights()["w"], np.zeros(2))


FORBIDDEN = (
    "torch",
    "jax",
    "flax",
    "adv_pipeline.sim",
    "adv_pipeline.estimator",
    "adv_pipeline.estimation",
    "adv_pipeline.policy",
    "adv_pipeline.labeling",
)


@pytest.mark.parametrize(
    "module", sorted(p.name for p in (REPO / "src/adv_pipeline/datasets").glob("*.py"))
)
def test_dataset_modules_import_no_model_simulator_or_stage(module):
    tree = ast.parse((REPO / "src/adv_pipeline/datasets" / module).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert [n for n in names if n.startswith(FORBIDDEN)] == []
