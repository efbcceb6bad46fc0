import json

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


def _dataset(tmp_path, docs=DOCS, vocab_size=100):
    write_shard(tmp_path, "a", docs, vocab_size=vocab_size, tokenizer="t")
    write_manifest(tmp_path)
    return tmp_path


def test_a_token_id_at_or_above_the_vocabulary_names_the_file_and_the_id(tmp_path):
    _dataset(tmp_path)
    path = tmp_path / "a.tokens.bin"
    ids = np.fromfile(path, dtype="<u2")
    ids[4] = 100  # the vocabulary is [0, 100)
    ids.tofile(path)
    with pytest.raises(ShardError, match=r"a\.tokens\.bin: token id 100 at position 4 is outside"):
        ShardDataset(tmp_path)


def test_offsets_out_of_order_are_refused(tmp_path):
    _dataset(tmp_path)
    path = tmp_path / "a.offsets.npy"
    offsets = np.load(path)
    offsets[1], offsets[2] = offsets[2], offsets[1]
    np.save(path, offsets)
    with pytest.raises(ShardError, match=r"a\.offsets\.npy: offsets out of order: document 2"):
        ShardDataset(tmp_path)


def test_offsets_that_do_not_end_at_the_token_count_are_refused(tmp_path):
    _dataset(tmp_path)
    path = tmp_path / "a.offsets.npy"
    offsets = np.load(path)
    offsets[-1] -= 1
    np.save(path, offsets)
    with pytest.raises(ShardError, match=r"offsets run from 0 to 14, expected 0 to n_tokens = 15"):
        ShardDataset(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02\xff\xfe", "not UTF-8 text"),
        ('{"format": "l3-token-shards", "tokenizer": "caf\u00e9"'.encode("latin-1"), "not UTF-8"),
        (b"[1, 2, 3]", "expected a JSON object, got list"),
        (b'{"format": "l3-token-shards"}', "missing key 'tokenizer'"),
        (b"{", "not valid JSON"),
    ],
)
def test_a_binary_or_malformed_manifest_is_a_shard_error_naming_it(tmp_path, content, message):
    _dataset(tmp_path)
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(ShardError, match=message) as e:
        ShardDataset(tmp_path)
    assert str(e.value).startswith(str(tmp_path / "manifest.json"))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_tokens", 99, r"n_tokens = 99, but its shards hold 15"),
        ("vocab_size", "100", r"vocab_size = '100': expected a positive integer"),
        ("shards", ["../a"], r"shards = \['\.\./a'\]: expected a list of shard names"),
    ],
)
def test_a_manifest_that_disagrees_with_its_shards_is_refused(tmp_path, key, value, message):
    _dataset(tmp_path)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[key] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match=message):
        ShardDataset(tmp_path)


def test_a_meta_file_with_a_wrong_type_is_refused(tmp_path):
    _dataset(tmp_path)
    path = tmp_path / "a.meta.json"
    meta = json.loads(path.read_text())
    meta["n_tokens"] = "15"
    path.write_text(json.dumps(meta))
    with pytest.raises(ShardError, match=r"a\.meta\.json: n_tokens = '15': expected an integer"):
        ShardDataset(tmp_path)


def test_a_source_index_beyond_the_named_sources_is_refused(tmp_path):
    _dataset(tmp_path)
    np.save(tmp_path / "a.sources.npy", np.array([0, 1, 7, 0], dtype=np.uint16))
    with pytest.raises(ShardError, match=r"source index 7 but a\.meta\.json names 2 sources"):
        ShardDataset(tmp_path)


def test_an_index_holding_python_objects_is_never_unpickled(tmp_path):
    _dataset(tmp_path)
    np.save(tmp_path / "a.offsets.npy", np.array([0, 3, 5, 5, 15], dtype=object))
    with pytest.raises(ShardError, match=r"a\.offsets\.npy: document index unreadable"):
        ShardDataset(tmp_path)
