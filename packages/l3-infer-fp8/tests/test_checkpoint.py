"""Quantise at load from l3 / HF checkpoints; pre-quantised checkpoints round-trip bit for bit,
and a tampered or mismatched one is a QuantizedCheckpointError naming what is wrong."""

from __future__ import annotations

import json

import pytest
import torch

from l3_core import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.exit_codes import ExitCode
from l3_core.model import Transformer
from l3_infer_fp8.checkpoint import QUANT_CONFIG, load_model, load_quantized, save_quantized
from l3_infer_fp8.errors import QuantizedCheckpointError
from l3_infer_fp8.quant import FP8_DTYPE, Fp8RowwiseLinear, quantize_model, quantized_modules


def _model(seed: int = 0) -> Transformer:
    args = ModelArgs.from_preset("llama3-tiny", n_layers=4)
    return Transformer.build(args, dtype=torch.bfloat16, seed=seed).eval()


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.uint8) if t.dtype == FP8_DTYPE else t


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].dtype == sb[k].dtype and torch.equal(_bits(sa[k]), _bits(sb[k])) for k in sa
    )


@pytest.fixture
def saved(tmp_path):
    model = _model()
    quantize_model(model, bound=900, backend="emulated")
    tok = tmp_path / "tok.model"
    tok.write_bytes(b"ranks")
    return model, save_quantized(model, tmp_path / "q", tokenizer=tok)


def test_round_trip_is_bit_identical(saved):
    model, path = saved
    loaded = load_quantized(path, backend="emulated")
    assert _same_state(model, loaded)
    assert quantized_modules(loaded) == quantized_modules(model)
    assert all(m.bound == 900 for m in loaded.modules() if isinstance(m, Fp8RowwiseLinear))
    tokens = torch.arange(12)[None]
    with torch.no_grad():
        assert torch.equal(model(tokens), loaded(tokens))
    assert (path / "tokenizer.model").read_bytes() == b"ranks"


def test_config_names_format_skipped_modules_and_bound(saved):
    config = json.loads((saved[1] / QUANT_CONFIG).read_text())
    assert config["format"] == "l3-fp8-rowwise" and config["activation_scale_ub"] == 900
    assert config["skipped_layers"] == [0, 3]
    assert config["skipped_modules"] == [
        f"layers.{i}.feed_forward.{p}" for i in (0, 3) for p in ("w1", "w3", "w2")
    ]
    assert config["quantized_modules"] == [
        f"layers.{i}.feed_forward.{p}" for i in (1, 2) for p in ("w1", "w3", "w2")
    ]


@pytest.mark.parametrize("fmt", ["l3", "hf"])
def test_quantise_at_load_equals_quantising_the_loaded_model(tmp_path, fmt):
    path = save_checkpoint(_model(seed=2), tmp_path / fmt, format=fmt)
    plain = load_model(path)
    assert quantized_modules(plain) == []
    fp8 = load_model(path, fp8=True, backend="emulated")
    quantize_model(plain, backend="emulated")
    assert _same_state(plain, fp8)


def test_a_pre_quantised_checkpoint_refuses_a_second_recipe(saved):
    from l3_infer_fp8.quant import Fp8Recipe

    with pytest.raises(QuantizedCheckpointError, match="already quantised"):
        load_model(saved[1], fp8=True, recipe=Fp8Recipe(bound=10))
    assert quantized_modules(load_model(saved[1])) != []


def test_a_changed_byte_is_detected(saved):
    weights = saved[1] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(
        QuantizedCheckpointError, match=r"model.safetensors: sha256 .* changed after"
    ):
        load_quantized(saved[1])
    assert QuantizedCheckpointError("x").exit_code == ExitCode.MODEL


def _edit_config(path, **changes):
    file = path / QUANT_CONFIG
    config = json.loads(file.read_text())
    config.update(changes)
    file.write_text(json.dumps(config))
    return config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "fbgemm"}, "key 'format' is 'fbgemm', expected 'l3-fp8-rowwise'"),
        ({"activation_scale_ub": -1}, "key 'activation_scale_ub' is -1"),
        ({"quantized_modules": "all"}, "key 'quantized_modules' is 'all', expected a list of str"),
        ({"quantized_modules": ["layers.1.attention.wq"]}, "'layers.1.attention.wq' is not an FFN"),
        (
            {"quantized_modules": ["layers.0.feed_forward.w1"]},
            r"missing \['layers.0.feed_forward.w1.weight_scale'\]",
        ),
        (
            {"quantized_modules": ["layers.1.feed_forward.w1"]},
            "unexpected .*layers.1.feed_forward.w2.weight_scale",
        ),
        ({"files": {"other.safetensors": "0"}}, "differ from those in"),
    ],
)
def test_mismatched_config_is_a_named_error(saved, change, message):
    _edit_config(saved[1], **change)
    with pytest.raises(QuantizedCheckpointError, match=message):
        load_quantized(saved[1])


@pytest.mark.parametrize(
    ("tensor", "value", "message"),
    [
        (
            "layers.1.feed_forward.w1.weight",
            torch.zeros(192, 64, dtype=torch.bfloat16),
            "'layers.1.feed_forward.w1.weight' is torch.bfloat16 .*expected torch.float8_e4m3fn",
        ),
        (
            "layers.2.feed_forward.w2.weight_scale",
            torch.zeros(64, 1),
            "'layers.2.feed_forward.w2.weight_scale' has non-finite or non-positive scales",
        ),
        (
            "layers.0.feed_forward.w1.weight",
            torch.zeros(192, 64, dtype=FP8_DTYPE),
            "'layers.0.feed_forward.w1.weight' is torch.float8_e4m3fn .*expected a non-fp8 dtype",
        ),
    ],
)
def test_tensors_that_disagree_with_the_config_are_named(saved, tensor, value, message):
    from safetensors.torch import load_file, save_file

    from l3_infer_fp8.checkpoint import file_sha256

    weights = saved[1] / "model.safetensors"
    state = load_file(weights)
    state[tensor] = value
    save_file(state, weights)  # re-hashed below: a consistent file that disagrees with its config
    _edit_config(saved[1], files={"model.safetensors": file_sha256(weights)})
    with pytest.raises(QuantizedCheckpointError, match=message):
        load_quantized(saved[1])


def test_invalid_json_names_the_file(saved):
    (saved[1] / QUANT_CONFIG).write_text("{")
    with pytest.raises(QuantizedCheckpointError, match=r"quantization_config.json: not valid JSON"):
        load_quantized(saved[1])


def test_saving_an_unquantised_model_is_refused(tmp_path):
    with pytest.raises(QuantizedCheckpointError, match="no FP8 modules"):
        save_quantized(_model(), tmp_path / "q")
