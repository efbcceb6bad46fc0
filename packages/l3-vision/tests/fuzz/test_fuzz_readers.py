"""Property tests: any image-text dataset (JSONL or Parquet), any image bytes, any damage to a
checkpoint and any configuration value either work or raise one named ``L3Error``; a row that
cannot be used is excluded with its line, never dropped silently.

Bounded (``max_examples``), a few seconds each on a 2-core machine."""

from __future__ import annotations

import io
import json
import math
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import tiny_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from l3_core.errors import CheckpointError, ConfigError, L3Error
from l3_core.jsonl import Exclusions
from l3_vision.checkpoint import load_checkpoint, save_checkpoint
from l3_vision.config import RunConfig
from l3_vision.model import VisionLanguageModel
from l3_vision.training.data import open_image, read_pairs

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _png(size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
_image_bytes = st.one_of(
    st.just(PNG),
    st.integers(0, len(PNG) - 1).map(lambda n: PNG[:n]),  # truncated
    st.binary(max_size=64),
    st.binary(max_size=32).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),  # a PNG header, then junk
)
_json = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers())
_row = st.fixed_dictionaries(
    {},
    optional={
        "image": st.one_of(st.sampled_from(["img0.png", "img1.png", "absent.png", ""]), _json),
        "text": st.one_of(st.text(max_size=12), _json),
    },
)


@FUZZ
@given(images=st.lists(_image_bytes, min_size=2, max_size=2), rows=st.lists(_row, max_size=6))
def test_a_jsonl_dataset_gives_one_pair_or_one_exclusion_per_row(images, rows):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for i, data in enumerate(images):
            (root / f"img{i}.png").write_bytes(data)
        path = root / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        exclusions = Exclusions()
        pairs = read_pairs(path, exclusions)
        assert len(pairs) + len(exclusions) == len(rows)
        assert all(p.image.mode == "RGB" and p.text.strip() for p in pairs)


@FUZZ
@given(data=_image_bytes)
def test_any_image_bytes_decode_to_rgb_or_are_an_image_error(data):
    try:
        assert open_image(data, "x.png").mode == "RGB"
    except L3Error as e:
        assert str(e).startswith("x.png: ")


@pytest.fixture(scope="module")
def checkpoint_files(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("ckpt") / "model"
    save_checkpoint(VisionLanguageModel(tiny_args()), d)
    return {p.name: p.read_bytes() for p in d.iterdir()}


@FUZZ
@given(
    which=st.sampled_from(["model.safetensors", "vision.json"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3),
)
def test_a_truncated_or_garbled_checkpoint_loads_or_is_a_checkpoint_error(
    checkpoint_files, which, cut, flips
):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, data in checkpoint_files.items():
            (root / name).write_bytes(data)
        damaged = bytearray(checkpoint_files[which][: int(cut * len(checkpoint_files[which]))])
        for pos, val in flips:
            if damaged:
                damaged[int(pos * (len(damaged) - 1))] = val
        (root / which).write_bytes(bytes(damaged))
        try:
            load_checkpoint(root)
        except CheckpointError as e:  # l3-core's (a corrupt file) or l3-vision's (a bad header)
            assert str(root) in str(e)


def _numeric_keys() -> list[str]:
    cfg = RunConfig()
    return [
        f"{section.name}.{f.name}"
        for section in fields(cfg)
        for f in fields(getattr(cfg, section.name))
        if type(getattr(getattr(cfg, section.name), f.name)) in (int, float)
    ]


@FUZZ
@given(
    key=st.sampled_from(_numeric_keys()),
    value=st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_a_config_value_validates_only_when_it_is_finite_and_in_range(key, value):
    cfg = RunConfig()
    cfg.data.train = "pairs.jsonl"
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, value)
    try:
        cfg.validate()
    except ConfigError as e:
        assert key in str(e)
        return
    assert math.isfinite(value) and value >= 0, f"{key} = {value} was accepted"
