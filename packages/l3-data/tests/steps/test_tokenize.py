from __future__ import annotations

from l3_core.shards import ShardDataset
from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.tokenize import Tokenize


def test_tokenize_writes_l3_core_shards_that_decode_back(tmp_path, rng, prose):
    step = Tokenize(output=str(tmp_path / "shards"), tokenizer="llama3", batch_size=3)
    step.label = "01.tokenize"
    step.setup()
    texts = {}
    for unit in ("t0000c00000", "t0000c00001"):
        docs = [
            Document(prose(rng, 30), f"{unit}-{i}", source="web" if i % 2 else "books")
            for i in range(5)
        ]
        texts[unit] = docs
        ctx = ChunkContext(unit=unit, workdir=tmp_path)
        assert list(step.run(docs, ctx)) == docs
    summary = step.finalize(tmp_path)
    ds = ShardDataset(tmp_path / "shards", expect_tokenizer=step._tok.fingerprint())
    assert summary["documents"] == ds.n_docs == 10 and summary["tokens"] == ds.n_tokens
    all_docs = [d for u in texts.values() for d in u]
    for (ids, source), doc in zip(ds.documents(), all_docs):
        assert ids[0] == step._tok.bos_id and ids[-1] == step._tok.eos_id
        assert step._tok.decode(ids[1:-1].tolist()) == doc.text
        assert source == doc.source
