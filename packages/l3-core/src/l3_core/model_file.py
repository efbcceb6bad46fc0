"""One pickle-free file format for small models (classifiers, quantisers, feature tables).

A model file is an ``.npz`` archive of plain numeric arrays plus a JSON header: what kind of
model it is, the format version, and whatever settings the model needs to rebuild itself.
It is read with ``allow_pickle=False``, so a crafted file can hold wrong numbers but can never
run code. Object arrays are refused on save. Large neural weights use safetensors
(:mod:`l3_core.checkpoint`); this format is for the models that fit in a few megabytes.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.errors import ModelFileError
from l3_core.io import atomic_write

FORMAT = "l3.model-file"
VERSION = 1
_HEADER = "__l3_header__"


@dataclass
class ModelFile:
    """The contents of a model file: its kind, its settings and its arrays."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def array(self, name: str, path: str | os.PathLike[str] = "") -> np.ndarray:
        """The array ``name``; a missing one is a :class:`ModelFileError` naming the file."""
        try:
            return self.arrays[name]
        except KeyError:
            raise ModelFileError(
                f"{path or self.kind}: model file has no array {name!r} "
                f"(it has {sorted(self.arrays)})"
            ) from None


def save_model_file(path: str | os.PathLike[str], model: ModelFile, compress: bool = True) -> None:
    """Write ``model`` to ``path`` atomically."""
    for name, a in model.arrays.items():
        if name == _HEADER:
            raise ValueError(f"array name {_HEADER!r} is reserved")
        if np.asarray(a).dtype.hasobject:
            raise ValueError(f"array {name!r} holds Python objects; model files hold numbers only")
    header = {"format": FORMAT, "version": VERSION, "kind": model.kind, "meta": model.meta}
    blob = np.frombuffer(json.dumps(header, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    save = np.savez_compressed if compress else np.savez
    with atomic_write(path, "wb") as f:
        # numpy types **kwds against its allow_pickle: bool keyword
        save(f, **{_HEADER: blob}, **{k: np.asarray(v) for k, v in model.arrays.items()})  # type: ignore[arg-type]


def load_model_file(
    path: str | os.PathLike[str], kind: str | Collection[str] | None = None
) -> ModelFile:
    """Read a model file; ``kind`` (one or several) is what the caller can use."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _HEADER not in z.files:
                raise ModelFileError(f"{path}: not an l3 model file (no header)")
            header = json.loads(bytes(z[_HEADER]).decode("utf-8"))
            arrays = {name: z[name] for name in z.files if name != _HEADER}
    except ModelFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise ModelFileError(
            f"{path}: not a readable model file ({type(e).__name__}: {e})"
        ) from None
    _check_header(path, header, kind)
    return ModelFile(header["kind"], dict(header.get("meta", {})), arrays)


def _check_header(
    path: Path, header: Mapping[str, Any], kind: str | Collection[str] | None
) -> None:
    if not isinstance(header, Mapping) or header.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not an l3 model file (format {header.get('format')!r})"
            if isinstance(header, Mapping)
            else f"{path}: malformed header"
        )
    if header.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: model file version {header.get('version')!r}; this "
            f"l3-core reads version {VERSION}"
        )
    wanted = {kind} if isinstance(kind, str) else set(kind or ())
    if wanted and header.get("kind") not in wanted:
        raise ModelFileError(
            f"{path}: holds a {header.get('kind')!r} model, expected "
            f"{' or '.join(sorted(map(repr, wanted)))}"
        )
