"""The Llama 3 layer spec: Megatron-core's local spec with our RMSNorm and CP attention."""

from __future__ import annotations

import copy

from l3_core.parallel.attention import CPAttention
from l3_core.parallel.norm import RMSNorm


def llama_layer_spec():
    """``get_gpt_layer_local_spec()`` with the project's norm and attention swapped in."""
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec

    spec = copy.deepcopy(get_gpt_layer_local_spec(normalization="RMSNorm"))
    sub = spec.submodules
    sub.input_layernorm = RMSNorm
    sub.pre_mlp_layernorm = RMSNorm
    sub.self_attention.submodules.core_attention = CPAttention
    return spec


def llama_block_spec(config, vp_stage: int | None = None):
    """The decoder block of this pipeline stage (and virtual stage), final norm included."""
    from megatron.core.transformer.transformer_block import (
        TransformerBlockSubmodules,
        get_num_layers_to_build,
    )

    n_local = get_num_layers_to_build(config, vp_stage=vp_stage)
    return TransformerBlockSubmodules(
        layer_specs=[llama_layer_spec()] * n_local, layer_norm=RMSNorm
    )
