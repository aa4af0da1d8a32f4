"""Kedro dataset classes (load and save only): a LeRobot dataset and the target a node
writes it to, an annotation file, a checkpoint, a folder of training runs, a sweep's
per-seed tables."""

from .annotations_dataset import AnnotationsDataset
from .checkpoint_dataset import CheckpointDirDataset
from .lerobot_dataset import LeRobotDataset
from .runs_dataset import RunsDataset
from .seed_tables_dataset import SeedTablesDataset
from .target_dataset import LeRobotTarget

__all__ = [
    "AnnotationsDataset",
    "CheckpointDirDataset",
    "LeRobotDataset",
    "LeRobotTarget",
    "RunsDataset",
    "SeedTablesDataset",
]
