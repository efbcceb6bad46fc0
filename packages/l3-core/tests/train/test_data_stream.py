"""The packed stream: deterministic, resumable, mixed by weight, masked at document boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from l3_core.errors import ConfigError
from l3_core.shards import ShardDataset
from l3_core.train.data import PackedStream, make_batch
from l3_core.train.testing import make_shards


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return ShardDataset(make_shards(tmp_path_factory.mktemp("d"), n_docs=90, max_len=60))


def _stream(dataset, seed=0, weights=None):
    return PackedStream(dataset, seed, weights or {}, val_fraction=0.1)


def test_same_seed_same_rows_other_seed_other_rows(dataset):
    a, b, c = _stream(dataset), _stream(dataset), _stream(dataset, seed=1)
    ra, rb, rc = (s.next_rows(6, 32) for s in (a, b, c))
    assert np.array_equal(ra.tokens, rb.tokens)
    assert not np.array_equal(ra.tokens, rc.tokens)


def test_resumed_stream_continues_exactly(dataset):
    s = _stream(dataset)
    s.next_rows(5, 32)
    saved = s.state_dict()
    expected = s.next_rows(7, 48)
    resumed = _stream(dataset)
    resumed.load_state_dict(saved)
    got = resumed.next_rows(7, 48)
    assert np.array_equal(got.tokens, expected.tokens)
    assert np.array_equal(got.doc_ids, expected.doc_ids)


def test_every_training_token_appears_once_per_epoch_in_order(dataset):
    s = _stream(dataset)
    train_docs = sum(len(v) for v in s.by_source.values())
    total = sum(len(dataset.shards[sh].document(d)) for v in s.by_source.values() for sh, d in v)
    draws_before = s.draws
    rows = s.next_rows(total // 33 + 1, 32)
    assert s.draws - draws_before >= train_docs  # a full epoch was drawn
    # each source was visited in a permutation: no document twice before the epoch ends
    assert all(c[0] >= 1 for c in s.cursor.values())
    assert rows.tokens.shape == (total // 33 + 1, 32)


def test_validation_documents_never_appear_in_training(dataset):
    s = _stream(dataset)
    val = {tuple(x) for x in s.val_docs.tolist()}
    train = {tuple(x) for v in s.by_source.values() for x in v.tolist()}
    assert val and not (val & train)
    assert np.array_equal(
        s.validation_rows(3, 32).tokens, _stream(dataset, seed=5).validation_rows(3, 32).tokens
    )


def test_weights_set_the_source_proportions(dataset):
    s = _stream(dataset, weights={"web": 3.0, "code": 1.0})
    for _ in range(400):
        s._next_document()
    # smooth weighted round-robin: exact proportions up to one document
    counts = {src: 0 for src in s.sources}
    t = _stream(dataset, weights={"web": 3.0, "code": 1.0})
    for _ in range(400):
        counts[t._next_source()] += 1
    assert counts == {"web": 300, "code": 100}


def test_unknown_source_weight_is_refused(dataset):
    with pytest.raises(ConfigError, match=r"unknown sources \['books'\]"):
        _stream(dataset, weights={"books": 1.0})


def test_batch_masks_labels_across_documents_and_restarts_positions():
    rows = np.array([[10, 11, 12, 20, 21, 30]])
    docs = np.array([[0, 0, 0, 1, 1, 2]])
    b = make_batch(rows, docs)
    assert b.tokens.tolist() == [[10, 11, 12, 20, 21]]
    assert b.labels.tolist() == [[11, 12, 20, 21, 30]]
    assert b.loss_mask.tolist() == [[1, 1, 0, 1, 0]]  # 12->20 and 21->30 cross documents
    assert b.positions.tolist() == [[0, 1, 2, 0, 1]]
    assert b.doc_ids.tolist() == [[0, 0, 0, 1, 1]]
