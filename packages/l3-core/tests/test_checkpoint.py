"""Native and HF checkpoints: round trips, sharding, atomicity and errors that name the problem."""

import json

import pytest
import torch

from l3_core import CheckpointError, ModelArgs, Transformer, load_checkpoint, save_checkpoint
from l3_core.checkpoint import detect_format, load_checkpoint_with_head
from l3_core.checkpoint.integrity import FILES, CorruptCheckpointError

TINY = ModelArgs.from_preset("llama3-tiny")


def _edit_json(ck, name, change):
    """Edit ``ck/name`` as a person would by hand: the edited checkpoint has no record of its
    files (``files.json``), so the edit reaches the loader's own checks."""
    data = json.loads((ck / name).read_text())
    change(data)
    (ck / name).write_text(json.dumps(data))
    (ck / FILES).unlink()


@pytest.fixture(scope="module")
def model():
    return Transformer.build(TINY, seed=2).eval()


@pytest.mark.parametrize("fmt", ["l3", "hf"])
def test_round_trip_gives_identical_weights_and_args(tmp_path, model, fmt):
    save_checkpoint(model, tmp_path / "ck", format=fmt)
    assert detect_format(tmp_path / "ck") == fmt
    back = load_checkpoint(tmp_path / "ck")
    assert not back.training
    for (name, p), q in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.equal(p, q), name
    if fmt == "l3":
        assert back.args == model.args
    else:  # HF states the FFN size directly instead of multiplier/multiple_of
        assert back.args.ffn_hidden_dim == model.args.ffn_hidden_dim


def test_large_models_are_sharded_with_an_index(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck", format="hf", max_shard_bytes=100_000)
    index = json.loads((tmp_path / "ck" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    back = load_checkpoint(tmp_path / "ck")
    tokens = torch.randint(0, TINY.vocab_size, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(back(tokens), model(tokens))


def test_loading_in_another_dtype(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck")
    back = load_checkpoint(tmp_path / "ck", dtype=torch.bfloat16)
    assert back.tok_embeddings.weight.dtype == torch.bfloat16


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck")
    _edit_json(tmp_path / "ck", "params.json", lambda p: p["args"].update(vocab_size=1024))
    with pytest.raises(
        CheckpointError, match=r"'tok_embeddings.weight' has shape \(512, 64\).*\(1024, 64\)"
    ):
        load_checkpoint(tmp_path / "ck")


def test_missing_tensors_are_listed(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck")
    _edit_json(tmp_path / "ck", "params.json", lambda p: p["args"].update(n_layers=3))
    with pytest.raises(CheckpointError, match=r"missing tensors \['layers.2"):
        load_checkpoint(tmp_path / "ck")


def test_a_head_beside_the_model_is_returned_apart_and_otherwise_refused(tmp_path, model):
    """A trainer checkpoint of an objective with a head (a reward model's score) holds
    ``output_head.*`` beside the model's tensors."""
    from safetensors.torch import load_file, save_file

    save_checkpoint(model, tmp_path / "ck")
    weights = tmp_path / "ck" / "model.safetensors"
    score = torch.randn(1, TINY.dim)
    save_file({**load_file(weights), "output_head.weight": score}, weights)
    (tmp_path / "ck" / FILES).unlink()  # the trainer's own checkpoints carry no record
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['output_head.weight'\]"):
        load_checkpoint(tmp_path / "ck")
    back, head = load_checkpoint_with_head(tmp_path / "ck", dtype=torch.float64)
    assert list(head) == ["weight"]
    assert torch.equal(head["weight"], score.double())
    for (name, p), q in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.equal(p.double(), q), name
    with pytest.raises(CheckpointError, match="unexpected tensors"):
        load_checkpoint_with_head(tmp_path / "ck", head_prefix="other_head.")


def test_pickle_weights_are_never_loaded(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck", format="hf")
    (tmp_path / "ck" / "model.safetensors").unlink()
    (tmp_path / "ck" / FILES).unlink()  # as in a foreign HF checkpoint
    (tmp_path / "ck" / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(tmp_path / "ck")


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, model, monkeypatch):
    save_checkpoint(model, tmp_path / "ck")
    before = sorted(p.name for p in (tmp_path / "ck").iterdir())
    import l3_core.checkpoint as ckpt

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_tensors", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == before
    assert load_checkpoint(tmp_path / "ck") is not None
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary left behind


def test_hf_config_missing_a_key_names_it(tmp_path, model):
    save_checkpoint(model, tmp_path / "ck", format="hf")
    _edit_json(tmp_path / "ck", "config.json", lambda c: c.pop("hidden_size"))
    with pytest.raises(CheckpointError, match="config.json: missing key 'hidden_size'"):
        load_checkpoint(tmp_path / "ck")


def test_unknown_format_and_missing_directory_are_errors(tmp_path, model):
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        save_checkpoint(model, tmp_path / "x", format="pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")


@pytest.mark.parametrize("fmt", ["l3", "hf"])
def test_every_file_is_recorded_with_its_size_and_sha256(tmp_path, model, fmt):
    import hashlib

    ck = save_checkpoint(model, tmp_path / "ck", format=fmt, max_shard_bytes=100_000)
    files = json.loads((ck / FILES).read_text())["files"]
    assert sorted(files) == sorted(p.name for p in ck.iterdir() if p.name != FILES)
    for name, rec in files.items():
        data = (ck / name).read_bytes()
        assert rec == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_truncated_weights_file_is_named_with_both_sizes(tmp_path, model):
    ck = save_checkpoint(model, tmp_path / "ck")
    path = ck / "model.safetensors"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(CorruptCheckpointError, match=rf"model.safetensors: {size // 2} bytes, "):
        load_checkpoint(ck, checksums=False)  # the size check alone finds it


def test_an_altered_byte_is_found_by_its_checksum(tmp_path, model):
    ck = save_checkpoint(model, tmp_path / "ck")
    path = ck / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside a tensor: still a readable safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=r"model.safetensors: sha256 .* altered"):
        load_checkpoint(ck)
    assert load_checkpoint(ck, checksums=False) is not None


def test_a_truncated_file_without_a_record_is_still_a_checkpoint_error(tmp_path, model):
    ck = save_checkpoint(model, tmp_path / "ck", format="hf")
    (ck / FILES).unlink()
    path = ck / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError, match="unreadable safetensors file"):
        load_checkpoint(ck)
