"""State-dict hooks that keep fused weights under their separate checkpoint names.

Attention stores wq/wk/wv as one ``wqkv`` matrix and the feed-forward w1/w3 as one ``w13``
matrix, because one large GEMM runs faster than several small ones (most of all on CPUs and at
batch 1 decoding). Checkpoints, Megatron conversion and Hugging Face mapping still see
``wq.weight``, ``wk.weight``, ``wv.weight``, ``w1.weight`` and ``w3.weight``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def register_fused_weight(module: nn.Module, fused: str, parts: Sequence[str],
                          sizes: Sequence[int]) -> None:
    """Expose ``<fused>.weight`` (rows = ``parts`` stacked, ``sizes`` rows each) as the parts."""

    def split(mod, state_dict, prefix, local_metadata):
        weight = state_dict.pop(f"{prefix}{fused}.weight")
        for name, chunk in zip(parts, weight.split(list(sizes), dim=0)):
            state_dict[f"{prefix}{name}.weight"] = chunk

    def merge(mod, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        keys = [f"{prefix}{name}.weight" for name in parts]
        if all(k in state_dict for k in keys):
            state_dict[f"{prefix}{fused}.weight"] = torch.cat([state_dict.pop(k) for k in keys])

    module.register_state_dict_post_hook(split)
    module.register_load_state_dict_pre_hook(merge)
