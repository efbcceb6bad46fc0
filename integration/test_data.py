"""l3-data writes token shards that l3-core reads back, with the same tokenizer."""

from __future__ import annotations

from stages.data import run

from l3_core.shards import ShardDataset
from l3_core.tokenizer import Tokenizer, llama3_tokenizer_path


def test_data_stage_writes_shards_l3_core_reads_and_decodes(tmp_path):
    figures = run(tmp_path)
    tok = Tokenizer.from_file(llama3_tokenizer_path())
    ds = ShardDataset(tmp_path / "data_shards", expect_tokenizer=tok.fingerprint())
    assert ds.n_docs == figures["documents_out"] > 50
    assert figures["documents_in"] == figures["documents_out"] + figures["rejected"]
    ids, source = next(ds.documents())
    text = tok.decode(ids[1:-1].tolist())
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert "import" in text or "def " in text
    assert source in {"json", "email", "http", "urllib", "xml", "logging", "importlib", "asyncio"}
