"""Video: frames decoded with PyAV, the perceiver-resampler temporal aggregator."""

from l3_vision.video.aggregator import PerceiverResampler
from l3_vision.video.frames import VideoBatch, preprocess_videos, read_frames, sample_indices

__all__ = ["PerceiverResampler", "VideoBatch", "preprocess_videos", "read_frames", "sample_indices"]
