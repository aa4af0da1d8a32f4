"""Kedro dataset classes: a LeRobot dataset directory, a checkpoint directory, a run directory."""

from .checkpoint_dataset import CheckpointDirDataset
from .lerobot_dataset import LeRobotDataset
from .run_dir_dataset import RunDirDataset

__all__ = ["CheckpointDirDataset", "LeRobotDataset", "RunDirDataset"]
