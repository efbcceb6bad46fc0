"""The CTC term reads the frozen LM's embeddings and trains only encoder and adapter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_core import ModelArgs
from l3_core.model import Transformer
from l3_speech.adapter.adapter import SpeechAdapter, adapter_preset
from l3_speech.asr.model import SpeechLM
from l3_speech.asr.objective import asr_step, ctc_embedding_loss
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset


def _model() -> SpeechLM:
    torch.manual_seed(0)
    lm = Transformer.build(ModelArgs.from_preset("llama3-tiny"), seed=0)
    enc = ConformerEncoder(encoder_preset("test"))
    return SpeechLM(
        enc, SpeechAdapter(adapter_preset("test"), enc.args.dim, lm.args.dim), lm, 300, 301
    )


def test_ctc_is_low_when_audio_embeddings_are_the_target_tokens_embeddings() -> None:
    m = _model()
    table = m.lm.tok_embeddings.weight.detach()
    blank, seq = 5, [7, 9, 7]
    # blank, 7, 7, blank, 9, 7: the path collapses to 7 9 7; scaled so the softmax is sharp.
    good = 10 * table[[blank, 7, 7, blank, 9, 7]]
    bad = 10 * table[[blank, 3, 3, blank, 4, 4]]
    assert ctc_embedding_loss(m, [good], [seq], blank) < 0.1 * ctc_embedding_loss(
        m, [bad], [seq], blank
    )
    log_probs = F.log_softmax(good @ table.t(), -1)[:, None]
    want = F.ctc_loss(
        log_probs, torch.tensor(seq), torch.tensor([6]), torch.tensor([3]), blank=blank
    )
    torch.testing.assert_close(ctc_embedding_loss(m, [good], [seq], blank), want)


def test_asr_step_adds_weighted_ctc_and_leaves_the_lm_untouched() -> None:
    m = _model().train()
    rows = [[1, 2, 300, 3, 4, 5]]
    feats, lengths = torch.randn(1, 80, 80), torch.tensor([80])
    loss, metrics = asr_step(m, rows, [2], feats, lengths, [[4, 5]], blank=6, ctc_weight=0.5)
    assert abs(metrics["loss"] - (metrics["lm_loss"] + 0.5 * metrics["ctc_loss"])) < 1e-4
    loss.backward()
    assert all(p.grad is None for p in m.lm.parameters())
