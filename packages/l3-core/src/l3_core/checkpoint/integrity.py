"""Sizes and sha256 checksums of a checkpoint's files, recorded when it is written and checked
when it is read, so a truncated or altered file is named instead of half-loaded.

Every checkpoint directory l3 writes (the l3 and HF formats, and training checkpoints) holds
``files.json``: ``{"format", "version", "files": {name: {"size", "sha256"}}}`` for every other
file in it, written last inside the temporary directory that becomes the checkpoint. A
directory without it (an HF download, a checkpoint from before this file existed) is read
without the check. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from l3_core.errors import CheckpointError
from l3_core.io import write_json

FILES = "files.json"
FORMAT = "l3-checkpoint-files"
VERSION = 1
_CHUNK = 1 << 22


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is missing, truncated, altered or unreadable (another, older checkpoint
    may still be intact)."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def record_files(directory: Path) -> dict[str, dict[str, Any]]:
    """Write ``directory/files.json`` for every other (regular, top-level) file; return it."""
    files = {
        p.name: {"size": p.stat().st_size, "sha256": sha256_of(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != FILES
    }
    write_json(directory / FILES, {"format": FORMAT, "version": VERSION, "files": files})
    return files


def _recorded(directory: Path) -> dict[str, Any] | None:
    path = directory / FILES
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as e:
        raise CorruptCheckpointError(f"{path}: unreadable: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{path}: not an {FORMAT} file")
    files = data.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict)
        and isinstance(v.get("size"), int)
        and isinstance(v.get("sha256"), str)
        and "/" not in k
        for k, v in files.items()
    ):
        raise CorruptCheckpointError(f"{path}: 'files' must map file names to size and sha256")
    return files


def verify_files(directory: Path, checksums: bool = True) -> bool:
    """Check every file that ``files.json`` lists: present, its size, and (``checksums``) its
    sha256. Return False when there is no ``files.json``; raise
    :class:`CorruptCheckpointError` naming the first file that differs."""
    files = _recorded(directory)
    if files is None:
        return False
    for name, want in files.items():
        path = directory / name
        if not path.is_file():
            raise CorruptCheckpointError(f"{path}: missing (listed in {FILES})")
        size = path.stat().st_size
        if size != want["size"]:
            raise CorruptCheckpointError(
                f"{path}: {size} bytes, {FILES} records {want['size']} (truncated or altered)"
            )
    if checksums:
        for name, want in files.items():
            path = directory / name
            got = sha256_of(path)
            if got != want["sha256"]:
                raise CorruptCheckpointError(
                    f"{path}: sha256 {got[:12]}..., {FILES} records {want['sha256'][:12]}... "
                    "(the file was altered)"
                )
    return True
