"""The Llama 3 tokenizer against the published test vectors of llama-models, and the small
sentencepiece tokenizer behind the same interface."""

import re

import pytest

from l3_core.errors import TokenizerError
from l3_core.tokenizer import (
    SPECIAL_TOKENS,
    ChatFormat,
    Llama3Tokenizer,
    Message,
    SentencePieceTokenizer,
    Tokenizer,
    llama3_tokenizer_path,
    train_sentencepiece,
)
from l3_core.tokenizer.llama3 import _split_long_runs


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_file(llama3_tokenizer_path())


def test_vocabulary_is_128000_ranks_plus_256_specials_at_official_ids(tok):
    assert isinstance(tok, Llama3Tokenizer)
    assert tok.n_words == 128256
    assert tok.special_tokens["<|begin_of_text|>"] == 128000
    assert tok.special_tokens["<|eot_id|>"] == 128009
    assert tok.special_tokens["<|python_tag|>"] == 128010
    assert tok.special_tokens["<|reserved_special_token_245|>"] == 128255
    assert len(SPECIAL_TOKENS) == 256


def test_encode_and_decode_reproduce_llama_models_test_vectors(tok):
    ids = tok.encode("This is a test sentence.", bos=True, eos=True)
    assert ids == [128000, 2028, 374, 264, 1296, 11914, 13, 128001]
    assert tok.decode(ids) == "<|begin_of_text|>This is a test sentence.<|end_of_text|>"


def test_chat_format_reproduces_llama_models_test_vectors(tok):
    chat = ChatFormat(tok)
    assert chat.encode_message(Message("user", "This is a test sentence.")) == [
        128006,
        882,
        128007,
        271,
        2028,
        374,
        264,
        1296,
        11914,
        13,
        128009,
    ]
    prompt = chat.encode_dialog_prompt(
        [Message("system", "This is a test sentence."), Message("user", "This is a response.")]
    )
    assert prompt == [
        128000,
        128006,
        9125,
        128007,
        271,
        2028,
        374,
        264,
        1296,
        11914,
        13,
        128009,
        128006,
        882,
        128007,
        271,
        2028,
        374,
        264,
        2077,
        13,
        128009,
        128006,
        78191,
        128007,
        271,
    ]


def test_tool_call_message_uses_python_tag_and_eom(tok):
    ids = ChatFormat(tok).encode_message(Message("assistant", "print(1)", tool_call=True))
    assert ids[4] == tok.special_tokens["<|python_tag|>"]
    assert ids[-1] == tok.eom_id
    ipython = ChatFormat(tok).encode_message(Message("ipython", "1"))
    assert tok.decode(ipython).startswith("<|start_header_id|>ipython<|end_header_id|>")


def test_special_token_strings_are_text_unless_allowed(tok):
    text = "a <|eot_id|> b"
    as_text = tok.encode(text, bos=False, eos=False)
    assert tok.eot_id not in as_text
    assert tok.decode(as_text) == text
    allowed = tok.encode(text, bos=False, eos=False, allowed_special={"<|eot_id|>"})
    assert tok.eot_id in allowed
    with pytest.raises(TokenizerError, match="does not have"):
        tok.encode(text, bos=False, eos=False, allowed_special={"<|nope|>"})


def test_very_long_inputs_are_chunked_like_the_reference(tok):
    text = "x" * 60_000 + " " * 30_000 + "hello world " * 100
    pieces = list(_split_long_runs(text, 25_000))
    assert "".join(pieces) == text and len(pieces) > 3
    assert not any(re.search(r"\S{25001}|\s{25001}", p) for p in pieces)
    expected = [
        t for p in pieces for t in tok.model.encode(p, allowed_special=set(), disallowed_special=())
    ]
    assert tok.encode(text, bos=False, eos=False) == expected
    assert tok.decode(expected) == text


def test_unicode_round_trip(tok):
    text = "Grüße, 世界! ¿Qué tal? 🦙\n\tdef f(x):\n        return x**2"
    assert tok.decode(tok.encode(text, bos=False, eos=False)) == text


def test_a_file_that_is_not_bpe_ranks_is_refused(tmp_path):
    bad = tmp_path / "tokenizer.model"
    bad.write_text("hello world\nthis is not a ranks file\n")
    with pytest.raises(TokenizerError, match="not a tokenizer file"):
        Tokenizer.from_file(bad)
    with pytest.raises(TokenizerError, match=r"tokenizer.model:1: not a BPE ranks file"):
        Llama3Tokenizer.from_file(bad)
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer.from_file(tmp_path / "missing.model")


def test_decoding_an_out_of_range_id_is_an_error(tok):
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode([128256])


@pytest.fixture(scope="module")
def spm(tmp_path_factory):
    pytest.importorskip("sentencepiece", reason="the small tokenizer needs l3-core[spm]")
    import inspect
    import json

    corpus = [inspect.getsource(json), inspect.getsource(pytest)] * 3
    out = tmp_path_factory.mktemp("spm") / "tokenizer.model"
    return train_sentencepiece(corpus, out, vocab_size=600)


def test_small_tokenizer_has_llama3_specials_after_its_pieces(spm):
    assert isinstance(spm, SentencePieceTokenizer)
    assert spm.n_words == 600 + 256
    assert spm.bos_id == 600 and spm.eot_id == 609
    loaded = Tokenizer.from_file(spm.path)
    assert isinstance(loaded, SentencePieceTokenizer) and loaded.n_words == spm.n_words


def test_small_tokenizer_round_trips_code_and_prose_exactly(spm):
    text = "def f(x):\n    return  x  * 2  # two spaces\n\n\tThe quick brown fox — 42."
    ids = spm.encode(text, bos=True, eos=True)
    assert ids[0] == spm.bos_id and ids[-1] == spm.eos_id
    assert spm.decode(ids[1:-1]) == text


def test_chat_format_works_over_the_small_tokenizer(spm):
    ids = ChatFormat(spm).encode_dialog_prompt([Message("user", "hi")])
    assert spm.decode(ids) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    allowed = spm.encode("x<|eot_id|>y", bos=False, eos=False, allowed_special="all")
    assert spm.eot_id in allowed
