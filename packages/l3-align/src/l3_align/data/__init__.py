"""Rows, validation, chat encoding with loss and formatting masks, and packing."""

from l3_align.data.dataset import Encoded, encode_preference_file, encode_sft_file
from l3_align.data.encode import (
    TRUNCATIONS,
    ChatEncoder,
    EncodedPair,
    EncodedSequence,
    check_tokenizer_fits,
)
from l3_align.data.packing import PackedRows, PackItem, pack, place_groups
from l3_align.data.read import read_preference_rows, read_rows, read_sft_rows
from l3_align.data.rows import PreferenceRow, RowError, SFTRow, parse_preference_row, parse_sft_row

__all__ = [
    "TRUNCATIONS",
    "ChatEncoder",
    "Encoded",
    "EncodedPair",
    "EncodedSequence",
    "PackItem",
    "PackedRows",
    "PreferenceRow",
    "RowError",
    "SFTRow",
    "check_tokenizer_fits",
    "encode_preference_file",
    "encode_sft_file",
    "pack",
    "parse_preference_row",
    "parse_sft_row",
    "place_groups",
    "read_preference_rows",
    "read_rows",
    "read_sft_rows",
]
