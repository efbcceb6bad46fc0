"""The record of a run's input files, so that a resumed run provably reads the same inputs.

A workdir's markers say which chunks of which input files are done; they are only true of the
files as they were. At the first start the engine records every input file's size, mtime and a
content hash (xxh3-128, streamed); a resume recomputes them and refuses when a file was added,
removed or changed, instead of reading some rows twice and missing others.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import xxhash

from l3_data.errors import InputChangedError, InputFormatError

log = logging.getLogger(__name__)

_BLOCK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    path: str
    size: int
    mtime_ns: int
    xxh3_128: str


def _files(task: Path) -> list[Path]:
    """The files a task reads: itself, or every file under it for a folder task."""
    if task.is_dir():
        return sorted(p for p in task.rglob("*") if p.is_file())
    return [task]


def describe(path: Path) -> InputFile:
    h = xxhash.xxh3_128()
    try:
        st = path.stat()
        with path.open("rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
    except OSError as e:
        raise InputFormatError(f"{path}: cannot read ({e.strerror})") from None
    return InputFile(str(path), st.st_size, st.st_mtime_ns, h.hexdigest())


def record_inputs(tasks: list[Path]) -> list[dict[str, Any]]:
    """What :func:`check_inputs` compares against later: one entry per input file."""
    return [asdict(describe(f)) for task in tasks for f in _files(task)]


def check_inputs(recorded: list[dict[str, Any]], tasks: list[Path], workdir: Path) -> None:
    """Raise :class:`InputChangedError` unless ``tasks`` are the files ``recorded`` describes
    (same paths, sizes and contents). An mtime that moved while the content stayed the same
    (a copy, a ``touch``) is logged, not refused: the hash proves the rows are the same."""
    fix = (
        "resuming would read some rows twice and miss others: use a new workdir, or --force "
        "(--restart) to discard the work done"
    )
    before = {r["path"]: r for r in recorded}
    now = [f for task in tasks for f in _files(task)]
    names = [str(f) for f in now]
    added = sorted(set(names) - set(before))
    removed = sorted(set(before) - set(names))
    if added or removed:
        what = "; ".join(
            [f"new input {p}" for p in added[:3]] + [f"input {p} is gone" for p in removed[:3]]
        )
        raise InputChangedError(
            f"{workdir}: the input files changed since this run started ({what}); {fix}"
        )
    for f in now:
        old, new = before[str(f)], asdict(describe(f))
        if old["size"] != new["size"]:
            raise InputChangedError(
                f"{workdir}: input {f} changed since this run started (size {old['size']} -> "
                f"{new['size']} bytes); {fix}"
            )
        if old["xxh3_128"] != new["xxh3_128"]:
            raise InputChangedError(
                f"{workdir}: input {f} changed since this run started (same size, different "
                f"content hash); {fix}"
            )
        if old["mtime_ns"] != new["mtime_ns"]:
            log.info("%s: mtime changed, content identical; resuming", f)
