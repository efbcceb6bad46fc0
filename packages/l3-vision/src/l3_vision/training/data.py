"""Image-text pairs from JSONL (image paths, relative to the file) or Parquet (image bytes).

Every image is decoded up front; a row whose image cannot be read, or whose text is missing,
goes to the exclusions with the file, line and reason, never silently dropped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from l3_core.jsonl import Exclusions, iter_jsonl
from l3_vision.errors import DatasetError, ImageError, MissingExtraError


@dataclass
class Pair:
    image: Image.Image
    text: str
    source: str


def open_image(source: str | Path | bytes, where: str) -> Image.Image:
    """Decode an image fully (so a truncated file fails here), as RGB."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise ImageError(f"{where}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{where}: cannot decode image: {e}") from None


def _text(row: dict, where: str) -> str:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{where}: field 'text' is missing or empty")
    return text


def read_jsonl_pairs(path: Path, exclusions: Exclusions) -> list[Pair]:
    pairs = []
    for line, row in iter_jsonl(path, on_bad_row=exclusions.add):
        where = f"{path}:{line}"
        try:
            image_field = row.get("image")
            if not isinstance(image_field, str) or not image_field:
                raise DatasetError(f"{where}: field 'image' is missing or not a path")
            image_path = path.parent / image_field
            text = _text(row, where)
            pairs.append(Pair(open_image(image_path, f"{where}: {image_path}"), text, where))
        except (DatasetError, ImageError) as e:
            exclusions.reject(path, line, str(e).removeprefix(f"{where}: "))
    return pairs


def read_parquet_pairs(path: Path, exclusions: Exclusions) -> list[Pair]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError(
            "reading Parquet needs pyarrow: pip install 'l3-vision[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:  # not Parquet, truncated, or unreadable
        raise DatasetError(f"{path}: cannot read Parquet: {e}") from None
    for column in ("image", "text"):
        if column not in table.column_names:
            raise DatasetError(f"{path}: no column {column!r} (columns: {table.column_names})")
    pairs = []
    for i, row in enumerate(table.to_pylist(), 1):
        where = f"{path}:{i}"
        try:
            data = row["image"].get("bytes") if isinstance(row["image"], dict) else row["image"]
            if not isinstance(data, bytes):
                raise DatasetError(f"{where}: field 'image' holds no bytes")
            pairs.append(Pair(open_image(data, where), _text(row, where), where))
        except (DatasetError, ImageError) as e:
            exclusions.reject(path, i, str(e).removeprefix(f"{where}: "))
    return pairs


READERS = {
    ".jsonl": read_jsonl_pairs,
    ".gz": read_jsonl_pairs,
    ".zst": read_jsonl_pairs,
    ".parquet": read_parquet_pairs,
}


def read_pairs(path: Path, exclusions: Exclusions) -> list[Pair]:
    reader = READERS.get(path.suffix)
    if reader is None:
        raise DatasetError(
            f"{path}: unknown dataset format {path.suffix!r}; expected {', '.join(READERS)}"
        )
    return reader(path, exclusions)
