"""Per-request sampling: processors against closed forms, seeded draws reproducible whatever
shares the batch, and bad fields named."""

from __future__ import annotations

import math

import pytest
import torch

from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.sampling import process_logits
from l3_infer_fp8.errors import InvalidRequestError


def test_penalties_follow_openai_definition():
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0])
    p = SamplingParams(frequency_penalty=0.5, presence_penalty=0.25)
    out = process_logits(logits, p, {1: 3, 3: 1})
    assert out.tolist() == [1.0, 2.0 - 1.5 - 0.25, 3.0, 4.0 - 0.5 - 0.25]


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([0.1, 0.4, 0.2, 0.3]))
    k2 = process_logits(logits, SamplingParams(temperature=1.0, top_k=2), {})
    assert torch.isinf(k2).tolist() == [True, False, True, False]
    p = process_logits(logits, SamplingParams(temperature=1.0, top_p=0.65), {})
    # 0.4 + 0.3 = 0.7 >= 0.65: the smallest such set is {1, 3}
    assert torch.isinf(p).tolist() == [True, False, True, False]
    t = process_logits(logits, SamplingParams(temperature=0.5), {})
    assert torch.allclose(t.softmax(-1), torch.tensor([0.1, 0.4, 0.2, 0.3]) ** 2 / 0.3)


def test_seeded_requests_reproduce_whatever_shares_the_batch(model):
    sp = SamplingParams(max_tokens=10, temperature=1.0, top_p=0.9, top_k=50, seed=1234)
    alone = Engine(model, EngineConfig(num_blocks=32)).generate([[3, 4, 5]], sp)[0]
    crowd = Engine(model, EngineConfig(num_blocks=64)).generate(
        [[9] * 20, [3, 4, 5], [7, 7]],
        [SamplingParams(max_tokens=7, temperature=0.8, seed=5), sp, SamplingParams(max_tokens=3)],
    )
    assert crowd[1] == alone
    other = Engine(model, EngineConfig(num_blocks=32)).generate(
        [[3, 4, 5]], SamplingParams(max_tokens=10, temperature=1.0, seed=99)
    )[0]
    assert other != alone


def test_top_k_one_is_greedy_and_logprobs_are_the_models(model):
    greedy = Engine(model).generate([[1, 2, 3]], SamplingParams(max_tokens=6))[0]
    engine = Engine(model)
    rid = engine.add_request(
        [1, 2, 3], SamplingParams(max_tokens=6, temperature=2.0, top_k=1, logprobs=3)
    )
    outs = []
    while engine.has_unfinished():
        outs += [o for o in engine.step() if o.request_id == rid]
    assert [t for o in outs for t in o.new_token_ids] == greedy
    first = outs[0].new_logprobs[0]
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([[1, 2, 3]]))[0, -1].float(), -1)
    assert math.isclose(first.logprob, float(ref[greedy[0]]), abs_tol=1e-4)
    assert next(iter(first.top)) == greedy[0] and len(first.top) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 0),
        ("temperature", -1.0),
        ("top_p", 0.0),
        ("top_k", -2),
        ("frequency_penalty", 3.0),
        ("logprobs", 21),
    ],
)
def test_bad_fields_are_named(model, field, value):
    with pytest.raises(InvalidRequestError, match=f"field '{field}'") as e:
        Engine(model).add_request([1], SamplingParams(**{field: value}))
    assert e.value.field == field


def test_prompt_longer_than_the_context_is_refused(model):
    with pytest.raises(InvalidRequestError, match="field 'prompt' has 512 tokens") as e:
        Engine(model).add_request([1] * 512, SamplingParams())
    assert e.value.field == "prompt"
    with pytest.raises(InvalidRequestError, match="outside the vocabulary"):
        Engine(model).add_request([512], SamplingParams())
