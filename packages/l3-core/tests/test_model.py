"""Behaviour of the plain model: document masking, meta-device build, generation, bad input."""

import pytest
import torch

from l3_core import InputError, ModelArgs, Transformer, generate
from l3_core.model import document_ids_from_lengths, document_positions

TINY = ModelArgs.from_preset("llama3-tiny")


@pytest.fixture(scope="module")
def model():
    return Transformer.build(TINY, seed=1).eval()


def test_packed_documents_match_each_document_run_alone(model):
    lengths = [5, 11, 1, 15]
    docs = [torch.randint(0, TINY.vocab_size, (1, n)) for n in lengths]
    packed = torch.cat(docs, dim=1)
    doc_ids = document_ids_from_lengths([lengths])
    with torch.no_grad():
        got = model(packed, document_ids=doc_ids)
        alone = torch.cat([model(d) for d in docs], dim=1)
    torch.testing.assert_close(got, alone, atol=1e-6, rtol=1e-6)


def test_without_document_ids_attention_crosses_documents(model):
    docs = [torch.randint(0, TINY.vocab_size, (1, n)) for n in (6, 6)]
    packed = torch.cat(docs, dim=1)
    with torch.no_grad():
        crossing = model(packed)[:, 6:]
        alone = model(docs[1])
    assert not torch.allclose(crossing, alone, atol=1e-4)


def test_positions_restart_at_each_document():
    ids = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2]])
    assert document_positions(ids).tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]


def test_405b_preset_builds_on_meta_without_memory():
    with torch.device("meta"):
        big = Transformer(ModelArgs.from_preset("llama3.1-405b"))
    assert big.num_params() == ModelArgs.from_preset("llama3.1-405b").num_params()
    assert big.layers[0].feed_forward.w13.weight.is_meta


def test_meta_build_then_init_is_deterministic():
    a = Transformer.build(TINY, seed=3)
    b = Transformer.build(TINY, seed=3)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert a.layers[1].attention.wo.weight.std() < a.layers[0].attention.wqkv.weight.std()


def test_state_dict_names_fused_weights_separately_and_round_trips():
    model = Transformer.build(TINY, seed=4)
    state = model.state_dict()
    assert "layers.0.attention.wk.weight" in state and "layers.0.feed_forward.w3.weight" in state
    assert not any("wqkv" in k or "w13" in k for k in state)
    assert state["layers.0.attention.wk.weight"].shape == (TINY.kv_heads * TINY.head_dim, TINY.dim)
    other = Transformer.build(TINY, seed=5)
    other.load_state_dict(state)
    assert torch.equal(other.layers[1].feed_forward.w13.weight, model.layers[1].feed_forward.w13.weight)


def test_greedy_kv_cache_decoding_matches_full_forward(model):
    prompt = torch.randint(0, TINY.vocab_size, (12,)).tolist()
    new = generate(model, [prompt], max_new_tokens=10)[0]
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(10):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert new == seq[len(prompt):]


def test_batched_prompts_of_different_lengths_decode_as_alone(model):
    prompts = [torch.randint(0, TINY.vocab_size, (n,)).tolist() for n in (3, 9, 5)]
    batched = generate(model, prompts, max_new_tokens=6)
    alone = [generate(model, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == alone


def test_generation_stops_at_stop_token(model):
    prompt = [1, 2, 3]
    free = generate(model, [prompt], max_new_tokens=8)[0]
    stop = free[2]
    stopped = generate(model, [prompt], max_new_tokens=8, stop_tokens={stop})[0]
    assert stopped == free[: free.index(stop) + 1]


def test_sampling_is_reproducible_with_a_seed_and_respects_top_p(model):
    p = [[5, 6, 7]]
    a = generate(model, p, 8, temperature=1.0, top_p=0.9, seed=7)
    b = generate(model, p, 8, temperature=1.0, top_p=0.9, seed=7)
    assert a == b
    greedy = generate(model, p, 8)
    tiny_p = generate(model, p, 8, temperature=1.0, top_p=1e-6, seed=1)
    assert tiny_p == greedy  # top-p that keeps one token is greedy


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (torch.zeros(1, 0, dtype=torch.long), "empty"),
        (torch.zeros(1, TINY.max_seq_len + 1, dtype=torch.long), "exceeds max_seq_len"),
        (torch.full((1, 4), TINY.vocab_size), "outside the vocabulary"),
        (torch.zeros(4, dtype=torch.long), "integer tensor"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(model, tokens, message):
    with pytest.raises(InputError, match=message):
        model(tokens)


def test_generate_refuses_an_empty_prompt(model):
    with pytest.raises(InputError, match="non-empty"):
        generate(model, [[]], 4)
