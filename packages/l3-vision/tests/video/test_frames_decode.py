"""Video frames: an mp4 written with PyAV here reads back through ``read_frames`` (a real
decoder) with the colours it was written with, sampled uniformly when it is long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from l3_vision.errors import ImageError
from l3_vision.video import preprocess_videos, read_frames, sample_indices

av = pytest.importorskip("av", reason="PyAV is the video extra (l3-vision[video])")

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]


def write_mp4(path: Path, n_frames: int, size: int = 32) -> list[tuple[int, int, int]]:
    """Frame i is a solid colour, COLOURS[(i // 4) % 3]; returns each frame's colour."""
    colours = [COLOURS[(i // 4) % 3] for i in range(n_frames)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for colour in colours:
            frame = np.empty((size, size, 3), np.uint8)
            frame[...] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return colours


def test_short_video_round_trips_every_frame(tmp_path: Path) -> None:
    colours = write_mp4(tmp_path / "v.mp4", 12)
    frames = read_frames(tmp_path / "v.mp4")
    assert len(frames) == 12
    for frame, colour in zip(frames, colours):
        mean = np.asarray(frame, dtype=np.float64).reshape(-1, 3).mean(0)
        assert np.abs(mean - colour).max() < 12, (mean, colour)  # lossy codec


def test_long_video_gives_64_uniform_frames(tmp_path: Path) -> None:
    colours = write_mp4(tmp_path / "v.mp4", 150)
    frames = read_frames(tmp_path / "v.mp4", max_frames=64)
    picked = sample_indices(150, 64)
    assert len(frames) == 64 and len(set(picked)) == 64
    assert picked[0] == 1 and picked[-1] == 148  # the middle of the first and last segments
    assert np.diff(picked).min() >= 2 and np.diff(picked).max() <= 3  # uniform in time
    for frame, i in zip(frames, picked):
        mean = np.asarray(frame, dtype=np.float64).reshape(-1, 3).mean(0)
        assert np.abs(mean - colours[i]).max() < 12, (i, mean, colours[i])


def test_sampling_keeps_every_frame_of_a_short_video() -> None:
    assert sample_indices(5, 64) == [0, 1, 2, 3, 4]
    assert sample_indices(64, 64) == list(range(64))
    with pytest.raises(ImageError, match="cannot sample"):
        sample_indices(0, 64)


def test_bad_video_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="video file not found"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ImageError, match=r"junk\.mp4: cannot decode video"):
        read_frames(tmp_path / "junk.mp4")


def test_frames_become_one_tile_images_padded_to_the_longest(tmp_path: Path) -> None:
    write_mp4(tmp_path / "a.mp4", 5)
    write_mp4(tmp_path / "b.mp4", 3)
    batch = preprocess_videos(
        [read_frames(tmp_path / "a.mp4"), read_frames(tmp_path / "b.mp4")],
        tile_size=32,
        max_tiles=2,
    )
    assert tuple(batch.pixel_values.shape) == (2, 5, 2, 3, 32, 32)
    assert batch.frame_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch.pixel_values[:, :, 1].abs().sum() == 0  # only tile 0 holds a frame
    assert batch.pixel_values[1, 3:].abs().sum() == 0
    # Red frame 0 normalised with mean = std = 0.5: red channel high, others low.
    red = batch.pixel_values[0, 0, 0].mean(dim=(1, 2))
    assert red[0] > 0.5 and red[1] < -0.5 and red[2] < -0.5
