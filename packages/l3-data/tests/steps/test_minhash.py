from __future__ import annotations

import random
import re

import numpy as np

from l3_data.document import Document
from l3_data.steps.minhash import EMPTY, MinHasher, cluster, cluster_members, first_of_cluster


def _reference_signature(h: MinHasher, text: str) -> np.ndarray:
    """The same hash family evaluated with Python integers, one function at a time."""
    shingles = [int(x) for x in h.shingles(text)]
    out = []
    for a, b in zip(h.a.tolist(), h.b.tolist()):
        out.append(min(((a * x + b) % 2**64) >> 32 for x in shingles))
    return np.array(out, dtype=np.uint32)


def test_vectorised_signatures_equal_a_per_function_reference(rng, prose):
    h = MinHasher(num_perm=16, ngram=3, block_shingles=64)  # small blocks: many block edges
    texts = [prose(rng, rng.randint(1, 80)) for _ in range(12)]
    sig = h.signatures(texts)
    for t, s in zip(texts, sig):
        assert np.array_equal(s, _reference_signature(h, t))


def test_signature_does_not_depend_on_the_rest_of_the_batch(rng, prose):
    h = MinHasher(num_perm=32)
    texts = [prose(rng, 50) for _ in range(5)]
    assert np.array_equal(h.signatures(texts)[2], h.signatures([texts[2]])[0])


def test_signature_agreement_estimates_jaccard(rng, prose):
    h = MinHasher(num_perm=512, ngram=2)
    base = prose(rng, 400).split()
    for edit in (0.05, 0.2, 0.5):
        other = [w if rng.random() > edit else f"x{rng.random()}" for w in base]
        a, b = " ".join(base), " ".join(other)
        sa, sb = set(h.shingles(a).tolist()), set(h.shingles(b).tolist())
        jaccard = len(sa & sb) / len(sa | sb)
        sig = h.signatures([a, b])
        estimate = float((sig[0] == sig[1]).mean())
        assert abs(estimate - jaccard) < 0.06, (edit, estimate, jaccard)


def test_text_without_words_has_empty_signature_and_is_never_clustered():
    h = MinHasher(num_perm=16)
    sig = h.signatures(["...", "!!!", "real words here"])
    assert (sig[:2] == EMPTY).all()
    labels = cluster(sig, bands=4, rows=4, threshold=0.5)
    assert len(set(labels.tolist())) == 3


def _mutate(rng: random.Random, text: str, n_edits: int) -> str:
    ws = re.split(r"(\s+)", text)
    for i in rng.sample([i for i, w in enumerate(ws) if not w.isspace()], n_edits):
        ws[i] = "zz" + ws[i]
    return "".join(ws)


def test_clusters_recover_planted_near_duplicates_and_keep_the_first(rng, prose):
    originals = [prose(rng, 200) for _ in range(60)]
    texts, truth = [], []
    for i, t in enumerate(originals):
        texts.append(t)
        if i % 3 == 0:  # a copy with 2 of its 200 words edited: Jaccard about 0.9
            texts.append(_mutate(rng, t, 2))
            truth.append((len(texts) - 2, len(texts) - 1))
    h = MinHasher(num_perm=112)
    labels = cluster(h.signatures(texts), bands=14, rows=8, threshold=0.7)
    members = cluster_members(labels)
    assert sorted(tuple(int(x) for x in m) for m in members) == truth
    keep = first_of_cluster(labels)
    assert keep.sum() == len(originals)
    assert all(keep[a] and not keep[b] for a, b in truth)


def test_group_keeps_clusters_within_a_language(rng, prose):
    t = prose(rng, 100)
    h = MinHasher(num_perm=64)
    sig = h.signatures([t, t, t])
    labels = cluster(sig, 8, 8, 0.7, group=np.array([1, 2, 1], dtype=np.uint64))
    assert labels[0] == labels[2] != labels[1]


def test_text_without_spaces_is_shingled_by_characters():
    a = (
        "北京时间昨天晚上，国家统计局发布了最新的经济数据，显示第三季度国内生产总值同比增长百分之五，"
        "高于市场此前的普遍预期，消费和投资均有明显回升，出口增速则略有放缓。"
    )
    b = a.replace("昨天晚上", "昨晚")  # a small edit
    c = (
        "今年夏天全国多地出现持续高温天气，气象部门提醒公众注意防暑降温，合理安排户外活动时间，"
        "农业部门也发布通知，要求各地做好抗旱保苗工作，确保秋粮生产稳定。"
    )
    h = MinHasher(num_perm=112)
    assert len(h.shingles(a)) > 50  # characters, not two clause-long "words"
    labels = cluster(h.signatures([a, b, c]), bands=14, rows=8, threshold=0.5)
    assert labels[0] == labels[1] != labels[2]


def test_exact_jaccard_equals_python_sets(rng, prose):
    from l3_data.steps.minhash import exact_jaccard

    h = MinHasher(num_perm=16, ngram=3)
    texts = [prose(rng, 60) for _ in range(3)]
    texts.append(texts[0].replace("the", "zzz"))
    sets = [set(h.shingles(t).tolist()) for t in texts]
    arrays = {i: np.unique(h.shingles(t)) for i, t in enumerate(texts)}
    pairs = np.array([[0, 1], [0, 3], [2, 3]])
    got = exact_jaccard(lambda idx: {int(i): arrays[int(i)] for i in idx})(pairs)
    want = [len(sets[a] & sets[b]) / len(sets[a] | sets[b]) for a, b in pairs.tolist()]
    assert np.allclose(got, want) and got[1] > 0.3


def test_candidate_rate_follows_the_s_curve():
    from l3_data.steps.minhash import candidate_pairs, candidate_probability

    # Two shingle sets with Jaccard exactly 0.5 (200 shared of 400), hashed under 300 seeds.
    v = np.random.default_rng(0).integers(0, 2**63, 400, dtype=np.uint64)  # like shingle hashes
    a, b = v[:300], v[100:]
    for bands, rows in ((20, 5), (14, 8)):
        hits = [
            len(
                candidate_pairs(
                    MinHasher(bands * rows, seed=s).signatures_of_shingles([a, b]), bands, rows
                )
            )
            for s in range(300)
        ]
        want = float(candidate_probability(0.5, bands, rows))
        assert abs(np.mean(hits) - want) < 0.08, (bands, rows, np.mean(hits), want)


def test_default_step_finds_five_percent_word_edits_and_joins_no_unrelated_text(
    rng, prose, tmp_path
):
    from l3_data.steps.minhash import MinHashDedup

    step = MinHashDedup()
    step.setup()
    texts = [prose(rng, 300) for _ in range(120)]
    copies = []
    for t in texts[:60]:
        ws = t.split(" ")
        for i in rng.sample(range(len(ws)), len(ws) // 20):
            ws[i] = f"edit{rng.randrange(10**9)}"
        copies.append(" ".join(ws))
    docs = [Document(t, str(i)) for i, t in enumerate(texts + copies)]
    # two chunks, so the reduce loads shingles across units
    arrays = {"a": step.collect(docs[:100]), "b": step.collect(docs[100:])}
    summary = step.reduce(["a", "b"], arrays.__getitem__, tmp_path)
    keep = np.concatenate([np.load(tmp_path / f"{u}.keep.npy") for u in "ab"])
    assert keep[:120].all(), "an unrelated document was removed"
    assert (~keep[120:]).mean() >= 0.9 and summary["duplicates"] == int((~keep).sum())
