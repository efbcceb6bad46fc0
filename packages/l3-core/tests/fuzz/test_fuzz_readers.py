"""The readers of l3-core on arbitrary or corrupted bytes: JSONL, metrics, token shards. Each
reads what is valid or raises an L3Error, never another exception."""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_core.errors import L3Error
from l3_core.jsonl import iter_jsonl
from l3_core.metrics_schema import read_metrics
from l3_core.shards import ShardDataset, write_manifest, write_shard

FUZZ = settings(max_examples=120, deadline=None)

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
JSONL_BYTES = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"\x1f\x8b" + b),  # claims to be gzip
    st.binary(max_size=300).map(lambda b: _ZSTD_MAGIC + b),  # claims to be zstd
    st.binary(max_size=300).map(gzip.compress),
    st.tuples(st.binary(min_size=1, max_size=300), st.integers(1, 40)).map(
        lambda t: gzip.compress(t[0])[: -t[1]]  # a truncated gzip file
    ),
    st.lists(
        st.one_of(
            st.dictionaries(st.text(max_size=8), st.integers() | st.floats() | st.text(max_size=8)),
            st.integers(),
            st.text(max_size=10),
        ),
        max_size=5,
    ).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
)


def _in_temp(content: bytes, name: str, read) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(content)
        with contextlib.suppress(L3Error):
            read(path)


@FUZZ
@given(JSONL_BYTES)
def test_jsonl_reads_any_bytes_or_raises_an_l3_error(content):
    _in_temp(content, "rows.jsonl", lambda p: list(iter_jsonl(p)))
    bad = []
    _in_temp(content, "rows.jsonl", lambda p: list(iter_jsonl(p, on_bad_row=bad.append)))


METRIC_ROWS = st.lists(
    st.dictionaries(
        st.sampled_from(["step", "loss", "lr", "grad_norm", "val_loss", "tokens", "odd"]),
        st.one_of(st.integers(-5, 10**20), st.floats(), st.text(max_size=5), st.none()),
        max_size=7,
    ),
    max_size=4,
).map(lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode())


@FUZZ
@given(st.one_of(st.binary(max_size=300), METRIC_ROWS))
def test_read_metrics_reads_any_bytes_or_raises_an_l3_error(content):
    _in_temp(content, "metrics.jsonl", read_metrics)


SHARD_FILES = [
    "manifest.json",
    "a.meta.json",
    "a.tokens.bin",
    "a.offsets.npy",
    "a.sources.npy",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("shards")
    docs = [([1, 2, 3], "web"), ([4, 5], "code"), ([], "web"), ([6] * 10, "web")]
    write_shard(d, "a", docs, vocab_size=100, tokenizer="t")
    write_manifest(d)
    return d


def _corrupt(data: bytes, how: str, at: int, value: bytes) -> bytes:
    at = at % (len(data) + 1)
    if how == "truncate":
        return data[:at]
    if how == "replace":
        return value
    if how == "overwrite":
        return data[:at] + value + data[at + len(value) :]
    return data[:at] + value + data[at:]  # insert


@FUZZ
@given(
    st.sampled_from(SHARD_FILES),
    st.sampled_from(["truncate", "replace", "overwrite", "insert"]),
    st.integers(0, 10**6),
    st.binary(min_size=1, max_size=24),
)
def test_a_dataset_with_a_corrupted_file_reads_or_raises_an_l3_error(dataset, name, how, at, value):
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / "ds"
        shutil.copytree(dataset, copy)
        path = copy / name
        path.write_bytes(_corrupt(path.read_bytes(), how, at, value))
        try:
            ds = ShardDataset(copy, expect_vocab_size=100)
            for doc, source in ds.documents():
                assert doc.size == 0 or int(np.max(doc)) < 100
                assert isinstance(source, str)
        except L3Error:
            pass
