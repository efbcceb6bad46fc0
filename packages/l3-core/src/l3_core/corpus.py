"""A small real corpus on every machine: the Python standard library's code and docstrings.

Used by the main job, the tiny training example and tests, so that nothing needs a download.
Documents are whole ``.py`` files (source ``code``) and the docstrings of their modules,
classes and functions joined per file (source ``prose``). A byte-fallback BPE of 7,936 pieces
(+256 Llama 3 specials = 8,192 ids, the ``llama3-20m`` vocabulary) is trained on them.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

from l3_core.shards import write_manifest, write_shard
from l3_core.tokenizer import Tokenizer, train_sentencepiece

log = logging.getLogger(__name__)

VERSION = "v1"
VOCAB = 7936
VAL_PERCENT = 3  # documents whose path hash falls below this go to the validation split
_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "site-packages",
    "dist-packages",
    "lib2to3",
    "__pycache__",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "pydoc_data",
}


def cache_root() -> Path:
    return Path(os.environ.get("L3_CACHE", Path.home() / ".cache" / "l3"))


def stdlib_files(max_bytes: int = 12_000_000) -> list[Path]:
    """The standard library's ``.py`` files (no tests), sorted, up to ``max_bytes`` in total."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS & set(path.relative_to(root).parts[:-1]):
            continue
        size = path.stat().st_size
        if total + size > max_bytes:
            break
        files.append(path)
        total += size
    return files


def documents(files: list[Path]) -> Iterator[tuple[str, str, str]]:
    """(document key, source, text) for each file: its code, then its docstrings as prose."""
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        yield str(path), "code", text
        docs = [
            ast.get_docstring(node, clean=True)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        prose = "\n\n".join(d for d in docs if d and len(d) > 40)
        if prose:
            yield str(path) + "#doc", "prose", prose


def is_validation(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 < VAL_PERCENT


def stdlib_shards(cache_dir: str | Path | None = None, split: str = "train") -> Path:
    """Token shards of the standard-library corpus (``split`` "train" or "val"), built once.

    Each split directory holds the shards, ``manifest.json`` and the ``tokenizer.model`` they
    were written with. The build happens in a temporary directory renamed into place, so
    concurrent callers (several ranks) and interrupted builds never see half a corpus.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = root / f"stdlib-{VERSION}-{py}"
    if not (target / "val" / "manifest.json").is_file():
        build_corpus(target)
    return target / split


def build_corpus(target: Path, vocab_size: int = VOCAB, max_bytes: int = 12_000_000) -> None:
    """Build ``target``'s ``train`` and ``val`` token shards (with a ``vocab_size``-piece BPE
    trained on the train split) from the first ``max_bytes`` of the standard library's files;
    atomic, and safe against another process building the same ``target`` at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        docs = list(documents(stdlib_files(max_bytes)))
        log.info("stdlib corpus: %d documents; training a %d-piece BPE", len(docs), vocab_size)
        tok_path = tmp / "tokenizer.model"
        train_sentencepiece(
            (text for key, _, text in docs if not is_validation(key)),
            tok_path,
            vocab_size=vocab_size,
        )
        tok = Tokenizer.from_file(tok_path)
        fp = tok.fingerprint()  # the split copies below hold the same bytes
        for split in ("train", "val"):
            chosen = [(s, t) for k, s, t in docs if is_validation(k) == (split == "val")]
            ids = tok.encode_batch([t for _, t in chosen], bos=True, eos=True)
            out = tmp / split
            out.mkdir()
            shutil.copy(tok_path, out / "tokenizer.model")
            write_shard(
                out,
                "shard-00000",
                zip(ids, (s for s, _ in chosen)),
                vocab_size=tok.n_words,
                tokenizer=fp,
            )
            write_manifest(out)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "val" / "manifest.json").is_file():
                raise  # not a lost race with another builder: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
