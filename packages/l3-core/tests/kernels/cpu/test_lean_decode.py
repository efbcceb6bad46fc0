"""The lean decoding step and its pre-packed weights against the plain model's forward pass."""

import pytest
import torch
import torch.nn.functional as F

from l3_core import ModelArgs, Transformer, generate, kernels
from l3_core.kernels.cpu import release
from l3_core.kernels.cpu.decode import DecodePlan, LeanDecoder, decode_step, projection_weights
from l3_core.kernels.cpu.packed_linear import packed_linear
from l3_core.model.attention import KVCache
from l3_core.model.decoding import DecodeLayout, ModuleDecoder

ARGS = ModelArgs.from_preset("llama3-tiny")


def _layout(b=1):
    return DecodeLayout(4, 8, torch.arange(4, 8).expand(b, 4), None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_generate_with_kernels_runs_the_lean_step_and_decodes_as_the_plain_model(dtype):
    plain = Transformer.build(ARGS, seed=2).eval().to(dtype)
    model = kernels.apply(Transformer.build(ARGS, seed=2).eval().to(dtype), "cpu")
    caches = model.kv_caches(1, 8)
    assert type(model.decoder(caches, _layout())) is LeanDecoder
    assert type(plain.decoder(plain.kv_caches(1, 8), _layout())) is ModuleDecoder
    # bfloat16 on the CPU: a float32 cache (no per-step conversion), values the bf16 ones.
    assert caches[0].k.dtype == torch.float32
    prompts = [[5, 6, 7, 8, 9, 10], [3, 1]]
    assert generate(model, prompts, 12) == generate(plain, prompts, 12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_step_logits_equal_the_forward_pass_over_the_whole_sequence(dtype):
    plain = Transformer.build(ARGS, seed=3).eval().to(dtype)
    model = kernels.apply(Transformer.build(ARGS, seed=3).eval().to(dtype), "cpu")
    prompts = [torch.randint(0, ARGS.vocab_size, (n,)).tolist() for n in (9, 4)]
    nxt = torch.randint(0, ARGS.vocab_size, (2,))
    longest, total = 9, 12
    pad = torch.tensor([0, 5])
    tokens = torch.zeros(2, longest, dtype=torch.long)
    for i, p in enumerate(prompts):
        tokens[i, longest - len(p) :] = torch.tensor(p)
    keys = torch.arange(longest)
    mask = (
        (keys[None, None, :] <= keys[None, :, None]) & (keys[None, None, :] >= pad[:, None, None])
    )[:, None]
    positions = (keys[None, :] - pad[:, None]).clamp(min=0)
    caches = [
        KVCache.empty(ARGS, 2, total, torch.float32, torch.device("cpu"))
        for _ in range(ARGS.n_layers)
    ]
    with torch.inference_mode():
        model.forward_hidden(model.tok_embeddings(tokens), positions, mask, caches, 0)
        cos, sin = model.rope.gather(torch.tensor([[longest]]) - pad[:, None], total)
        bias = torch.zeros(2, 1, 1, longest + 1).masked_fill_(
            torch.arange(longest + 1) < pad[:, None, None, None], float("-inf")
        )
        weights = projection_weights(model)
        plan = DecodePlan.of(model, weights, packed_linear(model, weights, 2))
        got = decode_step(
            plan, nxt, cos[:, 0].to(dtype), sin[:, 0].to(dtype), caches, longest, bias
        )
        for i, p in enumerate(prompts):
            ref = plain(torch.tensor([[*p, int(nxt[i])]]))[0, -1]
            tol = 1e-5 if dtype == torch.float32 else 0.1
            torch.testing.assert_close(got[i].float(), ref.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_products_equal_linear_and_follow_in_place_weight_updates(dtype):
    model = kernels.apply(Transformer.build(ARGS, seed=0).to(dtype), "cpu")
    weights = projection_weights(model)
    x = torch.randn(1, ARGS.dim, dtype=dtype)
    w = weights[0]
    with torch.no_grad():
        got = packed_linear(model, weights, 1)(x, w)
        if dtype == torch.bfloat16:
            assert torch.equal(got, F.linear(x, w))
        else:
            torch.testing.assert_close(got, F.linear(x, w), rtol=1e-5, atol=1e-6)
        w.mul_(-2.0)  # as an optimizer step would
        again = packed_linear(model, projection_weights(model), 1)(x, w)
    torch.testing.assert_close(again.float(), F.linear(x, w).float(), rtol=1e-2, atol=1e-2)
    assert not torch.allclose(again.float(), got.float())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_generation_after_a_training_step_uses_the_new_weights(optimizer):
    model = kernels.apply(Transformer.build(ARGS, seed=0), "cpu")
    prompt = [[5, 6, 7, 8]]
    generate(model, prompt, max_new_tokens=4)  # packs the weights
    params = model.parameters()
    opt = (
        torch.optim.SGD(params, lr=5.0) if optimizer == "sgd" else torch.optim.AdamW(params, lr=0.5)
    )
    tokens = torch.randint(0, ARGS.vocab_size, (2, 16))
    model.loss(tokens, torch.roll(tokens, -1, dims=1)).backward()
    opt.step()
    fresh = Transformer(ARGS)
    fresh.load_state_dict(model.state_dict())
    assert generate(model, prompt, max_new_tokens=8) == generate(fresh, prompt, max_new_tokens=8)


class _Amplified(torch.nn.Linear):
    """A wrapped projection (as an adapter or a quantised layer would be)."""

    def forward(self, x):
        return 100 * super().forward(x)


@pytest.mark.parametrize("name", ["w2", "w1"])
def test_models_with_wrapped_projections_decode_through_their_modules(name):
    model = Transformer.build(ARGS, seed=4).eval()
    old = getattr(model.layers[0].feed_forward, name)
    wrapped = _Amplified(old.in_features, old.out_features, bias=False)
    wrapped.weight = old.weight
    setattr(model.layers[0].feed_forward, name, wrapped)
    kernels.apply(model, "cpu")
    assert type(model.decoder([], _layout())) is ModuleDecoder
    prompt = [3, 1, 4, 1, 5]
    new = generate(model, [prompt], max_new_tokens=6)[0]
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(6):
            seq.append(int(kernels.remove(model)(torch.tensor([seq]))[0, -1].argmax()))
    kernels.apply(model, "cpu")
    assert new == seq[len(prompt) :]
    other = [2, 7]
    assert generate(model, [prompt, other], max_new_tokens=6) == [
        new,
        generate(model, [other], max_new_tokens=6)[0],
    ]


def test_release_drops_packs_after_writes_through_data():
    model = kernels.apply(Transformer.build(ARGS, seed=0), "cpu")
    prompt = [[5, 6, 7, 8]]
    generate(model, prompt, max_new_tokens=4)
    fresh = Transformer.build(ARGS, seed=9)
    for p, q in zip(model.parameters(), fresh.parameters()):
        p.data.copy_(q.data)  # invisible to version counters
    release(model)
    assert generate(model, prompt, max_new_tokens=8) == generate(fresh, prompt, max_new_tokens=8)


def test_weights_above_the_packing_budget_are_read_in_place(monkeypatch):
    import l3_core.kernels.cpu.packed_linear as packing

    model = kernels.apply(Transformer.build(ARGS, seed=0).to(torch.bfloat16), "cpu")
    weights = projection_weights(model)
    packing.release(model)
    assert packed_linear(model, weights, 1) is not F.linear
    packing.release(model)
    monkeypatch.setattr(packing, "MAX_PACKED_BYTES", sum(w.numel() * 2 for w in weights) - 1)
    assert packed_linear(model, weights, 1) is F.linear
