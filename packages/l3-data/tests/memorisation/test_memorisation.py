"""``l3-data memorisation`` on a tiny model trained to memorise four documents: every window
of those is reproduced, none of documents it never saw; the one-pass check agrees with
l3-core's own greedy ``generate`` token for token; short documents are counted, not used."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the 'memorisation' extra (l3-core[model]) is absent")

from l3_core import ModelArgs, Transformer, generate, save_checkpoint  # noqa: E402
from l3_core.exit_codes import ExitCode  # noqa: E402
from l3_core.shards import ShardDataset, write_manifest, write_shard  # noqa: E402
from l3_data.cli import main  # noqa: E402
from l3_data.errors import OptionError  # noqa: E402
from l3_data.memorisation import (  # noqa: E402
    greedy_matches,
    matched_prefix,
    measure_memorisation,
    sample_windows,
)

VOCAB, DOC_LEN = 64, 40


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A 2-layer model trained until it predicts every token of 4 random documents."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend on a loaded CI machine
    try:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        seen = rng.integers(0, VOCAB, size=(4, DOC_LEN))
        unseen = rng.integers(0, VOCAB, size=(4, DOC_LEN))
        args = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=VOCAB, multiple_of=32,
                         max_seq_len=64)  # fmt: skip
        model = Transformer(args)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        docs = torch.as_tensor(seen)
        for _ in range(80):
            loss = model.loss(docs[:, :-1], docs[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            assert bool((model(docs[:, :-1]).argmax(-1) == docs[:, 1:]).all())
    finally:
        torch.set_num_threads(threads)
    root = tmp_path_factory.mktemp("mem")
    shards = root / "shards"
    short = [(rng.integers(0, VOCAB, size=10), "seen") for _ in range(2)]
    write_shard(shards, "a", [(d, "seen") for d in seen] + short, vocab_size=VOCAB,
                tokenizer="t")  # fmt: skip
    write_shard(shards, "b", [(d, "unseen") for d in unseen], vocab_size=VOCAB, tokenizer="t")
    write_manifest(shards)
    return model, ShardDataset(shards), root


def test_memorised_documents_are_reproduced_and_unseen_ones_are_not(memorised):
    model, dataset, _ = memorised
    report = measure_memorisation(
        model, dataset, prompt_lengths=[8, 16], target_length=8, samples=100, seed=1
    )
    for s in report["scenarios"]:
        seen, unseen = s["per_source"]["seen"], s["per_source"]["unseen"]
        assert (seen["evaluated"], seen["skipped_short"], seen["rate"]) == (4, 2, 1.0)
        assert (unseen["evaluated"], unseen["skipped_short"], unseen["rate"]) == (4, 0, 0.0)
        assert (s["evaluated"], s["skipped_short"], s["exact"], s["rate"]) == (8, 2, 4, 0.5)


def test_one_pass_check_equals_l3_cores_greedy_generate(memorised):
    model, dataset, _ = memorised
    n, m = 8, 12
    windows = []
    for seed in range(3):  # different offsets into every document
        windows += sample_windows(dataset, 100, n, m, seed)[0]
    tokens = torch.as_tensor(np.stack([w.tokens.astype(np.int64) for w in windows]))
    hits = greedy_matches(model, tokens, n)
    prefix = matched_prefix(hits)
    decoded = generate(model, [w.tokens[:n].tolist() for w in windows], m)
    for w, out, k, row in zip(windows, decoded, prefix.tolist(), hits):
        truth = w.tokens[n:].tolist()
        same = [a == b for a, b in zip(out, truth)]
        first_miss = same.index(False) if False in same else m
        assert k == first_miss
        assert bool(row.all()) == (out == truth)
    assert {int(k) for k in prefix} != {m}  # both outcomes occurred


def test_sampling_is_seeded_and_skips_documents_too_short(memorised):
    _, dataset, _ = memorised
    a, skipped = sample_windows(dataset, 100, 20, 10, seed=5)
    b, _ = sample_windows(dataset, 100, 20, 10, seed=5)
    c, _ = sample_windows(dataset, 100, 20, 10, seed=6)
    assert [(w.doc, w.start) for w in a] == [(w.doc, w.start) for w in b]
    assert [(w.doc, w.start) for w in a] != [(w.doc, w.start) for w in c]
    assert skipped == {"seen": 2}  # the two 10-token documents
    assert len(a) == 8 and all(w.tokens.size == 30 for w in a)
    for w in a:  # each window is the document's own tokens at its offset
        shard_doc = dataset.document_index()[w.doc]
        doc = dataset.shards[shard_doc[0]].document(shard_doc[1])
        assert np.array_equal(w.tokens, doc[w.start : w.start + 30])
    assert len(sample_windows(dataset, 3, 8, 8, seed=0)[0]) <= 3


def test_command_writes_the_report_and_prints_rates_per_source(memorised, capsys):
    model, dataset, root = memorised
    ckpt = save_checkpoint(model, root / "ckpt")
    out = root / "mem.json"
    argv = ["memorisation", "--shards", str(dataset.directory), "--checkpoint", str(ckpt)]
    argv += ["--prompt-lengths", "8", "--target-length", "8", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [s["rate"] for s in report["scenarios"]] == [0.5]
    assert report["scenarios"][0]["per_source"]["seen"]["rate"] == 1.0
    printed = capsys.readouterr().out
    assert "100.00%" in printed and "0.00%" in printed
    # a window longer than the model's context is refused in one line
    long = [*argv[:5], "--prompt-lengths", "60", "--target-length", "8"]
    assert main(long) == ExitCode.CONFIG
    assert "max_seq_len is 64" in capsys.readouterr().err


def test_lengths_must_be_positive(memorised):
    model, dataset, _ = memorised
    with pytest.raises(OptionError, match="positive"):
        measure_memorisation(model, dataset, prompt_lengths=[0], target_length=8)


def test_without_the_extra_the_command_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    argv = ["memorisation", "--shards", str(tmp_path), "--checkpoint", str(tmp_path)]
    assert main(argv) == ExitCode.DEPENDENCY
    assert "pip install 'l3-data[memorisation]'" in capsys.readouterr().err
