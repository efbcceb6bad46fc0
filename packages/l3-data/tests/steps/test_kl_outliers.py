from __future__ import annotations

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.kl_outliers import KLOutliers


def test_document_of_rare_tokens_is_an_outlier_and_normal_prose_is_not(tmp_path, rng, prose):
    docs = [Document(prose(rng, 200, vocab=300), f"d{i}") for i in range(200)]
    blob = Document(" ".join(f"{rng.getrandbits(64):x}" for _ in range(200)), "blob")
    docs.insert(100, blob)
    step = KLOutliers(bins=1 << 14)
    step.label = "01.kl_outliers"
    units = ["a", "b"]
    arrays = {"a": step.collect(docs[:120]), "b": step.collect(docs[120:])}
    step.reduce(units, arrays.__getitem__, tmp_path)
    ctx = ChunkContext(unit="a", workdir=tmp_path)
    kept = list(step.apply(docs[:120], ctx, tmp_path))
    assert [e["id"] for e in ctx.excluded] == ["blob"]
    assert len(kept) == 119
    normal = [d.metadata["token_kl"] for d in kept]
    assert max(normal) < blob.metadata["token_kl"] - 3
