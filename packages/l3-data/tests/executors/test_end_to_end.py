"""A trained domain classifier, the data mix and tokenisation, wired through
the engine from a pipeline file."""

from __future__ import annotations

import json

from l3_core.shards import ShardDataset
from l3_data.classifier import train_classifier
from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline


def _code(rng, k):
    return "\n".join(
        f"def f{k}_{j}(x):\n    return x * {rng.randint(0, 9)} + {j}" for j in range(4)
    )


def test_classified_domains_are_mixed_to_target_shares_in_the_shards(tmp_path, rng, prose):
    texts = [_code(rng, i) if i % 2 else prose(rng, 60) for i in range(100)]
    labels = ["code" if i % 2 else "general" for i in range(100)]
    train_classifier(texts, labels, tmp_path / "domain.npz", kind="sklearn", buckets=50_000)
    rows = [{"id": f"g{i}", "text": prose(rng, 60), "source": "web"} for i in range(300)]
    rows += [{"id": f"c{i}", "text": _code(rng, 1000 + i), "source": "github"} for i in range(100)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.toml").write_text("""
[pipeline]
workdir = "work"
chunk_size = 64
workers = 2
[input]
paths = ["in.jsonl"]
[[steps]]
type = "classify"
model = "domain.npz"
field = "domain"
[[steps]]
type = "mix"
targets = { general = 0.5, code = 0.5 }
[[steps]]
type = "tokenize"
tokenizer = "llama3"
output = "shards"
""")
    report = run_pipeline(Pipeline.from_toml(tmp_path / "p.toml"), progress=False)
    mix = report["global"]["02.mix"]
    assert mix["input_per_domain"] == {"code": 100, "general": 300, "other": 0}
    assert mix["target_total"] == 200
    ds = ShardDataset(tmp_path / "shards")
    per_source = ds.manifest["docs_per_source"]
    assert per_source["github"] == 100  # the scarce domain is kept whole
    assert abs(per_source["web"] - 100) <= 30  # Bernoulli(1/3) over 300 documents
    assert ds.n_docs == report["documents_out"]
    assert report["steps"]["01.classify"]["domain:code"] == 100
