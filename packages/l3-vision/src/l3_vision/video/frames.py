"""Video frames for the vision model: up to ``max_frames`` uniformly sampled frames decoded
with PyAV, each then a one-tile image for the image encoder (Llama 3 paper, section 7.2)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from l3_vision.errors import ImageError, MissingExtraError
from l3_vision.preprocess import preprocess_images

MAX_FRAMES = 64


def sample_indices(n_frames: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """Every frame when there are at most ``max_frames``; otherwise the middle frame of each of
    ``max_frames`` equal segments (uniform in time, first and last segments included)."""
    if n_frames <= 0 or max_frames <= 0:
        raise ImageError(f"cannot sample {max_frames} frames from a video of {n_frames}")
    if n_frames <= max_frames:
        return list(range(n_frames))
    return [int((2 * i + 1) * n_frames // (2 * max_frames)) for i in range(max_frames)]


def _av():
    try:
        import av
    except ImportError:
        raise MissingExtraError(
            "reading video needs PyAV: pip install 'l3-vision[video]'"
        ) from None
    return av


def _count_frames(path: Path) -> int:
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.demux(stream) if _.size)


def read_frames(path: str | os.PathLike[str], max_frames: int = MAX_FRAMES) -> list[Image.Image]:
    """Up to ``max_frames`` uniformly sampled RGB frames of the first video stream of ``path``."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: video file not found")
    try:
        wanted = set(sample_indices(_count_frames(path), max_frames))
        frames = []
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames.append(frame.to_image().convert("RGB"))
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode video: {e}") from None
    if not frames:
        raise ImageError(f"{path}: no video frames decoded")
    return frames


@dataclass
class VideoBatch:
    """Frames [b, frames, max_tiles, 3, t, t] (each frame a one-tile image in tile 0, the
    rest zero) and ``frame_mask`` [b, frames] (1 = a real frame, 0 = padding)."""

    pixel_values: torch.Tensor
    frame_mask: torch.Tensor

    @property
    def aspect_ratio_ids(self) -> torch.Tensor:
        """Every frame is one 1x1 tile (aspect-ratio id 1); padding frames id 0."""
        return self.frame_mask.long()

    @property
    def aspect_ratio_mask(self) -> torch.Tensor:
        # Tile 0 is always marked real, padding frames included, as the references mark images.
        mask = torch.zeros(*self.pixel_values.shape[:3], dtype=torch.long)
        mask[:, :, 0] = 1
        return mask


def preprocess_videos(
    videos: list[list[Image.Image]], tile_size: int, max_tiles: int, max_frames: int = MAX_FRAMES
) -> VideoBatch:
    """Frames of each video (as :func:`read_frames` gives them) resized and normalised as
    one-tile images, padded to the longest video."""
    if not videos or any(not v for v in videos):
        raise ImageError("every video needs at least one frame")
    longest = max(len(v) for v in videos)
    if longest > max_frames:
        raise ImageError(f"a video has {longest} frames; at most {max_frames} (sample them first)")
    pixels = torch.zeros(len(videos), longest, max_tiles, 3, tile_size, tile_size)
    mask = torch.zeros(len(videos), longest, dtype=torch.long)
    for i, frames in enumerate(videos):
        tiles = preprocess_images(frames, tile_size=tile_size, max_tiles=1).pixel_values
        pixels[i, : len(frames), 0] = tiles[:, 0, 0]
        mask[i, : len(frames)] = 1
    return VideoBatch(pixels, mask)
