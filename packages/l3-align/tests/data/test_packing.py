"""Packing: groups stay in one row, labels and masks shift within a sequence only, and a
packed row scores exactly what the sequences score alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l3_align.data import PackItem, pack, place_groups
from l3_align.errors import AlignInputError
from l3_core.args import ModelArgs
from l3_core.model import Transformer


def _item(tokens, mask=None):
    tokens = np.asarray(tokens, np.int64)
    m = np.ones(len(tokens), bool) if mask is None else np.asarray(mask, bool)
    return PackItem(tokens, {"mask": m})


def test_first_fit_keeps_groups_whole_and_in_order():
    assert place_groups([3, 3, 2, 1], 4) == [[0, 3], [1], [2]]
    with pytest.raises(AlignInputError, match="more than the row length 4"):
        place_groups([5], 4)


def test_labels_masks_positions_and_doc_ids():
    rows = pack([[_item([1, 2, 3], [0, 1, 1]), _item([4, 5])], [_item([6, 7])]], 8, pad_id=0)
    assert rows.n_rows == 1
    assert rows.tokens[0].tolist() == [1, 2, 3, 4, 5, 6, 7, 0]
    assert rows.labels[0].tolist() == [2, 3, 0, 5, 0, 7, 0, 0]
    assert rows.extra["mask"][0].tolist() == [1, 1, 0, 1, 0, 1, 0, 0]
    assert rows.positions[0].tolist() == [0, 1, 2, 0, 1, 0, 1, 0]
    assert rows.doc_ids[0].tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert rows.group[0].tolist() == [0, 0, 0, 0, 0, 1, 1, -1]
    assert rows.member[0].tolist() == [0, 0, 0, 1, 1, 0, 0, -1]


def test_packed_row_log_probs_equal_each_sequence_alone():
    args = ModelArgs(
        dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=16, max_seq_len=32
    )
    model = Transformer.build(args, seed=3).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 64, n) for n in (5, 7, 4)]
    rows = pack([[_item(s)] for s in seqs], 20, pad_id=0)
    with torch.no_grad():
        logits = model(torch.from_numpy(rows.tokens), torch.from_numpy(rows.doc_ids))
        logp = torch.log_softmax(logits, -1).gather(-1, torch.from_numpy(rows.labels)[..., None])
        for g, s in enumerate(seqs):
            alone = torch.log_softmax(model(torch.from_numpy(s)[None]), -1)[0, :-1]
            want = alone.gather(-1, torch.from_numpy(s[1:])[:, None]).squeeze(-1)
            sel = torch.from_numpy((rows.group[0] == g) & rows.extra["mask"][0])
            torch.testing.assert_close(logp[0, :, 0][sel], want, atol=1e-5, rtol=1e-5)
