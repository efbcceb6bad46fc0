import numpy as np
import pytest

from l3_core.errors import ShardError
from l3_core.shards import ShardDataset, write_manifest, write_shard

DOCS = [([1, 2, 3], "web"), ([4, 5], "code"), ([], "web"), ([6] * 10, "web")]


def test_round_trip_of_documents_sources_and_counts(tmp_path):
    write_shard(tmp_path, "a", DOCS[:2], vocab_size=100, tokenizer="t:100:x")
    write_shard(tmp_path, "b", DOCS[2:], vocab_size=100, tokenizer="t:100:x")
    manifest = write_manifest(tmp_path)
    assert manifest["n_tokens"] == 15 and manifest["n_docs"] == 4
    assert manifest["tokens_per_source"] == {"web": 13, "code": 2}
    ds = ShardDataset(tmp_path, expect_tokenizer="t:100:x")
    got = [(d.tolist(), s) for d, s in ds.documents()]
    assert got == [(list(ids), s) for ids, s in DOCS]
    assert ds.shards[0].tokens.dtype == np.uint16


def test_large_vocabularies_use_uint32(tmp_path):
    info = write_shard(tmp_path, "a", [([128255, 0], "x")], vocab_size=128256, tokenizer="t")
    assert info.dtype == "<u4"


def test_out_of_range_ids_are_refused(tmp_path):
    with pytest.raises(ShardError, match=r"token id 100 outside \[0, 100\)"):
        write_shard(tmp_path, "a", [([1, 100], "x")], vocab_size=100, tokenizer="t")


def test_truncated_shard_is_detected(tmp_path):
    write_shard(tmp_path, "a", DOCS, vocab_size=100, tokenizer="t")
    write_manifest(tmp_path)
    path = tmp_path / "a.tokens.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ShardError, match="truncated"):
        ShardDataset(tmp_path)


def test_other_tokenizer_is_refused(tmp_path):
    write_shard(tmp_path, "a", DOCS, vocab_size=100, tokenizer="spm:100:abc")
    write_manifest(tmp_path)
    with pytest.raises(ShardError, match="spm:100:abc"):
        ShardDataset(tmp_path, expect_tokenizer="llama3:128256:def")


def test_incomplete_shards_without_meta_are_ignored(tmp_path):
    write_shard(tmp_path, "a", DOCS, vocab_size=100, tokenizer="t")
    (tmp_path / "b.tokens.bin").write_bytes(b"\x00" * 8)  # a writer died before its meta file
    assert write_manifest(tmp_path)["shards"] == ["a"]
    with pytest.raises(ShardError, match="manifest not found"):
        ShardDataset(tmp_path / "elsewhere")
