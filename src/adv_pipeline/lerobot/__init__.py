"""LeRobot v2.1 datasets: the one place that knows the on-disk format.

Read with :class:`LeRobotDatasetReader`, write with :class:`NewDataset` (generated
episodes) or :class:`DerivedDataset` (changed columns of an existing dataset).
"""

from .format import CODEBASE_VERSION, DatasetFormatError
from .reader import EpisodeMeta, LeRobotDatasetReader, column_to_numpy
from .video import VideoDecodeError, VideoInfo, VideoOptions, VideoReader, VideoWriter, encode_video, iter_lockstep, probe, resize_with_pad
from .writer import DerivedDataset, EpisodeData, NewDataset, feature_spec, video_feature_spec

__all__ = [
    "CODEBASE_VERSION",
    "DatasetFormatError",
    "DerivedDataset",
    "EpisodeData",
    "EpisodeMeta",
    "LeRobotDatasetReader",
    "NewDataset",
    "VideoDecodeError",
    "VideoInfo",
    "VideoOptions",
    "VideoReader",
    "VideoWriter",
    "column_to_numpy",
    "encode_video",
    "feature_spec",
    "iter_lockstep",
    "probe",
    "resize_with_pad",
    "video_feature_spec",
]
