"""The small-vocabulary corpus and the cloze task built from its held-out documents."""

from __future__ import annotations

import numpy as np
import pytest

from l3_core import ModelArgs
from l3_core.corpus import documents, is_validation, stdlib_files
from l3_core.shards import ShardDataset
from l3_scaling.cloze import ClozeTask, answer_nll, build_cloze, score
from l3_scaling.corpus import VOCAB_SIZE, build_small_corpus, data_table
from l3_scaling.errors import FitError
from l3_scaling.flops import scaling_params
from l3_scaling.sweep import SweepConfig, shape_ladder

SMALL = 300_000  # bytes of the standard library: a corpus built in about a second


def _tokens(directory):
    return [np.asarray(d).tolist() for d, _ in ShardDataset(directory).documents()]


def test_the_corpus_is_deterministic_with_768_ids_and_l3_cores_split(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_small_corpus(a, SMALL)
    build_small_corpus(b, SMALL)
    assert (a / "train" / "tokenizer.model").read_bytes() == (
        b / "train" / "tokenizer.model"
    ).read_bytes()
    for split in ("train", "val"):
        assert _tokens(a / split) == _tokens(b / split)
    train = ShardDataset(a / "train")
    assert train.manifest["vocab_size"] == VOCAB_SIZE == 768
    ids = np.concatenate([np.asarray(d) for d, _ in train.documents()])
    assert ids.max() < VOCAB_SIZE
    docs = list(documents(stdlib_files(SMALL)))
    n_val = sum(is_validation(k) for k, _, _ in docs)
    assert ShardDataset(a / "val").n_docs == n_val
    assert train.n_docs == len(docs) - n_val


def test_a_sweep_on_the_small_corpus_gets_its_vocabulary_and_shard_paths():
    cfg = SweepConfig(budgets=[1e10], data_path="builtin:stdlib-small", head_dim=4)
    assert all(s.vocab_size == VOCAB_SIZE for s in shape_ladder(cfg))
    assert data_table("/some/shards") == {"path": "/some/shards"}


def test_flops_of_the_smallest_ladder_shape_in_closed_form():
    # dim 16, 1 layer, 4 heads of 4 (2 kv), SwiGLU hidden 64 (multiple_of 32), vocab 768:
    # q,o 2*16*16 + k,v 2*16*8 + ffn 3*16*64 + norms 2*16 + final norm 16 + head 768*16
    args = ModelArgs.from_preset(
        "llama3-tiny", vocab_size=768, dim=16, n_layers=1, n_heads=4, n_kv_heads=2
    )
    n = 512 + 256 + 3072 + 32 + 16 + 12288
    assert scaling_params(args) == n == 16176
    # 6N plus QK^T and AV over the full 128 x 128 score matrix: 3 * 2 * 2 * L * T * H * d_h
    assert args.flops_per_token(128) == 6 * n + 12 * 1 * 128 * 4 * 4


def _docs():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 50, size=n) for n in (200, 150, 90, 300)]


def test_cloze_items_are_true_continuations_against_other_documents():
    docs = _docs()
    docs[0][10:20] = 60  # "special" ids: never cut into an item
    task = build_cloze(docs, items=50, context=8, answer=4, seed=3, max_id=55)
    again = build_cloze(docs, items=50, context=8, answer=4, seed=3, max_id=55)
    assert task.fingerprint() == again.fingerprint()
    assert (
        task.fingerprint() != build_cloze(docs, items=50, context=8, answer=4, seed=4).fingerprint()
    )
    assert task.chance == 0.25 and task.contexts.max() < 55 and task.choices.max() < 55
    joined = [" ".join(map(str, d)) for d in docs]
    for ctx, opts, c in zip(task.contexts, task.choices, task.correct):
        true = " ".join(map(str, np.concatenate([ctx, opts[c]])))
        home = [i for i, j in enumerate(joined) if true in j]
        assert home  # context + correct answer is a span of one document
        for k, o in enumerate(opts):
            if k != c:
                assert any(" ".join(map(str, o)) in joined[i] for i in range(4) if i not in home)
    with pytest.raises(FitError, match="2 or more documents"):
        build_cloze([np.arange(10)], context=8, answer=4)


def test_score_reads_accuracy_and_correct_nll_from_the_matrix():
    nll = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 0.5, 3.0, 4.0], [1.0, 2.0, 0.1, 4.0]])
    got = score(nll, np.array([0, 0, 2]))
    assert got == {"accuracy": pytest.approx(2 / 3), "nll": pytest.approx((1.0 + 2.0 + 0.1) / 3)}


def test_answer_nll_counts_only_the_answer_tokens():
    torch = pytest.importorskip("torch")
    p, vocab = 0.7, 37

    class Constant(torch.nn.Module):
        # p(token 1) = p everywhere, the other 36 ids share 1 - p
        def forward(self, x):
            logits = torch.zeros(*x.shape, vocab)
            logits[..., 1] = float(np.log(p * (vocab - 1) / (1 - p)))
            return logits

    choices = np.ones((3, 4, 2), np.int64)
    choices[:, 1:, 0] = 2  # choices 1-3 start with a token of probability (1 - p) / 36
    task = ClozeTask(np.zeros((3, 5), np.int64), choices, np.zeros(3, np.int64))
    got = answer_nll(Constant(), task, batch=5)
    assert got[:, 0] == pytest.approx(np.full(3, -np.log(p)))
    assert got[:, 1:] == pytest.approx(np.full((3, 3), -(np.log(p) + np.log((1 - p) / 36)) / 2))
    assert score(got, task.correct)["accuracy"] == 1.0
