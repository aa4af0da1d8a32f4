"""Kedro dataset classes: a LeRobot dataset directory, a checkpoint, a folder of training runs."""

from .checkpoint_dataset import CheckpointDirDataset
from .lerobot_dataset import LeRobotDataset
from .runs_dataset import RunsDataset

__all__ = ["CheckpointDirDataset", "LeRobotDataset", "RunsDataset"]
