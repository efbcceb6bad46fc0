"""The tokenizers on arbitrary unicode: decode(encode(text)) == text, and decoding any ids gives
text or a TokenizerError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_core.errors import TokenizerError
from l3_core.tokenizer import SPECIAL_TOKENS, Tokenizer, llama3_tokenizer_path, train_sentencepiece

FUZZ = settings(max_examples=100, deadline=None)

# any code point but lone surrogates (a str holding one cannot be encoded as UTF-8 at all),
# mixed with the special tokens' own strings, which must stay plain text
TEXT = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
        st.sampled_from(SPECIAL_TOKENS[:12]),
        st.sampled_from([" ", "\n\n", "\t", "  x", "\r\n", "0123456789" * 3, "\u00e9\u0301"]),
    ),
    max_size=6,
).map("".join)


@pytest.fixture(scope="module")
def llama3():
    return Tokenizer.from_file(llama3_tokenizer_path())


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    pytest.importorskip("sentencepiece", reason="the small tokenizer needs l3-core[spm]")
    corpus = ["def f(x):\n    return x + 1\n", "The quick brown fox jumps over the lazy dog."] * 30
    return train_sentencepiece(corpus, tmp_path_factory.mktemp("spm") / "t.model", vocab_size=300)


@FUZZ
@given(TEXT)
def test_llama3_round_trips_any_text(llama3, text):
    ids = llama3.encode(text, bos=False, eos=False)
    assert all(0 <= i < 128000 for i in ids)  # special strings in text are not special ids
    assert llama3.decode(ids) == text


@FUZZ
@given(TEXT)
def test_small_bpe_round_trips_any_text(bpe, text):
    ids = bpe.encode(text, bos=True, eos=False)
    assert ids[0] == bpe.bos_id
    assert bpe.decode(ids[1:]) == text


@FUZZ
@given(st.lists(st.integers(-(2**40), 2**40) | st.integers(0, 128300), max_size=20))
def test_decoding_any_ids_gives_text_or_a_tokenizer_error(llama3, bpe, ids):
    for tok in (llama3, bpe):
        with contextlib.suppress(TokenizerError):
            assert isinstance(tok.decode(ids), str)
