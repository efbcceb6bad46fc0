"""Checkpoints l3-vision writes carry l3-core's files.json (sizes and sha256); the loader
names a truncated or altered file instead of loading it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_args

from l3_core.checkpoint.integrity import CorruptCheckpointError
from l3_vision.checkpoint import load_checkpoint, save_checkpoint
from l3_vision.model import VisionLanguageModel


@pytest.mark.parametrize("fmt", ["l3", "hf"])
def test_saved_checkpoint_records_and_checks_its_files(tmp_path: Path, fmt: str) -> None:
    model = VisionLanguageModel.build(tiny_args())
    out = save_checkpoint(model, tmp_path / "ckpt", format=fmt)
    record = json.loads((out / "files.json").read_text())["files"]
    assert set(record) == {p.name for p in out.iterdir()} - {"files.json"}
    assert load_checkpoint(out) is not None
    weights = next(out.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte altered
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=rf"{weights.name}: sha256 .* altered"):
        load_checkpoint(out)
    weights.write_bytes(bytes(data[:-10]))
    with pytest.raises(
        CorruptCheckpointError,
        match=rf"{weights.name}: \d+ bytes, files.json records \d+ \(truncated",
    ):
        load_checkpoint(out, checksums=False)


def test_a_directory_without_a_record_still_loads(tmp_path: Path) -> None:
    model = VisionLanguageModel.build(tiny_args())
    out = save_checkpoint(model, tmp_path / "ckpt")
    (out / "files.json").unlink()  # as in a checkpoint from before the record existed
    tokens = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(load_checkpoint(out)(tokens), model.eval()(tokens))
