"""Parquet pairs with image bytes (plain binary or the HF datasets {bytes, path} struct), bad
bytes excluded with the row and reason; `l3-vision train --config --set` and `convert`
round trips from the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from conftest import random_images, tiny_args
from PIL import Image

from l3_core.jsonl import Exclusions
from l3_vision.checkpoint import load_checkpoint, save_checkpoint
from l3_vision.cli import main
from l3_vision.model import VisionLanguageModel
from l3_vision.training.data import read_pairs
from l3_vision.training.synthetic import write_dataset


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_parquet_image_bytes_are_read_and_bad_bytes_excluded(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet input is the parquet extra (pyarrow)")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "pairs.parquet"
    images = [_png((255, 0, 0)), b"\x89PNG broken", _png((0, 0, 255))]
    pq.write_table(pa.table({"image": images, "text": ["red", "x", "blue"]}), path)
    exclusions = Exclusions()
    pairs = read_pairs(path, exclusions)
    assert [p.text for p in pairs] == ["red", "blue"]
    assert pairs[0].image.size == (8, 6) and pairs[0].image.getpixel((0, 0)) == (255, 0, 0)
    assert [(r.line, "cannot decode image" in r.reason) for r in exclusions.rows] == [(2, True)]
    struct = tmp_path / "hf.parquet"  # datasets' Image feature: {"bytes", "path"}
    column = [{"bytes": images[0], "path": "a.png"}]
    pq.write_table(pa.table({"image": column, "text": ["red"]}), struct)
    assert [p.text for p in read_pairs(struct, Exclusions())] == ["red"]
    pq.write_table(pa.table({"picture": images[:1], "text": ["red"]}), tmp_path / "bad.parquet")
    with pytest.raises(Exception, match=r"bad\.parquet: no column 'image'"):
        read_pairs(tmp_path / "bad.parquet", Exclusions())


def test_train_from_a_toml_config_with_overrides(tmp_path: Path, capsys) -> None:
    data = write_dataset(tmp_path / "data", 8, 32, seed=0)
    config = tmp_path / "run.toml"
    config.write_text(
        f'[data]\ntrain = "{data}"\n[train]\nsteps = 50\nbatch_size = 4\nwarmup_steps = 1\n'
    )
    run = tmp_path / "run"
    args = ["train", "--config", str(config), "--run-dir", str(run)]
    assert main([*args, "--set", "train.steps=2", "--set", "train.checkpoint_every=2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["train_pairs"] == 8
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 2
    assert main([*args, "--set", "train.nope=1"]) == 3
    assert "train.nope" in capsys.readouterr().err


def test_convert_l3_to_hf_and_back_keeps_the_logits(tmp_path: Path, capsys) -> None:
    model = VisionLanguageModel.build(tiny_args(), seed=1)
    with torch.no_grad():
        for layer in model.cross_layers.values():
            layer.attn_gate.fill_(0.5)
    save_checkpoint(model, tmp_path / "l3")
    assert main(["convert", str(tmp_path / "l3"), str(tmp_path / "hf"), "--to", "hf"]) == 0
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back"), "--to", "l3"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "hf" / "config.json").is_file()
    tokens = torch.tensor([[model.args.image_token_id, 3, 4, 5]])
    back = load_checkpoint(tmp_path / "back")
    images = random_images(1)
    xmask = torch.ones(1, 4, 1, 4, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(
            back(tokens, images, xmask), model.eval()(tokens, images, xmask), rtol=0, atol=1e-6
        )
