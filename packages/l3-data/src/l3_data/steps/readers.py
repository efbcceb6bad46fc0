"""Readers: JSONL (plain, gzip, zstd), Parquet and folders of text files, as document streams.

A reader never raises on a bad row: malformed JSON, a missing or non-string text field,
non-UTF-8 bytes, empty and oversized documents come out as :class:`BadRecord` with the file,
line and reason, and the executor writes them to the exclusion output. A reader raises only
when a whole input cannot be read (missing file, unknown format).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l3_core.jsonl import BadRow, iter_lines, parse_row
from l3_data.document import BadRecord, Document
from l3_data.errors import InputFormatError

Record = Document | BadRecord

# The start of l3_core.jsonl's reason for each kind of unreadable row -> the short code
# counted in the report (``read/rejected:<code>``).
_BAD_ROW_CODES = {
    "not UTF-8": "invalid_utf8",
    "invalid JSON": "malformed_json",
    "expected a JSON object": "not_an_object",
}


@dataclass(kw_only=True)
class InputSpec:
    """The ``[input]`` table of a pipeline file."""

    format: str = "jsonl"
    paths: list[str] = field(default_factory=list)
    text_key: str = "text"
    id_key: str = "id"
    source: str = ""
    max_chars: int = 1_000_000
    extensions: list[str] = field(default_factory=lambda: [".txt", ".md", ".rst", ".py"])

    def tasks(self) -> list[Path]:
        """The input files (or folders, for ``text``) in a stable order; one task each."""
        if self.format not in READERS:
            raise InputFormatError(
                f"input.format = {self.format!r}: expected one of {sorted(READERS)}"
            )
        found: list[Path] = []
        for pattern in self.paths:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputFormatError(f"input.paths: {pattern!r} matches no file")
            found.extend(Path(m) for m in matches)
        if not found:
            raise InputFormatError("input.paths is empty: name at least one file or glob")
        return list(dict.fromkeys(found))  # a file matched by two patterns is read once

    def read(self, path: Path, skip: int = 0) -> Iterator[tuple[int, Record]]:
        """``(record index, record)`` pairs of one task, starting at record ``skip``."""
        return READERS[self.format](self, path, skip)


def _row_to_record(spec: InputSpec, row: Any, path: Path, line: int, source: str) -> Record:
    where = str(path)
    if not isinstance(row, dict):
        return BadRecord(where, line, "not_an_object", f"row is a {type(row).__name__}", str(row))
    text = row.get(spec.text_key)
    if text is None:
        return BadRecord(
            where,
            line,
            "missing_text",
            f"no {spec.text_key!r} field",
            json.dumps(row, ensure_ascii=False)[:1000],
        )
    if not isinstance(text, str):
        return BadRecord(
            where,
            line,
            "text_not_string",
            f"{spec.text_key!r} is a {type(text).__name__}",
            str(text)[:1000],
        )
    if not text.strip():
        return BadRecord(where, line, "empty", "text is empty or whitespace", text)
    if len(text) > spec.max_chars:
        return BadRecord(
            where,
            line,
            "too_large",
            f"{len(text)} characters > max_chars {spec.max_chars}",
            text[:1000],
        )
    doc_id = row.get(spec.id_key)
    doc_id = f"{path.name}:{line}" if doc_id is None else str(doc_id)
    meta = {k: v for k, v in row.items() if k not in (spec.text_key, spec.id_key, "source")}
    return Document(text=text, id=doc_id, source=str(row.get("source") or source), metadata=meta)


def _source_name(spec: InputSpec, path: Path) -> str:
    if spec.source:
        return spec.source
    name = path.name
    for ext in (".gz", ".zst", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(ext)
    return name


def read_jsonl(spec: InputSpec, path: Path, skip: int = 0) -> Iterator[tuple[int, Record]]:
    """Rows of a plain, gzip or zstd JSONL file (by content); record ``i`` is line ``i + 1``.

    Lines before ``skip`` are not parsed (a resumed task skips them cheaply); a truncated or
    corrupt compressed file raises :class:`l3_core.errors.InputError` rather than ending early.
    """
    if not path.is_file():
        raise InputFormatError(f"{path}: input file not found")
    source = _source_name(spec, path)
    for line, raw in iter_lines(path):
        if line <= skip or not raw.strip():
            continue
        row = parse_row(raw, str(path), line)
        if isinstance(row, BadRow):
            yield line - 1, _bad_row(row, raw)
        else:
            yield line - 1, _row_to_record(spec, row, path, line, source)


def _bad_row(bad: BadRow, raw: bytes) -> BadRecord:
    code = next(
        (c for prefix, c in _BAD_ROW_CODES.items() if bad.reason.startswith(prefix)), "unreadable"
    )
    return BadRecord(bad.path, bad.line, code, bad.reason, raw.decode("utf-8", "replace"))


def read_parquet(spec: InputSpec, path: Path, skip: int = 0) -> Iterator[tuple[int, Record]]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InputFormatError(f"{path}: input file not found")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputFormatError(f"{path}: not a Parquet file: {e}") from None
    if spec.text_key not in pf.schema_arrow.names:
        raise InputFormatError(
            f"{path}: no column {spec.text_key!r} (columns: {pf.schema_arrow.names})"
        )
    source = _source_name(spec, path)
    i = 0
    batches = pf.iter_batches(batch_size=4096)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:  # a corrupt page or column chunk, found only when read
            raise InputFormatError(f"{path}: corrupt Parquet data after row {i}: {e}") from None
        if i + batch.num_rows <= skip:
            i += batch.num_rows
            continue
        for row in batch.to_pylist():
            if i >= skip:
                yield i, _row_to_record(spec, row, path, i + 1, source)
            i += 1


def read_text_folder(spec: InputSpec, path: Path, skip: int = 0) -> Iterator[tuple[int, Record]]:
    if not path.is_dir():
        raise InputFormatError(f"{path}: input.format = 'text' expects folders")
    exts = set(spec.extensions)
    files = sorted(p for p in path.rglob("*") if p.is_file() and (not exts or p.suffix in exts))
    source = spec.source or path.name
    for i, p in enumerate(files):
        if i < skip:
            continue
        rel = str(p.relative_to(path))
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise InputFormatError(f"{p}: cannot read ({e.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield (
                i,
                BadRecord(str(p), 1, "invalid_utf8", str(e), raw[:1000].decode("utf-8", "replace")),
            )
            continue
        yield (
            i,
            _row_to_record(
                spec, {spec.text_key: text, spec.id_key: f"{path.name}/{rel}"}, p, 1, source
            ),
        )


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "text": read_text_folder}
# input.format -> the extra its reader needs ("" for the base install).
FORMAT_EXTRAS = {"jsonl": "", "parquet": "parquet", "text": ""}
