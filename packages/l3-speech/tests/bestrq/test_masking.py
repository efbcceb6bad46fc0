"""Span masks: 32-frame spans started with probability 2.5%, never on padding."""

from __future__ import annotations

import torch

from l3_speech.bestrq.masking import expected_masked_fraction, span_mask


def test_masked_fraction_matches_the_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((16,), 20_000)
    mask = span_mask(lengths, 20_000, prob=0.025, span=32, generator=g)
    want = expected_masked_fraction(0.025, 32)  # 1 - 0.975 ** 32 = 0.555
    assert abs(want - 0.5553) < 1e-3
    assert abs(mask.float().mean().item() - want) < 0.01


def test_every_masked_run_is_at_least_one_span_long_unless_cut_by_the_end() -> None:
    g = torch.Generator().manual_seed(1)
    mask = span_mask(torch.tensor([3000]), 3000, prob=0.01, span=32, generator=g)[0].tolist()
    runs, n = [], 0
    for m in [*mask, False]:
        if m:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    assert runs and min(runs[:-1] if mask[-1] else runs) >= 32


def test_padding_is_never_masked_and_every_utterance_gets_a_span() -> None:
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([50, 7, 300])
    mask = span_mask(lengths, 300, prob=0.0, span=32, generator=g)
    for row, n in zip(mask, lengths.tolist()):
        assert not row[n:].any()
        assert row[:n].any()
