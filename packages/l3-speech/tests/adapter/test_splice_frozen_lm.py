"""Audio embeddings go in at the placeholder of a frozen l3-core Transformer."""

from __future__ import annotations

import pytest
import torch

from l3_core import ModelArgs
from l3_core.model import Transformer
from l3_speech.adapter.adapter import SpeechAdapter, adapter_preset
from l3_speech.asr.model import SpeechLM
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset
from l3_speech.errors import AudioInputError

PLACEHOLDER, PAD = 300, 301


def _model() -> SpeechLM:
    torch.manual_seed(0)
    lm = Transformer.build(ModelArgs.from_preset("llama3-tiny"), seed=0)
    enc = ConformerEncoder(encoder_preset("test"))
    adapter = SpeechAdapter(adapter_preset("test"), enc.args.dim, lm.args.dim)
    return SpeechLM(enc, adapter, lm, PLACEHOLDER, PAD)


def test_text_only_rows_give_the_frozen_models_logits_exactly() -> None:
    m = _model()
    rows = [[1, 5, 9, 200, 7], [4, 4, 2, 8, 8]]
    with torch.no_grad():
        got, ids, lengths = m.logits(rows, [None, None])
        want = m.lm(torch.tensor(rows))
    assert torch.equal(got, want)
    assert ids.tolist() == rows and lengths == [5, 5]


def test_audio_replaces_the_placeholder_and_text_after_it_keeps_its_embeddings() -> None:
    m = _model()
    audio = torch.randn(3, m.lm.args.dim)
    with torch.no_grad():
        logits, ids, lengths = m.logits([[1, 2, PLACEHOLDER, 3], [1, 2]], [audio, None])
    assert lengths == [6, 2]
    assert ids.tolist() == [[1, 2, -1, -1, -1, 3], [1, 2, PAD, PAD, PAD, PAD]]
    # Causal: logits before the audio do not depend on it.
    with torch.no_grad():
        prefix = m.lm(torch.tensor([[1, 2]]))
    torch.testing.assert_close(logits[0, :2], prefix[0])
    torch.testing.assert_close(logits[1, :2], prefix[0])


def test_only_encoder_and_adapter_parameters_get_gradients() -> None:
    m = _model().train()
    feats = torch.randn(2, 64, 80)
    rows = [[1, 2, PLACEHOLDER, 3, 4, 5], [1, PLACEHOLDER, 6, 7]]
    loss, _ = m.loss(rows, [2, 2], feats, torch.tensor([64, 40]))
    loss.backward()
    assert not m.lm.training
    assert all(p.grad is None and not p.requires_grad for p in m.lm.parameters())
    names = {n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {n.split(".")[0] for n in names} == {"encoder", "adapter"}
    assert len(names) == len(list(m.parameters()))
    assert not any(k.startswith("lm.") for k in m.state_dict())


def test_placeholder_count_must_match_the_audio() -> None:
    m = _model()
    with pytest.raises(AudioInputError, match="row 0: 0 audio placeholders for one audio input"):
        m.logits([[1, 2]], [torch.randn(2, m.lm.args.dim)])
    with pytest.raises(AudioInputError, match="row 0: 2 audio placeholders"):
        m.logits([[PLACEHOLDER, PLACEHOLDER]], [torch.randn(2, m.lm.args.dim)])


def test_adapter_halves_the_frame_rate_and_the_paper_adapter_is_about_100m() -> None:
    enc = ConformerEncoder(encoder_preset("test"))
    adapter = SpeechAdapter(adapter_preset("test"), enc.args.dim, 64)
    out, lengths = adapter(torch.randn(2, 11, enc.args.dim), torch.tensor([11, 6]))
    assert out.shape == (2, 6, 64) and lengths.tolist() == [6, 3]
    with torch.device("meta"):
        n = SpeechAdapter(adapter_preset("llama3-speech"), 1536, 4096).num_params()
    assert 80e6 < n < 120e6, n
