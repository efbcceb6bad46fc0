"""The n-gram index and the coverage it gives: equal to an in-memory set of n-gram tuples on
random data for any partition count and chunk size, closed-form coverage on hand-built
examples, resumable and refusing an index of another corpus."""

from __future__ import annotations

import numpy as np
import pytest

from l3_data.contamination import index as index_module
from l3_data.contamination.index import IndexSpec, NgramIndex, build_index
from l3_data.contamination.query import Example, coverage, score_examples
from l3_data.errors import WorkdirMismatchError


def _spec(n: int, partitions: int, corpus: str = "c") -> IndexSpec:
    return IndexSpec(n=n, partitions=partitions, tokenizer="t", corpus=corpus)


def _reference_coverage(tokens: np.ndarray, grams: set[tuple[int, ...]], n: int) -> float:
    """Token i is covered when some n-gram tuple over it is in the corpus's set."""
    t = [int(x) for x in tokens]
    if len(t) < n:
        return 0.0
    found = [tuple(t[s : s + n]) in grams for s in range(len(t) - n + 1)]
    covered = [any(found[max(0, i - n + 1) : i + 1]) for i in range(len(t))]
    return sum(covered) / len(t)


def _random_corpus(rng: np.random.Generator, docs: int, vocab: int) -> list[np.ndarray]:
    return [rng.integers(0, vocab, size=int(rng.integers(0, 60))) for _ in range(docs)]


def _examples(rng, corpus, vocab, count):
    out = []
    for i in range(count):
        doc = corpus[int(rng.integers(len(corpus)))]
        own = rng.integers(0, vocab, size=int(rng.integers(0, 30)))
        lo = int(rng.integers(0, max(doc.size, 1)))
        piece = doc[lo : lo + int(rng.integers(0, 25))]
        out.append(Example(i, i + 1, np.concatenate([own, piece, own[::-1]])))
    return out


@pytest.mark.parametrize("partitions,chunk_size", [(1, 10**6), (3, 50), (8, 500)])
def test_index_equals_an_in_memory_set_of_ngrams(tmp_path, partitions, chunk_size):
    rng = np.random.default_rng(partitions)
    n, vocab = 3, 12  # a small vocabulary: many n-grams recur within and across documents
    corpus = _random_corpus(rng, 80, vocab)
    grams = {tuple(int(x) for x in d[s : s + n]) for d in corpus for s in range(d.size - n + 1)}
    idx = build_index(tmp_path / "idx", corpus, _spec(n, partitions), chunk_size=chunk_size)
    assert len(idx) == len(grams) == idx.record["distinct_ngrams"]
    assert idx.record["documents"] == len(corpus)
    for p in range(partitions):
        part = np.asarray(idx.partition(p))
        assert part.dtype == np.uint64
        assert np.all(np.diff(part.astype(np.float64)) > 0) or part.size <= 1  # sorted, distinct
        assert np.all(part % np.uint64(partitions) == p)
    examples = _examples(rng, corpus, vocab, 60)
    rows = list(score_examples(idx, examples, threshold=0.5))
    want = [_reference_coverage(e.tokens, grams, n) for e in examples]
    assert [r["contamination"] for r in rows] == pytest.approx(want, abs=0)
    assert [r["contaminated"] for r in rows] == [w > 0.5 for w in want]
    assert any(0 < w < 1 for w in want)  # partial overlaps were exercised


def _corpus_index(tmp_path, n=8):
    corpus_doc = np.arange(1000, 1100)  # ids 1000..1099, once each
    return build_index(tmp_path / "idx", [corpus_doc], _spec(n, 4)), corpus_doc


def test_example_whose_second_half_is_copied_from_the_corpus_has_coverage_one_half(tmp_path):
    idx, doc = _corpus_index(tmp_path)
    own = np.arange(5000, 5020)  # never in the corpus: n-grams across the seam are not found
    example = np.concatenate([own, doc[30:50]])
    (row,) = score_examples(idx, [Example("x", 1, example)], threshold=0.5)
    assert row == {"id": "x", "contamination": 0.5, "contaminated": False}
    (row,) = score_examples(idx, [Example("x", 1, example)], threshold=0.49)
    assert row["contaminated"] is True


@pytest.mark.parametrize(
    "tokens,want",
    [
        (np.arange(5000, 5040), 0.0),  # no overlap
        (np.arange(1000, 1008), 1.0),  # exactly n tokens, all one corpus n-gram
        (np.arange(1000, 1007), 0.0),  # shorter than n: no n-gram, defined as 0
        (np.zeros(0, np.int64), 0.0),  # empty
        (np.concatenate([np.arange(1010, 1018), [7], np.arange(1040, 1048)]), 16 / 17),
    ],
)
def test_closed_form_coverage(tmp_path, tokens, want):
    idx, _ = _corpus_index(tmp_path)
    (row,) = score_examples(idx, [Example(0, 1, tokens)], threshold=0.5)
    assert row["contamination"] == want


def test_coverage_of_found_ngrams_counts_each_covered_token_once():
    # found n-grams at starts 0 and 2 (n=3) over 6 tokens cover tokens 0..4: 5 of 6
    assert coverage(6, np.array([True, False, True, False]), 3) == 5 / 6


def test_a_different_spec_is_refused_and_rebuild_replaces_it(tmp_path):
    docs = [np.arange(20)]
    build_index(tmp_path / "idx", docs, _spec(4, 2, corpus="a"))
    with pytest.raises(WorkdirMismatchError, match="--rebuild"):
        build_index(tmp_path / "idx", docs, _spec(4, 2, corpus="b"))
    idx = build_index(tmp_path / "idx", [np.arange(30)], _spec(4, 2, corpus="b"), rebuild=True)
    assert len(idx) == 27 and idx.record["corpus"] == "b"


def test_finished_index_is_reused_without_reading_the_corpus(tmp_path):
    build_index(tmp_path / "idx", [np.arange(20)], _spec(4, 2))

    def unread():
        raise AssertionError("the corpus was read again")
        yield

    assert len(build_index(tmp_path / "idx", unread(), _spec(4, 2))) == 17


def test_interrupted_merge_resumes_at_the_first_unwritten_partition(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    corpus = _random_corpus(rng, 40, 50)
    reference = build_index(tmp_path / "ref", corpus, _spec(3, 5), chunk_size=250)
    merged: list[int] = []
    real_merge = index_module._merge_partition

    def crash_after_two(root, p, runs):
        if len(merged) == 2:
            raise KeyboardInterrupt
        merged.append(p)
        return real_merge(root, p, runs)

    monkeypatch.setattr(index_module, "_merge_partition", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "idx", corpus, _spec(3, 5), chunk_size=250)
    assert not (tmp_path / "idx" / "index.json").exists()
    monkeypatch.setattr(index_module, "_merge_partition", real_merge)

    def unread():
        raise AssertionError("the corpus was read again")
        yield

    resumed = build_index(tmp_path / "idx", unread(), _spec(3, 5), chunk_size=250)
    for p in range(5):
        assert np.array_equal(resumed.partition(p), reference.partition(p))
    assert not (tmp_path / "idx" / "runs").exists()


def test_merges_by_several_workers_equal_one(tmp_path):
    rng = np.random.default_rng(1)
    corpus = _random_corpus(rng, 30, 40)
    one = build_index(tmp_path / "one", corpus, _spec(3, 4), chunk_size=40)
    two = build_index(tmp_path / "two", corpus, _spec(3, 4), chunk_size=40, workers=2)
    assert all(np.array_equal(one.partition(p), two.partition(p)) for p in range(4))
    assert isinstance(NgramIndex(tmp_path / "two"), NgramIndex)
