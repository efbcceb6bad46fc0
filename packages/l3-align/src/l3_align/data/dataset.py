"""Files of rows to encoded examples, every failure an exclusion with its file and line."""

from __future__ import annotations

import os
from dataclasses import dataclass

from l3_align.data.encode import ChatEncoder, EncodedPair, EncodedSequence
from l3_align.data.read import read_preference_rows, read_sft_rows
from l3_align.data.rows import RowError
from l3_core.jsonl import Exclusions


@dataclass(frozen=True)
class Encoded:
    """One usable row: where it came from and its encoding."""

    source: str
    line: int
    value: EncodedSequence | EncodedPair


def encode_sft_file(
    path: str | os.PathLike[str], encoder: ChatEncoder, exclusions: Exclusions
) -> list[Encoded]:
    out = []
    for row in read_sft_rows(path, exclusions):
        try:
            out.append(Encoded(row.source, row.line, encoder.encode_sft(row)))
        except RowError as e:
            exclusions.reject(row.source, row.line, str(e))
    return out


def encode_preference_file(
    path: str | os.PathLike[str],
    encoder: ChatEncoder,
    exclusions: Exclusions,
    use_edited: bool = True,
) -> list[Encoded]:
    out = []
    for row in read_preference_rows(path, exclusions):
        try:
            out.append(Encoded(row.source, row.line, encoder.encode_pair(row, use_edited)))
        except RowError as e:
            exclusions.reject(row.source, row.line, str(e))
    return out
