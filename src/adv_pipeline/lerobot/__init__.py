"""LeRobot datasets (v2.1 and v3.0): the one place that knows the on-disk formats.

Read with :class:`LeRobotDatasetReader`. Write with :class:`DatasetWriter` (episode by
episode, atomically, resumable), or its two front ends: :class:`NewDataset` (generated
episodes) and :class:`DerivedDataset` (changed columns of an existing dataset). Code
outside this package imports from here, never from its modules.
"""

from .columns import column_to_numpy
from .format import (
    CODEBASE_VERSION,
    FORMATS,
    IMAGE_KEY_PREFIX,
    INFO_PATH,
    V30,
    DatasetFormatError,
    camera_name,
    find_dataset,
    lerobot_home,
)
from .metadata import EpisodeMeta
from .reader import LeRobotDatasetReader
from .video import (
    VideoDecodeError,
    VideoInfo,
    VideoOptions,
    VideoReader,
    VideoWriter,
    encode_video,
    iter_lockstep,
    probe,
    resize_with_pad,
)
from .writer import (
    DatasetWriter,
    DerivedDataset,
    EpisodeData,
    NewDataset,
    base_info,
    derived_format,
    feature_spec,
    index_features_last,
    source_videos,
    video_feature_spec,
    with_columns,
    work_folder,
    written_by,
)

__all__ = [
    "CODEBASE_VERSION",
    "FORMATS",
    "V30",
    "IMAGE_KEY_PREFIX",
    "INFO_PATH",
    "DatasetFormatError",
    "find_dataset",
    "lerobot_home",
    "DatasetWriter",
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
    "base_info",
    "derived_format",
    "camera_name",
    "column_to_numpy",
    "encode_video",
    "feature_spec",
    "index_features_last",
    "iter_lockstep",
    "probe",
    "resize_with_pad",
    "source_videos",
    "video_feature_spec",
    "with_columns",
    "work_folder",
    "written_by",
]
