"""quantize_model changes exactly the paper's modules, and the FP8 model stays close to bf16."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from l3_core.model import generate
from l3_infer_fp8.errors import InferConfigError, InferModelError
from l3_infer_fp8.quant import (
    Fp8RowwiseLinear,
    quantize_activation,
    quantize_model,
    quantized_modules,
)


def _ffn(i: int) -> list[str]:
    return [f"layers.{i}.feed_forward.{p}" for p in ("w1", "w3", "w2")]


def test_only_ffn_of_inner_blocks_change(model_factory):
    ref, model = model_factory(), model_factory()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replaced = quantize_model(model)
    assert replaced == _ffn(1) + _ffn(2)
    assert quantized_modules(model) == replaced
    after = model.state_dict()
    changed = {
        k
        for k in after
        if k not in before
        or after[k].dtype != before[k].dtype
        or not torch.equal(after[k], before[k])
    }
    expected = {f"{m}.{t}" for m in replaced for t in ("weight", "weight_scale")}
    assert changed == expected
    for name, module in model.named_modules():  # attention, embeddings, norms, head untouched
        if name not in replaced and isinstance(module, Fp8RowwiseLinear):
            pytest.fail(f"{name} was quantised")
    assert isinstance(model.layers[1].attention.wq, nn.Linear)
    assert type(model.tok_embeddings) is type(ref.tok_embeddings)


@pytest.mark.parametrize(("skip", "kept"), [((), []), ((-1,), [3]), ((0, 2), [0, 2])])
def test_skip_layers(model_factory, skip, kept):
    model = model_factory()
    replaced = quantize_model(model, skip_layers=skip)
    assert replaced == [n for i in range(4) if i not in kept for n in _ffn(i)]


def test_bad_skip_and_double_quantisation_are_named_errors(model_factory):
    with pytest.raises(InferConfigError, match="layer 4 is outside a model of 4 layers"):
        quantize_model(model_factory(), skip_layers=(4,))
    model = model_factory()
    quantize_model(model, skip_layers=())
    with pytest.raises(InferModelError, match="layers.0.feed_forward.w1 is Fp8RowwiseLinear"):
        quantize_model(model, skip_layers=())


def test_each_fp8_linear_within_the_quantisation_error_bound(model_factory):
    """|x W^T - fp8| <= (2^-4 + 2^-4 + 2^-4 * 2^-4) |x| |W|^T + bf16 rounding, per element."""
    model = model_factory()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 64, generator=g).bfloat16()
    lin = model.layers[1].feed_forward.w1
    q = Fp8RowwiseLinear.from_linear(lin, backend="emulated")
    exact = x.double() @ lin.weight.double().t()
    abs_dot = x.double().abs() @ lin.weight.double().abs().t()
    _, sx = quantize_activation(x)
    subnormal = 2.0**-10 * (
        sx.double() * lin.weight.double().abs().sum(1)
        + x.double().abs().sum(1, keepdim=True) * q.weight_scale.double().t()
    )
    bound = (2 * 2.0**-4 + 2.0**-8) * abs_dot + subnormal + 2.0**-7 * exact.abs()
    assert bool(((q(x).double() - exact).abs() <= bound).all())


def test_fp8_model_logits_close_to_bf16_and_generate_runs(model_factory):
    ref, model = model_factory(seed=1), model_factory(seed=1)
    quantize_model(model, backend="emulated")
    tokens = torch.randint(0, 512, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref(tokens).float(), model(tokens).float()
    assert bool(torch.isfinite(b).all())
    rel = float((a - b).norm() / a.norm())
    assert 0 < rel < 0.1, rel
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) > 0.8
    out = generate(model, [[1, 2, 3]], max_new_tokens=5)
    assert len(out[0]) == 5
