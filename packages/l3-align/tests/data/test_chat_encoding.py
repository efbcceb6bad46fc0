"""Chat encoding: the Llama 3.1 format, assistant-only scoring, formatting masks, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from l3_align.data import ChatEncoder, RowError
from l3_align.data.rows import PreferenceRow, SFTRow
from l3_core.tokenizer import ChatFormat, Message


def _sft(*msgs):
    return SFTRow("f", 1, tuple(Message(*m) for m in msgs))


def test_sft_tokens_are_the_chat_format_and_only_assistant_turns_are_scored(tokenizer):
    enc = ChatEncoder(tokenizer, 512)
    row = _sft(
        ("user", "sort: 3 1"), ("assistant", "1 3"), ("user", "sort: 2 0"), ("assistant", "0 2")
    )
    seq = enc.encode_sft(row)
    chat = ChatFormat(tokenizer)
    want = chat.encode_dialog_prompt(list(row.messages), add_generation_prompt=False)
    assert seq.tokens.tolist() == want
    # scored tokens are exactly the two answers with their <|eot_id|>
    scored = seq.tokens[seq.scored].tolist()
    answer = lambda s: [*tokenizer.encode(s, bos=False, eos=False), tokenizer.eot_id]  # noqa: E731
    assert scored == answer("1 3") + answer("0 2")
    assert set(seq.tokens[seq.special].tolist()) <= set(tokenizer.special_tokens.values())
    assert seq.special[0] and not seq.special[seq.scored].all()


def test_tool_call_turn_scores_python_tag_and_eom(tokenizer):
    enc = ChatEncoder(tokenizer, 512)
    seq = enc.encode_sft(
        _sft(("user", "x"), ("assistant", "f()", True), ("ipython", "1"), ("assistant", "1"))
    )
    scored = seq.tokens[seq.scored].tolist()
    py, eom = tokenizer.special_tokens["<|python_tag|>"], tokenizer.eom_id
    assert scored[0] == py and eom in scored and scored[-1] == tokenizer.eot_id
    # the ipython turn is a prompt, not a target
    assert scored.count(eom) == 1 and len(scored) < int((~seq.special).sum())


def test_pair_shares_the_prompt_and_masks_formatting_tokens(tokenizer):
    enc = ChatEncoder(tokenizer, 512)
    row = PreferenceRow("f", 1, (Message("user", "sort: 2 1"),), "1 2", "2 1", edited="1  2")
    pair = enc.encode_pair(row, use_edited=False)
    prompt = ChatFormat(tokenizer).encode_dialog_prompt([Message("user", "sort: 2 1")])
    for seq, text in ((pair.chosen, "1 2"), (pair.rejected, "2 1")):
        assert seq.tokens[: len(prompt)].tolist() == prompt
        assert seq.tokens[seq.scored & ~seq.special].tolist() == tokenizer.encode(
            text, bos=False, eos=False
        )
        assert seq.tokens[seq.scored].tolist()[-1] == tokenizer.eot_id
    edited = enc.encode_pair(row, use_edited=True).chosen
    assert tokenizer.decode(edited.tokens[edited.scored & ~edited.special].tolist()) == "1  2"


def test_truncation_policies(tokenizer):
    row = _sft(("user", "sort: " + " ".join("7" * 40)), ("assistant", "1 2 3"))
    full = ChatEncoder(tokenizer, 10_000).encode_sft(row)
    n = len(full) - 5
    with pytest.raises(RowError, match="exceed the sequence length .* 'reject'"):
        ChatEncoder(tokenizer, n, "reject").encode_sft(row)
    end = ChatEncoder(tokenizer, n, "keep_end").encode_sft(row)
    assert len(end) == n and end.tokens[0] == tokenizer.bos_id
    np.testing.assert_array_equal(end.tokens[1:], full.tokens[6:])
    start = ChatEncoder(tokenizer, n, "keep_start").encode_sft(row)
    np.testing.assert_array_equal(start.tokens, full.tokens[:n])
    with pytest.raises(RowError, match="no assistant token left"):
        ChatEncoder(tokenizer, 20, "keep_start").encode_sft(row)


def test_pair_keep_end_drops_the_same_prompt_tokens_from_both(tokenizer):
    row = PreferenceRow("f", 1, (Message("user", "sort: " + "5 " * 30),), "1 2 3 4 5 6", "6 5")
    full = ChatEncoder(tokenizer, 10_000).encode_pair(row)
    n = len(full.chosen) + len(full.rejected) - 8
    with pytest.raises(RowError, match="exceed the sequence length"):
        ChatEncoder(tokenizer, n, "reject").encode_pair(row)
    pair = ChatEncoder(tokenizer, n, "keep_end").encode_pair(row)
    assert len(pair.chosen) == len(full.chosen) - 4
    assert len(pair.rejected) == len(full.rejected) - 4
    np.testing.assert_array_equal(pair.chosen.tokens[1:], full.chosen.tokens[5:])
    np.testing.assert_array_equal(pair.rejected.tokens[1:], full.rejected.tokens[5:])
    with pytest.raises(RowError, match="the responses alone"):
        ChatEncoder(tokenizer, 10, "keep_end").encode_pair(row)
    start = ChatEncoder(tokenizer, n, "keep_start").encode_pair(row)
    assert len(start.chosen) + len(start.rejected) <= n
    np.testing.assert_array_equal(start.rejected.tokens, full.rejected.tokens)


def test_unknown_truncation_is_a_config_error(tokenizer):
    from l3_core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.truncation = 'middle' is unknown"):
        ChatEncoder(tokenizer, 10, "middle")


def test_tokenizer_that_does_not_match_the_model_is_a_model_error(tokenizer):
    from l3_align.data import check_tokenizer_fits
    from l3_core.args import ModelArgs
    from l3_core.errors import ModelFileError

    check_tokenizer_fits(tokenizer, ModelArgs(vocab_size=tokenizer.n_words), "m")
    for vocab in (tokenizer.n_words - 1, 128256):
        with pytest.raises(ModelFileError, match=f"vocab_size is {vocab}: it is not this model"):
            check_tokenizer_fits(tokenizer, ModelArgs(vocab_size=vocab), "m")
