"""Atomic, durable file writes: a reader sees the old file or the new one, never half of either,
and a completed write survives a power loss.

The data is written to a temporary file beside the target, flushed and fsynced, renamed over
the target, and the directory is fsynced so that the rename itself is on disk. New files get
the permissions the user's umask gives (as ``open`` would), not the temporary file's 0600.
Temporary names start with ``.<name>.`` and end with ``.tmp``: :func:`remove_stale_temporaries`
clears the ones a killed process left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from l3_core.errors import OutputError

TMP_SUFFIX = ".tmp"
# atomic_path moves a directory it replaces aside under this name for one rename
OLD_SUFFIX = ".old" + TMP_SUFFIX


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename or creation inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"{path.parent}: cannot create the output directory ({e.strerror})"
        ) from None
    if path.is_dir():
        raise OutputError(f"{path}: is a directory, expected a file path")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it, rename it over ``path`` and
    fsync the directory.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    _make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror})") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library that writes files itself.

    The temporary path (a file or a directory) replaces ``path`` when the block exits cleanly;
    every file under it is fsynced first and given the umask's permissions (libraries such as
    safetensors create their files 0600, and ``mkdtemp`` makes directories 0700).
    """
    path = Path(path)
    if not path.is_dir():
        _make_parent(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror})") from None
    target = tmp / path.name
    try:
        yield target
        _fsync_tree(target)
        if path.is_dir() and not path.is_symlink():
            # A directory cannot be replaced atomically when it exists; move the old one aside
            # first so that the window without a complete directory is one rename long.
            old = path.with_name(f".{path.name}{OLD_SUFFIX}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(target, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, path)
        fsync_directory(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    file_mode, dir_mode = 0o666 & ~_umask(), 0o777 & ~_umask()
    if root.is_file():
        with root.open("rb+") as f:
            os.fchmod(f.fileno(), file_mode)
            os.fsync(f.fileno())
        return
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, dir_mode)
        for name in files:
            with open(os.path.join(dirpath, name), "rb+") as f:
                os.fchmod(f.fileno(), file_mode)
                os.fsync(f.fileno())
        fsync_directory(dirpath)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files and folders that interrupted atomic writes left in ``directory``
    (not recursive); return what was removed. Call it at start-up, before writing.

    A directory that :func:`atomic_path` had moved aside (``.NAME.old.tmp``) when the process
    died before its replacement took its place is renamed back to ``NAME``, the last complete
    version, instead of being deleted.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for p in sorted(directory.iterdir()):
        if not (p.name.startswith(".") and p.name.endswith(TMP_SUFFIX)):
            continue
        original = directory / p.name[1 : -len(OLD_SUFFIX)] if p.name.endswith(OLD_SUFFIX) else None
        if original is not None and p.is_dir() and not original.exists():
            os.replace(p, original)
            fsync_directory(directory)
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
