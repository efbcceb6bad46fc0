"""Builds Hugging Face transformers' LlamaForCausalLM as the independent reference."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def hf_llama(
    *,
    vocab=320,
    dim=64,
    layers=2,
    heads=4,
    kv_heads=2,
    ffn=160,
    tied=False,
    rope_scaling=None,
    max_pos=512,
    seed=0,
) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=dim,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling=rope_scaling,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tied,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # HF zero-inits nothing visible, but make norms non-trivial too
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


LLAMA31_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}
