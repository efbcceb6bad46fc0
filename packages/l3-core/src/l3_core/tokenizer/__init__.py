"""Tokenizers: the official Llama 3 tiktoken BPE, a small trainable sentencepiece BPE, and
the Llama 3.1 chat format over either."""

from l3_core.tokenizer.base import Tokenizer
from l3_core.tokenizer.chat import ChatFormat, Message
from l3_core.tokenizer.llama3 import Llama3Tokenizer
from l3_core.tokenizer.resources import llama3_tokenizer_path
from l3_core.tokenizer.sentencepiece_bpe import SentencePieceTokenizer, train_sentencepiece
from l3_core.tokenizer.special import SPECIAL_TOKENS

__all__ = [
    "SPECIAL_TOKENS",
    "ChatFormat",
    "Llama3Tokenizer",
    "Message",
    "SentencePieceTokenizer",
    "Tokenizer",
    "llama3_tokenizer_path",
    "train_sentencepiece",
]
