"""Reading and writing JSON Lines, with one error report per bad row.

Every l3 package reads rows the same way: plain, gzip or zstd files (recognised by their
first bytes, so a mislabelled file is read for what it is), blank lines skipped, and each
line that is not UTF-8, not JSON or not a JSON object reported as a :class:`BadRow` naming the
file, the line and the reason. A caller either stops at the first bad row (the default: an
:class:`~l3_core.errors.InputError`) or collects them (``on_bad_row``), for example into an
:class:`Exclusions` file. A compressed file that ends early is always an error: rows are never
dropped silently.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from l3_core.errors import DependencyError, InputError
from l3_core.io import atomic_write

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BadRow:
    """A row that was not read: where it is and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "line": self.line, "reason": self.reason}


class _ZstdReader(io.RawIOBase):
    """zstd frames decompressed one after another; a stream that ends inside a frame raises."""

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        try:
            import zstandard
        except ImportError as e:
            raise DependencyError(f"{path}: reading zstd files needs the zstandard package") from e
        self._zstd = zstandard
        self._raw, self._path = raw, path
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""
        self._in_frame = False
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            self._fill()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def _fill(self) -> None:
        data = self._raw.read(_CHUNK)
        if not data:
            if self._in_frame:
                raise InputError(
                    f"{self._path}: truncated zstd file (the last frame is incomplete)"
                )
            self._eof = True
            return
        while data:
            self._in_frame = True
            try:
                self._buf += self._dobj.decompress(data)
            except self._zstd.ZstdError as e:
                raise InputError(f"{self._path}: corrupt zstd data ({e})") from None
            if not self._dobj.eof:
                return
            # A frame ended: what follows belongs to the next one.
            data = self._dobj.unused_data
            self._dobj = self._zstd.ZstdDecompressor().decompressobj()
            self._in_frame = False

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing gzip or zstd by content, not by name."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_GZIP_MAGIC):
        return io.BufferedReader(_GzipChecked(raw, path), _CHUNK)
    if head == _ZSTD_MAGIC:
        return io.BufferedReader(_ZstdReader(raw, path), _CHUNK)
    return raw


class _GzipChecked(io.RawIOBase):
    """gzip whose truncation or corruption becomes an :class:`InputError` naming the file."""

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._raw, self._path = raw, path

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            return self._gz.readinto(b)
        except EOFError:
            raise InputError(f"{self._path}: truncated gzip file") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise InputError(f"{self._path}: corrupt gzip data ({e})") from None

    def close(self) -> None:
        self._gz.close()
        self._raw.close()
        super().close()


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` for every line of ``path`` (decompressed), numbered from 1."""
    with open_binary(path) as f:
        yield from enumerate(f, 1)


def parse_row(raw: bytes, path: str, line: int) -> dict[str, Any] | BadRow:
    """One JSONL line as a JSON object, or the reason it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return BadRow(path, line, f"not UTF-8 (byte {e.start}: {raw[e.start : e.start + 1]!r})")
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        return BadRow(path, line, f"invalid JSON ({e.msg} at column {e.colno})")
    if not isinstance(row, dict):
        return BadRow(path, line, f"expected a JSON object, got {type(row).__name__}")
    return row


def iter_jsonl(
    path: str | os.PathLike[str], on_bad_row: Callable[[BadRow], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for each JSON object in ``path``; blank lines are skipped.

    A bad line raises :class:`InputError` unless ``on_bad_row`` is given, which then receives
    it and reading goes on.
    """
    name = str(path)
    for n, raw in iter_lines(path):
        if not raw.strip():
            continue
        row = parse_row(raw, name, n)
        if isinstance(row, BadRow):
            if on_bad_row is None:
                raise InputError(str(row))
            on_bad_row(row)
            continue
        yield n, row


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of ``path``; the first bad row raises :class:`InputError`."""
    return [row for _, row in iter_jsonl(path)]


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` as JSON Lines atomically (readers see the old file or the whole new one).

    Returns the number of rows written.
    """
    n = 0
    with atomic_write(path, encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


class Exclusions:
    """Bad rows collected while reading, written as one JSONL file of ``{file, line, reason}``.

    Pass :meth:`add` as ``on_bad_row``; rows that a later check rejects go through
    :meth:`reject`.
    """

    def __init__(self) -> None:
        self.rows: list[BadRow] = []

    def add(self, bad: BadRow) -> None:
        self.rows.append(bad)

    def reject(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        self.rows.append(BadRow(str(path), line, reason))

    def __len__(self) -> int:
        return len(self.rows)

    def by_reason(self) -> dict[str, int]:
        """Counts per reason, without the value part after the first ``:`` (for summaries)."""
        out: dict[str, int] = {}
        for r in self.rows:
            key = r.reason.split(":", 1)[0]
            out[key] = out.get(key, 0) + 1
        return out

    def write(self, path: str | os.PathLike[str]) -> int:
        return write_jsonl(path, (r.to_json() for r in self.rows))
