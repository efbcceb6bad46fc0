"""The DPO objective on packed pairs equals the loss computed pair by pair, unpacked."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_align.config import DPOConfig
from l3_align.data import ChatEncoder, encode_preference_file
from l3_align.data.packing import pack
from l3_align.dpo.objective import DPOObjective, logp_mask, pair_items
from l3_align.train.plain import TokenLosses, one_process
from l3_core.checkpoint import load_checkpoint
from l3_core.jsonl import Exclusions


def _alone(model, seq, mask):
    """Sum of log p(token) over ``mask`` with the sequence run alone (no packing)."""
    tokens = torch.from_numpy(seq.tokens)[None]
    logp = torch.log_softmax(model(tokens)[0, :-1].float(), -1)
    picked = logp.gather(-1, tokens[0, 1:, None]).squeeze(-1)
    m = torch.from_numpy(mask[1:])
    return picked[m].sum(), int(m.sum())


def test_packed_dpo_loss_equals_unpacked_reference_formula(model_dir, pref_file, tokenizer):
    policy = load_checkpoint(model_dir, dtype=torch.float32)
    reference = load_checkpoint(model_dir, dtype=torch.float32)
    with torch.no_grad():  # a policy that differs from its reference
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pairs = [
        e.value
        for e in encode_preference_file(pref_file, ChatEncoder(tokenizer, 128), Exclusions())
    ]
    cfg = DPOConfig()
    want = []
    with torch.no_grad():
        refs = [
            (
                _alone(reference, p.chosen, logp_mask(p.chosen, True))[0].item(),
                _alone(reference, p.rejected, logp_mask(p.rejected, True))[0].item(),
            )
            for p in pairs
        ]
        for p, (rc, rr) in zip(pairs, refs):
            pc, _ = _alone(policy, p.chosen, logp_mask(p.chosen, True))
            pr, _ = _alone(policy, p.rejected, logp_mask(p.rejected, True))
            nll_sum, n = _alone(policy, p.chosen, p.chosen.scored)
            z = (pc - pr) - (rc - rr)
            want.append(-F.logsigmoid(0.1 * z) + 0.2 * (-nll_sum / n))
        rows = pack([pair_items(p, True, r) for p, r in zip(pairs, refs)], 128, tokenizer.pad_id)
        assert rows.n_rows < len(pairs)  # several pairs share a row
        obj = DPOObjective(cfg)
        net = TokenLosses(policy)
        total, count = 0.0, 0
        for micro in obj.micro_batches(rows, one_process(3)):
            parts = obj.loss(micro, obj.forward(net, micro))
            total += float(parts.loss_sum)
            count += int(parts.count)
    assert count == len(pairs)
    torch.testing.assert_close(total / count, float(torch.stack(want).mean()), atol=1e-5, rtol=1e-5)


def test_policy_equal_to_reference_has_zero_margin_and_half_accuracy(
    model_dir, pref_file, tokenizer
):
    model = load_checkpoint(model_dir, dtype=torch.float32)
    pairs = [
        e.value
        for e in encode_preference_file(pref_file, ChatEncoder(tokenizer, 128), Exclusions())
    ]
    from l3_align.dpo.reference import compute_reference_logps

    refs = compute_reference_logps(model, pairs, True, 128, tokenizer.pad_id, batch_rows=2)
    rows = pack([pair_items(p, True, tuple(r)) for p, r in zip(pairs, refs)], 128, tokenizer.pad_id)
    obj = DPOObjective(DPOConfig(losses={"sigmoid": 1.0}))
    with torch.no_grad():
        (micro,) = obj.micro_batches(rows, one_process(rows.n_rows))
        parts = obj.loss(micro, obj.forward(TokenLosses(model), micro))
    n = float(parts.count)
    assert abs(float(parts.metrics["reward_margin"])) / n < 1e-5
    assert abs(float(parts.loss_sum) / n - torch.log(torch.tensor(2.0)).item()) < 1e-5
    assert float(parts.metrics["reward_accuracy"]) / n == 0.5
