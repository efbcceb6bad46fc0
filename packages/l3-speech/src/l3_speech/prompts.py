"""System prompts that select the task (section 8.2) and the audio markers in the prompt.

The audio sits in the user turn between two reserved Llama 3 special tokens; one placeholder
token between them marks where the adapter's embeddings go.
"""

from __future__ import annotations

from l3_core.tokenizer import ChatFormat, Message, Tokenizer
from l3_speech.errors import SpeechConfigError

AUDIO_START = "<|reserved_special_token_10|>"
AUDIO_END = "<|reserved_special_token_11|>"
AUDIO_PLACEHOLDER = "<|reserved_special_token_12|>"

TASK_PROMPTS: dict[str, str] = {
    "asr": "Repeat after me in {language}:",
    "ast": "Translate the following sentence into {language}:",
    "dialog": "You are a helpful assistant. Answer the user's spoken question in {language}.",
}


def system_prompt(task: str, language: str = "English") -> str:
    try:
        return TASK_PROMPTS[task].format(language=language)
    except KeyError:
        raise SpeechConfigError(
            f"unknown task {task!r}; tasks: {', '.join(TASK_PROMPTS)}"
        ) from None


def prompt_ids(
    tokenizer: Tokenizer,
    task: str,
    language: str = "English",
    audio_region: list[int] | None = None,
) -> list[int]:
    """The prompt up to the assistant header; the user turn holds the audio markers around
    ``audio_region`` (default: the single placeholder)."""
    chat = ChatFormat(tokenizer)
    sp = tokenizer.special_tokens
    region = [sp[AUDIO_PLACEHOLDER]] if audio_region is None else audio_region
    return [
        tokenizer.bos_id,
        *chat.encode_message(Message(role="system", content=system_prompt(task, language))),
        *chat.encode_header("user"),
        sp[AUDIO_START],
        *region,
        sp[AUDIO_END],
        tokenizer.eot_id,
        *chat.encode_header("assistant"),
    ]


def placeholder_id(tokenizer: Tokenizer) -> int:
    return tokenizer.special_tokens[AUDIO_PLACEHOLDER]
