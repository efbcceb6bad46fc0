"""The kernels switch: the whole model with kernels equals the plain model (values, gradients,
training steps), keeps its parameters and names, and leaves wrapped projections to their modules."""

import pytest
import torch
import torch.nn.functional as F

from l3_core import InputError, ModelArgs, Transformer, generate, kernels
from l3_core.model import Attention, FeedForward, RMSNorm

ARGS = ModelArgs.from_preset("llama3-tiny")


def _pair(dtype=torch.float64, seed=0):
    plain = Transformer.build(ARGS, seed=seed).to(dtype)
    fast = kernels.apply(Transformer.build(ARGS, seed=seed).to(dtype), "cpu")
    return plain, fast


def test_apply_keeps_parameters_and_state_dict_and_remove_restores_the_classes():
    model = Transformer.build(ARGS, seed=1)
    before = {k: v.data_ptr() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    kernels.apply(model, "cpu")
    assert kernels.active(model) == "cpu"
    assert isinstance(model.layers[0].attention, Attention)
    assert type(model.layers[0].attention) is not Attention
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == before
    assert all(a is b for a, b in zip(model.parameters(), params))
    kernels.remove(model)
    assert kernels.active(model) is None
    assert type(model) is Transformer and type(model.layers[1].feed_forward) is FeedForward
    assert type(model.norm) is RMSNorm


def test_unknown_backend_is_refused():
    with pytest.raises(InputError, match="unknown kernels backend 'tpu'"):
        kernels.apply(Transformer.build(ARGS), "tpu")


def test_for_device_turns_on_the_cpu_kernels_for_a_cpu_model():
    model = Transformer.build(ARGS)
    assert kernels.for_device(model) == "cpu" and kernels.active(model) == "cpu"
    with torch.device("meta"):
        meta = Transformer(ARGS)
    assert kernels.for_device(meta) is None and kernels.active(meta) is None


@pytest.mark.parametrize("document_mask", [False, True])
def test_logits_and_every_gradient_equal_the_plain_model_in_float64(document_mask):
    plain, fast = _pair()
    tokens = torch.randint(0, ARGS.vocab_size, (2, 100))
    docs = torch.tensor([[0] * 30 + [1] * 70, [0] * 100]) if document_mask else None
    results = []
    for model in (plain, fast):
        logits = model(tokens, docs)
        F.cross_entropy(logits.flatten(0, 1), tokens.roll(-1, 1).flatten()).backward()
        results.append((logits, {n: p.grad for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-10, atol=1e-12, msg=name)


def test_bfloat16_logits_agree_with_the_plain_model_to_rounding():
    plain, fast = _pair(torch.bfloat16)
    tokens = torch.randint(0, ARGS.vocab_size, (2, 80))
    with torch.no_grad():
        diff = (fast(tokens).float() - plain(tokens).float()).abs()
    assert diff.max() < 0.05 and diff.mean() < 5e-3


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimizer_steps_train_the_plain_parameters_as_the_plain_model(optimizer):
    plain, fast = _pair()
    make = (
        (lambda p: torch.optim.SGD(p, lr=0.5))
        if optimizer == "sgd"
        else (lambda p: torch.optim.AdamW(p, lr=1e-2))
    )
    opts = [make(m.parameters()) for m in (plain, fast)]
    for step in range(3):
        tokens = torch.randint(
            0, ARGS.vocab_size, (2, 48), generator=torch.Generator().manual_seed(step)
        )
        targets = tokens.roll(-1, 1)
        for model, opt in zip((plain, fast), opts):
            with torch.no_grad():
                model(tokens)  # an evaluation between steps keeps stacked copies: must not go stale
            opt.zero_grad()
            model.loss(tokens, targets).backward()
            opt.step()
    for (name, p), q in zip(plain.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-11, msg=name)
    tokens = torch.randint(0, ARGS.vocab_size, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(fast(tokens), plain(tokens), rtol=1e-10, atol=1e-10)


class _Amplified(torch.nn.Linear):
    """A wrapped projection (as an adapter or a quantised layer would be)."""

    def forward(self, x):
        return 100 * super().forward(x)


@pytest.mark.parametrize(
    "path", ["attention.wk", "attention.wo", "feed_forward.w3", "feed_forward.w2"]
)
def test_wrapped_projections_run_through_their_modules_with_kernels_on(path):
    plain, fast = _pair()
    for model in (plain, fast):
        owner, name = path.split(".")
        parent = getattr(model.layers[1], owner)
        old = getattr(parent, name)
        wrapped = _Amplified(old.in_features, old.out_features, bias=False).double()
        wrapped.weight = old.weight
        setattr(parent, name, wrapped)
    kernels.apply(fast, "cpu")  # again, now that the structure is final
    tokens = torch.randint(0, ARGS.vocab_size, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(fast(tokens), plain(tokens), rtol=1e-10, atol=1e-10)
    assert generate(fast, [[1, 2, 3]], 6) == generate(plain, [[1, 2, 3]], 6)


def test_a_subclass_with_a_layer_hook_keeps_its_hook_in_generation_with_kernels():
    class Hooked(Transformer):
        def layer_forward(self, i, layer, h, *rest):
            self.calls += 1
            return super().layer_forward(i, layer, h, *rest)

    model = Hooked.build(ARGS, seed=0).eval()
    model.calls = 0
    plain = generate(model, [[4, 5, 6]], 5)
    kernels.apply(model, "cpu")
    assert type(model).__name__ == "Hooked[cpu]"
    model.calls = 0
    assert generate(model, [[4, 5, 6]], 5) == plain
    assert model.calls == 5 * ARGS.n_layers  # prefill and 4 steps, each through every block
