from __future__ import annotations

from collections import Counter

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.mix import Mix


def _run(step, docs, tmp_path):
    step.label = "01.mix"
    step.setup()
    units = ["a", "b"]
    half = len(docs) // 2
    chunks = {"a": docs[:half], "b": docs[half:]}
    summary = step.reduce(
        units, {u: step.collect(c) for u, c in chunks.items()}.__getitem__, tmp_path
    )
    out = []
    for u in units:
        out += list(step.apply(chunks[u], ChunkContext(unit=u, workdir=tmp_path), tmp_path))
    return out, summary


def _corpus():
    docs = []
    for dom, n in (("general", 3000), ("math", 400), ("code", 2000), ("multilingual", 1000)):
        docs += [
            Document("t", f"{dom}{i}", source=f"src_{dom}", metadata={"domain": dom})
            for i in range(n)
        ]
    return docs


def test_mix_reaches_target_proportions_by_downsampling(tmp_path):
    out, summary = _run(Mix(), _corpus(), tmp_path)
    # math is the scarcest relative to its 25% target: total = 400 / 0.25 = 1600
    assert summary["target_total"] == 1600
    counts = Counter(d.metadata["domain"] for d in out)
    assert counts["math"] == 400
    for dom, share in (("general", 0.5), ("code", 0.17), ("multilingual", 0.08)):
        assert abs(counts[dom] - share * 1600) < 4 * (share * 1600) ** 0.5


def test_upsampling_repeats_documents_with_distinct_ids(tmp_path):
    out, _ = _run(Mix(total=13000, max_upsample=10), _corpus(), tmp_path)
    ids = [d.id for d in out]
    assert len(ids) == len(set(ids))
    math = [d for d in out if d.metadata["domain"] == "math"]
    assert abs(len(math) - 0.25 * 13000) < 150  # 400 documents repeated about 8 times
    assert any(d.id.endswith("#r7") for d in math)


def test_annealing_upsample_multiplies_a_source_and_sampling_is_deterministic(tmp_path):
    base, _ = _run(Mix(), _corpus(), tmp_path / "a")
    again, _ = _run(Mix(), _corpus(), tmp_path / "b")
    assert [d.id for d in base] == [d.id for d in again]
    up, _ = _run(Mix(upsample={"src_code": 2.0}), _corpus(), tmp_path / "c")
    n_code = sum(d.metadata["domain"] == "code" for d in base)
    n_up = sum(d.metadata["domain"] == "code" for d in up)
    assert abs(n_up - 2 * n_code) < 4 * n_code**0.5
