"""Kedro dataset classes (load and save only): a LeRobot dataset and the target a node
writes it to, a checkpoint, a folder of training runs."""

from .checkpoint_dataset import CheckpointDirDataset
from .lerobot_dataset import LeRobotDataset
from .runs_dataset import RunsDataset
from .target_dataset import LeRobotTarget

__all__ = ["CheckpointDirDataset", "LeRobotDataset", "LeRobotTarget", "RunsDataset"]
