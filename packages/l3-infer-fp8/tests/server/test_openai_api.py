"""The OpenAI API over real HTTP on 127.0.0.1 with the official client: results equal the
engine's, streaming equals non-streaming, concurrency changes nothing, bad requests are 400
naming the field, metrics are Prometheus text."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from infer_helpers import make_engine

from l3_core.tokenizer import ChatFormat, Message
from l3_infer_fp8.engine import SamplingParams

openai = pytest.importorskip("openai", reason="the API tests use the official client")


def _reference_text(chat_model, tokenizer, prompt_ids, max_tokens):
    engine = make_engine(chat_model, tokenizer)
    rid = engine.add_request(prompt_ids, SamplingParams(max_tokens=max_tokens))
    text = ""
    while engine.has_unfinished():
        text += "".join(o.new_text for o in engine.step() if o.request_id == rid)
    return text


def test_models_lists_the_served_id(served):
    assert [m.id for m in served.client.models.list().data] == ["tiny"]


def test_completion_equals_the_engine_and_streams_the_same(served, chat_model, tokenizer):
    prompt = "Hello world, how"
    want = _reference_text(chat_model, tokenizer, tokenizer.encode(prompt, bos=True, eos=False), 12)
    got = served.client.completions.create(
        model="tiny", prompt=prompt, max_tokens=12, temperature=0
    )
    assert got.choices[0].text == want
    assert got.usage.completion_tokens <= 12 and got.choices[0].finish_reason in ("stop", "length")
    streamed = served.client.completions.create(
        model="tiny", prompt=prompt, max_tokens=12, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == want


def test_chat_uses_the_llama31_template_and_concurrency_changes_nothing(
    served, chat_model, tokenizer
):
    questions = [f"question {i}: how are you today?" * (1 + i % 3) for i in range(8)]
    fmt = ChatFormat(tokenizer)
    want = [
        _reference_text(chat_model, tokenizer, fmt.encode_dialog_prompt([Message("user", q)]), 10)
        for q in questions
    ]

    def ask(q):
        r = served.client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": q}], max_tokens=10, temperature=0
        )
        return r.choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(ask, questions)) == want
    stream = served.client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": questions[0]}],
        max_tokens=10,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == want[0]


def test_seeded_samples_and_logprobs(served):
    kw = dict(
        model="tiny",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=6,
        temperature=1.0,
        seed=7,
        n=2,
        logprobs=True,
        top_logprobs=2,
    )
    a = served.client.chat.completions.create(**kw)
    b = served.client.chat.completions.create(**kw)
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    lp = a.choices[0].logprobs.content
    assert 1 <= len(lp) <= 6
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in lp)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "hi"}, "model"),
        ({"model": "tiny", "prompt": "hi", "max_tokens": "5"}, "max_tokens"),
        ({"model": "tiny", "prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"model": "tiny", "prompt": "hi", "temperature": -1}, "temperature"),
        ({"model": "other", "prompt": "hi"}, "model"),
        ({"model": "tiny", "prompt": [1] * 600}, "prompt"),
        ({"model": "tiny"}, "prompt"),
    ],
)
def test_bad_completion_requests_are_400_naming_the_field(served, body, param):
    r = httpx.post(served.server.base_url + "/v1/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert param in r.json()["error"]["message"]


def test_bad_chat_requests_name_the_field(served):
    with pytest.raises(openai.BadRequestError) as e:
        served.client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x " * 700}], max_tokens=5
        )
    assert e.value.body["param"] == "messages"
    r = httpx.post(
        served.server.base_url + "/v1/chat/completions",
        timeout=60,
        json={"model": "tiny", "messages": [{"role": "robot", "content": "x"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages.0.role"


def test_metrics_are_prometheus_text(served):
    served.client.completions.create(model="tiny", prompt="hello", max_tokens=3, temperature=0)
    text = httpx.get(served.server.base_url + "/metrics", timeout=60).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["l3_infer_generated_tokens_total"] >= 3
    assert values["l3_infer_kv_blocks_total"] == 256
    assert {
        "l3_infer_tokens_per_second",
        "l3_infer_requests_running",
        "l3_infer_requests_waiting",
        "l3_infer_kv_blocks_used",
    } <= set(values)
    assert "# TYPE l3_infer_generated_tokens_total counter" in text
