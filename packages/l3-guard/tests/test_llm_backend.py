"""The LLM backend with tiny models saved through l3-core.

A "programmed" model (attention and MLP outputs zeroed, one-hot embeddings, an output matrix
that maps each token of a chain to the next) answers a chosen text with a chosen first-token
probability, so both the score and the parsed answer have closed-form expectations.
"""

from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch", reason="the LLM backend needs the llm extra (torch)")

from l3_core import ModelArgs, Transformer, save_checkpoint  # noqa: E402
from l3_core.tokenizer import train_sentencepiece  # noqa: E402
from l3_guard.errors import GuardInputError  # noqa: E402
from l3_guard.llama_guard_format import build_prompt  # noqa: E402
from l3_guard.llm_backend import Int8Linear, LlamaGuardLLM, quantize_int8  # noqa: E402
from l3_guard.taxonomy import Category, Taxonomy  # noqa: E402

torch.set_num_threads(1)
DIM = 64


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    texts = ["safe unsafe S1 S2 S3 S10 unsafe\nS2 safe\nunsafe\nS1\n"] * 5 + [
        build_prompt("How do I bake bread?")
    ] * 3
    train_sentencepiece(texts, path, vocab_size=400)
    return path


@pytest.fixture(scope="module")
def tok(tok_path):
    from l3_core import Tokenizer

    return Tokenizer.from_file(tok_path)


def _args(tok, max_seq_len=2048):
    return ModelArgs(
        dim=DIM,
        n_layers=1,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tok.n_words,
        max_seq_len=max_seq_len,
        multiple_of=16,
    )


def logit_scale(tok) -> float:
    """What RMSNorm (with its eps) multiplies a one-hot row by."""
    return 1.0 / math.sqrt(1.0 / DIM + _args(tok).norm_eps)


def programmed(tok, answer: str, first_logit: float) -> Transformer:
    """A model whose greedy answer to any recipes-layout prompt is ``answer`` then <|eot_id|>,
    with logit ``first_logit`` (others 0) for the answer's first token."""
    torch.manual_seed(0)
    m = Transformer(_args(tok))
    last = tok.encode("<|end_header_id|>", bos=False, eos=False, allowed_special="all")[-1]
    chain = [last, *tok.encode(answer, bos=False, eos=False), tok.special_tokens["<|eot_id|>"]]
    assert len(set(chain[:-1])) == len(chain) - 1, "chain tokens must be distinct"
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.norm.weight.fill_(1.0)
        for i, (a, b) in enumerate(itertools.pairwise(chain)):
            m.tok_embeddings.weight[a, i] = 1.0
            m.output.weight[b, i] = (first_logit if i == 0 else 40.0) / logit_scale(tok)
    return m.eval()


def test_score_is_the_first_token_probability_and_the_answer_is_parsed(tok):
    x = 3.0
    guard = LlamaGuardLLM(programmed(tok, "unsafe\nS2", x), tok, layout="recipes", threshold=0.02)
    r = guard.moderate("Tell me how to go to the zoo and steal a llama.")
    expected = math.exp(x) / (math.exp(x) + tok.n_words - 1)
    assert r.score == pytest.approx(expected, rel=1e-4)
    assert guard.unsafe_id == tok.encode("unsafe\nS2", bos=False, eos=False)[0]
    assert (r.raw, r.malformed, r.categories) == ("unsafe\nS2", False, ["S2"])


def test_threshold_decides_and_categories_follow(tok):
    x = math.log(0.7 / 0.3 * (tok.n_words - 1))  # P(unsafe) = 0.7
    guard_lo = LlamaGuardLLM(programmed(tok, "unsafe\nS2", x), tok, layout="recipes", threshold=0.5)
    guard_hi = LlamaGuardLLM(programmed(tok, "unsafe\nS2", x), tok, layout="recipes", threshold=0.9)
    assert guard_lo.moderate("x").score == pytest.approx(0.7, rel=1e-4)
    assert guard_lo.moderate("x").label == "unsafe"
    hi = guard_hi.moderate("x")
    assert hi.label == "safe" and hi.categories == []


def test_safe_answer_is_safe(tok):
    guard = LlamaGuardLLM(programmed(tok, "safe", 40.0), tok, layout="recipes")
    r = guard.moderate([{"role": "user", "content": "hi"}, {"role": "agent", "content": "hello"}])
    assert (r.label, r.role, r.raw, r.malformed) == ("safe", "agent", "safe", False)
    assert r.score < 1e-6


def test_category_subset_and_custom_category_are_read_back_under_their_codes(tok):
    subset = Taxonomy.select(["S1", "S10"])
    guard = LlamaGuardLLM(
        programmed(tok, "unsafe\nS2", 40.0), tok, layout="recipes", taxonomy=subset
    )
    assert guard.moderate("x").categories == ["S10"]
    custom = Taxonomy([Category("PII", "Customer Data", "Leaking customer records.")])
    guard = LlamaGuardLLM(
        programmed(tok, "unsafe\nS1", 40.0),
        tok,
        layout="recipes",
        taxonomy=custom,
        with_descriptions=True,
    )
    assert "S1: Customer Data.\nLeaking customer records." in build_prompt(
        "x", custom, with_descriptions=True
    )
    assert guard.moderate("x").categories == ["PII"]
    guard = LlamaGuardLLM(
        programmed(tok, "unsafe\nS2", 40.0), tok, layout="recipes", taxonomy=custom
    )
    r = guard.moderate("x")  # S2 does not exist in a one-category policy
    assert r.label == "unsafe" and r.malformed and r.categories == []


def test_random_model_output_is_malformed_hence_unsafe_with_raw_kept(tok, tok_path, tmp_path):
    torch.manual_seed(1)
    save_checkpoint(Transformer(_args(tok)), tmp_path / "ckpt", format="hf")
    guard = LlamaGuardLLM.from_pretrained(
        tmp_path / "ckpt", tokenizer_path=tok_path, max_new_tokens=8
    )
    r = guard.moderate("How do I bake bread?")
    assert r.label == "unsafe" and r.malformed and r.raw is not None
    assert 0.0 < r.score < 1.0


def test_int8_weight_only_variant_keeps_the_score_close(tok, tok_path, tmp_path):
    torch.manual_seed(2)
    save_checkpoint(Transformer(_args(tok)), tmp_path / "ckpt", format="hf")
    fp = LlamaGuardLLM.from_pretrained(tmp_path / "ckpt", tokenizer_path=tok_path)
    q = LlamaGuardLLM.from_pretrained(tmp_path / "ckpt", tokenizer_path=tok_path, quantize=True)
    assert isinstance(q.model.output, Int8Linear) and q.model.output.weight_int8.dtype == torch.int8
    ids = fp.encode_prompt("How do I bake bread?")
    with torch.no_grad():
        a = fp.model(torch.tensor([ids]))[0, -1]
        b = q.model(torch.tensor([ids]))[0, -1]
    assert (a - b).abs().max() < 0.02 * a.abs().max()
    assert q.unsafe_probability(ids) == pytest.approx(fp.unsafe_probability(ids), rel=0.05)


def test_int8_quantisation_of_the_programmed_model_keeps_its_answer(tok):
    model = quantize_int8(programmed(tok, "unsafe\nS2", 3.0))
    r = LlamaGuardLLM(model, tok, layout="recipes", threshold=0.02).moderate("x")
    assert r.categories == ["S2"] and r.score == pytest.approx(
        math.exp(3) / (math.exp(3) + tok.n_words - 1), rel=0.02
    )


def test_prompt_longer_than_the_context_is_refused_not_truncated(tok):
    m = Transformer(_args(tok, max_seq_len=256))
    guard = LlamaGuardLLM(m, tok)
    with pytest.raises(GuardInputError, match="not truncated"):
        guard.moderate("word " * 500)
    r = guard.moderate_safe("word " * 500)
    assert r.label == "unsafe" and "not truncated" in r.error
