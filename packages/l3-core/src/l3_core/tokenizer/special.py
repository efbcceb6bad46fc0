"""The 256 Llama 3 special tokens, in their official order (ids follow the base vocabulary)."""

from __future__ import annotations

NUM_SPECIAL_TOKENS = 256

_NAMED = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",  # end of message: the model called a tool and waits for its output
    "<|eot_id|>",  # end of turn
    "<|python_tag|>",
    "<|image|>",
]

SPECIAL_TOKENS: list[str] = _NAMED + [
    f"<|reserved_special_token_{2 + i}|>" for i in range(NUM_SPECIAL_TOKENS - len(_NAMED))
]


def special_token_ids(base_vocab: int) -> dict[str, int]:
    """Map each special token to its id when the base vocabulary has ``base_vocab`` entries."""
    return {tok: base_vocab + i for i, tok in enumerate(SPECIAL_TOKENS)}
