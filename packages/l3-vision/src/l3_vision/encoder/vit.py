"""timm's VisionTransformer as the trunk of the Llama 3.2 Vision image encoder.

The trunk (``timm.models.vision_transformer.VisionTransformer``) holds the patch embedding,
class token, patch position embedding, pre-norm, the local layers and the post-norm; this
module adds what Mllama has on top: tile and aspect-ratio position embeddings with gates,
gated global layers (timm ``Block``s whose layer scales are tanh gates), padding of each tile
to a multiple of 8 tokens with the mask Mllama uses, and multi-layer features.

Attention runs over all tiles of an image at once in both stacks, as in the references.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import Attention, build_sincos2d_pos_embed
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from l3_vision.args import EncoderArgs
from l3_vision.encoder.tile_embeddings import AspectRatioEmbedding, TilePositionEmbedding
from l3_vision.errors import ImageError
from l3_vision.preprocess.tiling import supported_aspect_ratios

PAD_MULTIPLE = 8


class _AttentionWithoutOutputBias(Attention):
    """timm attention whose output projection has no bias (Mllama's o_proj), while the MLP
    keeps its biases (timm's ``proj_bias`` would drop both)."""

    def __init__(self, dim: int, **kwargs) -> None:
        kwargs["proj_bias"] = False
        super().__init__(dim, **kwargs)


class TanhGate(nn.Module):
    """``x * tanh(gate)`` with one scalar gate: stands in for a timm block's layer scale."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.full((1,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate.tanh()


def _block_kwargs(args: EncoderArgs) -> dict:
    return dict(
        num_heads=args.n_heads,
        mlp_ratio=args.mlp_dim / args.dim,
        qkv_bias=False,
        norm_layer=partial(nn.LayerNorm, eps=args.norm_eps),
        act_layer=nn.GELU,
        attn_layer=_AttentionWithoutOutputBias,
    )


def _gated_block(args: EncoderArgs) -> Block:
    block = Block(args.dim, **_block_kwargs(args))
    block.ls1 = TanhGate(math.pi / 4)
    block.ls2 = TanhGate(math.pi / 4)
    return block


def build_trunk(args: EncoderArgs) -> VisionTransformer:
    kwargs = _block_kwargs(args)
    return VisionTransformer(
        img_size=args.tile_size,
        patch_size=args.patch_size,
        in_chans=args.channels,
        num_classes=0,
        global_pool="",
        embed_dim=args.dim,
        depth=args.n_local_layers,
        class_token=True,
        pos_embed="learn",
        pre_norm=True,
        final_norm=True,
        **kwargs,
    )


class ImageEncoder(nn.Module):
    """Tiles [b, images, max_tiles, 3, t, t] -> features [b, images, max_tiles, tokens,
    output_dim], ``tokens`` = patches + class token per tile."""

    def __init__(self, args: EncoderArgs) -> None:
        super().__init__()
        self.args = args
        n_ratios = len(supported_aspect_ratios(args.max_tiles))
        self.trunk = build_trunk(args)
        self.pre_tile_embedding = AspectRatioEmbedding(n_ratios, args.max_tiles, args.dim)
        self.position_embedding = TilePositionEmbedding(
            n_ratios, args.max_tiles, args.n_patches, args.dim
        )
        self.post_tile_embedding = AspectRatioEmbedding(n_ratios, args.max_tiles, args.dim)
        self.global_blocks = nn.ModuleList(_gated_block(args) for _ in range(args.n_global_layers))
        self.init_embeddings()

    @torch.no_grad()
    def init_embeddings(self) -> None:
        """Class token N(0, 1/dim) as Mllama; patch positions 2-D sin-cos (MAE's, timm's
        ``build_sincos2d_pos_embed``) scaled to the same per-token norm, still learned.

        timm's std 0.02 equals Mllama's dim**-0.5 at ViT-H's width but is 9x weaker than the
        patch features at width 32, and random positions of any scale left a tiny encoder
        unable to say where an object is (held-out top/bottom at chance in most seeds): sin-cos
        positions make "how far down" a direction from the first step. Checkpoints overwrite
        both.
        """
        a = self.args
        grid = a.tile_size // a.patch_size
        nn.init.normal_(self.trunk.cls_token, std=a.dim**-0.5)
        if a.dim % 4:  # sin-cos needs four channels per frequency
            nn.init.normal_(self.trunk.pos_embed, std=a.dim**-0.5)
            return
        positions = build_sincos2d_pos_embed([grid, grid], a.dim) * (2 / a.dim) ** 0.5
        self.trunk.pos_embed[0, 0].zero_()
        self.trunk.pos_embed[0, 1:].copy_(positions)

    def forward(
        self,
        pixel_values: torch.Tensor,
        aspect_ratio_ids: torch.Tensor,
        aspect_ratio_mask: torch.Tensor,
    ) -> torch.Tensor:
        a = self.args
        self._check(pixel_values, aspect_ratio_ids, aspect_ratio_mask)
        b, m, t = pixel_values.shape[:3]
        n, d = a.n_patches, a.dim
        ids = aspect_ratio_ids.reshape(b * m)
        x = self.trunk.patch_embed(pixel_values.flatten(0, 2).to(self.trunk.cls_token.dtype))
        x = self.pre_tile_embedding(x.view(b * m, t, n - 1, d), ids).flatten(0, 1)
        x = torch.cat([self.trunk.cls_token.expand(x.shape[0], 1, d), x], dim=1)
        x = self.position_embedding(x.view(b * m, t, n, d), self.trunk.pos_embed[0], ids)
        x = self.trunk.norm_pre(x)
        pad = (-n) % PAD_MULTIPLE
        x = F.pad(x, (0, 0, 0, pad))
        mask = self._attention_mask(aspect_ratio_mask.reshape(b * m, t), n, n + pad)
        x = x.view(b * m, t * (n + pad), d)
        kept = []
        for i, block in enumerate(self.trunk.blocks):
            x = block(x, attn_mask=mask)
            if i in a.intermediate_layers:
                kept.append(x)
        x = self.trunk.norm(x)
        x = self.post_tile_embedding(x.view(b * m, t, n + pad, d), ids).view(
            b * m, t * (n + pad), d
        )
        for block in self.global_blocks:
            x = block(x, attn_mask=mask)
        x = x.view(b * m, t, n + pad, d)[:, :, :n]
        # Stacked on a new last axis then flattened: feature k of channel c sits at c * K + k,
        # the layout Mllama's projector weights expect.
        inter = torch.stack(
            [kept[a.intermediate_layers.index(i)] for i in a.intermediate_layers], dim=-1
        )
        inter = inter.reshape(b * m, t, n + pad, -1)[:, :, :n]
        return torch.cat([x, inter], dim=-1).view(b, m, t, n, a.output_dim)

    @staticmethod
    def _attention_mask(tile_mask: torch.Tensor, n: int, padded: int) -> torch.Tensor:
        """Boolean [images, 1, L, L] (True = attend): masked only where both the query and the
        key are padding (a padded token or a padding tile), exactly as Mllama masks."""
        is_pad = (tile_mask == 0)[:, :, None].expand(-1, -1, padded).clone()
        is_pad[:, :, n:] = True
        is_pad = is_pad.flatten(1)
        return ~(is_pad[:, :, None] & is_pad[:, None, :]).unsqueeze(1)

    def _check(self, pixel_values: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> None:
        a = self.args
        expected = (a.max_tiles, a.channels, a.tile_size, a.tile_size)
        if pixel_values.dim() != 6 or tuple(pixel_values.shape[2:]) != expected:
            raise ImageError(
                f"pixel_values shape {tuple(pixel_values.shape)}: expected "
                f"[batch, images, {', '.join(map(str, expected))}]"
            )
        if tuple(ids.shape) != tuple(pixel_values.shape[:2]) or tuple(mask.shape) != tuple(
            pixel_values.shape[:3]
        ):
            raise ImageError(
                f"aspect_ratio_ids {tuple(ids.shape)} / aspect_ratio_mask {tuple(mask.shape)} "
                f"do not match pixel_values {tuple(pixel_values.shape[:3])}"
            )
