"""Kedro dataset classes: a LeRobot dataset directory and a checkpoint directory."""

from .checkpoint_dataset import CheckpointDirDataset
from .lerobot_dataset import LeRobotDataset

__all__ = ["CheckpointDirDataset", "LeRobotDataset"]
