"""Reference log-probs are cached with fingerprints and refused when the model or data changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l3_align.data import ChatEncoder, encode_preference_file
from l3_align.dpo.reference import compute_reference_logps, default_cache_path, reference_logps
from l3_align.synthetic import preference_rows
from l3_core.checkpoint import load_checkpoint
from l3_core.errors import InputError
from l3_core.jsonl import Exclusions, write_jsonl


def _pairs(path, tokenizer):
    return [
        e.value for e in encode_preference_file(path, ChatEncoder(tokenizer, 128), Exclusions())
    ]


def test_values_equal_each_pair_alone_for_any_packing(model_dir, pref_file, tokenizer):
    model = load_checkpoint(model_dir, dtype=torch.float32)
    pairs = _pairs(pref_file, tokenizer)
    a = compute_reference_logps(model, pairs, True, 128, tokenizer.pad_id, batch_rows=1)
    b = compute_reference_logps(model, pairs, True, 80, tokenizer.pad_id, batch_rows=5)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert not np.isnan(a).any() and (a < 0).all()


def test_cache_is_reused_and_refused_when_model_or_data_changed(
    model_dir, pref_file, tokenizer, tmp_path
):
    model = load_checkpoint(model_dir, dtype=torch.float32)
    pairs = _pairs(pref_file, tokenizer)
    cache = default_cache_path(pref_file)
    assert cache.parent == pref_file.parent
    first = reference_logps(model, pairs, cache, True, 128, tokenizer.pad_id)
    stamp = cache.stat().st_mtime_ns
    again = reference_logps(model, pairs, cache, True, 128, tokenizer.pad_id)
    np.testing.assert_array_equal(first, again)
    assert cache.stat().st_mtime_ns == stamp  # read, not recomputed

    with torch.no_grad():
        model.norm.weight.add_(1e-3)
    with pytest.raises(InputError, match="belong to another reference model"):
        reference_logps(model, pairs, cache, True, 128, tokenizer.pad_id)
    other = tmp_path / "other.jsonl"
    write_jsonl(other, preference_rows(24, seed=6))
    model = load_checkpoint(model_dir, dtype=torch.float32)
    with pytest.raises(InputError, match="belong to another data"):
        reference_logps(model, _pairs(other, tokenizer), cache, True, 128, tokenizer.pad_id)
    with pytest.raises(InputError, match="belong to another data"):  # the masks count too
        reference_logps(model, pairs, cache, False, 128, tokenizer.pad_id)
    fresh = reference_logps(model, pairs, cache, False, 128, tokenizer.pad_id, recompute=True)
    assert (fresh < first).all()  # formatting tokens now inside the sums


def test_corrupt_cache_is_an_input_error(model_dir, pref_file, tokenizer):
    cache = default_cache_path(pref_file)
    cache.write_bytes(b"not safetensors")
    model = load_checkpoint(model_dir, dtype=torch.float32)
    with pytest.raises(InputError, match="not a reference log-prob file"):
        reference_logps(model, _pairs(pref_file, tokenizer), cache, True, 128, tokenizer.pad_id)
