"""The vision-language model: an image encoder, a projector, gated cross-attention adapters
inserted into a frozen l3-core :class:`~l3_core.model.Transformer`, and new token embeddings.

Token ids below the text vocabulary embed through the frozen model's table; the
``n_extra_tokens`` ids after it (``<|image|>`` first) through a new, trainable table. A text-only
forward skips the adapters and equals the frozen model's forward exactly; with images, the
zero-initialised gates make a new model's logits equal the frozen model's too.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model import Transformer
from l3_vision._core_seam import blocks_with_insertions, hook_layers
from l3_vision.adapters import CrossAttentionLayer, ImageContext
from l3_vision.adapters.cross_attention import init_unit_gain
from l3_vision.args import VisionArgs
from l3_vision.encoder import ImageEncoder
from l3_vision.errors import ImageError
from l3_vision.preprocess import ImageBatch
from l3_vision.video.aggregator import PerceiverResampler
from l3_vision.video.frames import VideoBatch


class VisionLanguageModel(nn.Module):
    def __init__(self, args: VisionArgs, language: Transformer | None = None) -> None:
        super().__init__()
        self.args = args
        self.language = hook_layers(language if language is not None else Transformer(args.text))
        self.extra_embeddings = nn.Embedding(args.n_extra_tokens, args.text.dim)
        self.encoder = ImageEncoder(args.encoder)
        self.projector = nn.Linear(args.encoder.output_dim, args.text.dim, bias=True)
        self.cross_layers = nn.ModuleDict(
            {str(i): CrossAttentionLayer(args.text) for i in args.cross_attention_layers}
        )
        if args.video is not None:
            self.aggregator = PerceiverResampler(
                args.text.dim,
                args.encoder.n_patches,
                args.text.n_heads,
                args.video.aggregator_layers,
                args.video.frames_per_group,
            )
            self.video_layers = nn.ModuleDict(
                {str(i): CrossAttentionLayer(args.text) for i in args.video.cross_attention_layers}
            )

    @classmethod
    def build(
        cls, args: VisionArgs, language: Transformer | None = None, seed: int = 0
    ) -> VisionLanguageModel:
        """A model with a new (or the given, frozen) language model and freshly initialised
        vision parts."""
        gen = torch.Generator().manual_seed(seed)
        if language is None:
            language = Transformer.build(args.text, seed=seed)
        # timm initialises the encoder from the global generator: seed it here (without
        # touching the caller's state), or every run starts its encoder somewhere else.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(args, language)
        model.init_vision_weights(generator=gen)
        model.freeze_language()
        return model

    @torch.no_grad()
    def init_vision_weights(
        self, std: float = 0.02, generator: torch.Generator | None = None
    ) -> None:
        nn.init.normal_(self.extra_embeddings.weight, std=std, generator=generator)
        init_unit_gain(self.projector, generator)
        for layer in self.cross_layers.values():
            layer.init_weights(generator)
        for layer in getattr(self, "video_layers", {}).values():
            layer.init_weights(generator)

    def freeze_language(self) -> None:
        """The language model never trains; everything new does."""
        self.language.requires_grad_(False)

    def freeze_encoder(self, frozen: bool = True) -> None:
        self.encoder.requires_grad_(not frozen)

    # -- forward -------------------------------------------------------------------------------

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        vocab = self.args.text.vocab_size
        hi = vocab + self.args.n_extra_tokens
        if tokens.dim() != 2 or tokens.numel() == 0:
            raise ImageError(
                f"tokens must be a non-empty [batch, seq] tensor, got {tuple(tokens.shape)}"
            )
        lo_id, hi_id = int(tokens.min()), int(tokens.max())
        if lo_id < 0 or hi_id >= hi:
            raise ImageError(
                f"token id {lo_id if lo_id < 0 else hi_id} outside [0, {hi}) "
                f"(text vocabulary {vocab} + {self.args.n_extra_tokens} new tokens)"
            )
        extra = tokens >= vocab
        base = self.language.embed(tokens.clamp(max=vocab - 1))
        if not bool(extra.any()):
            return base
        new = self.extra_embeddings((tokens - vocab).clamp(min=0))
        return torch.where(extra[..., None], new, base)

    def image_context(
        self, images: ImageBatch, cross_attention_mask: torch.Tensor | None, seq_len: int
    ) -> ImageContext:
        """Project the encoder's features and build the cross-attention masks.

        ``cross_attention_mask`` [b, s, images, max_tiles]: 1 where a text token may attend to
        a tile (Mllama's layout); None lets every token see every tile.
        """
        feats = self.encoder(images.pixel_values, images.aspect_ratio_ids, images.aspect_ratio_mask)
        b = feats.shape[0]
        states = self.projector(feats).reshape(b, -1, self.args.text.dim)
        if cross_attention_mask is None:
            return ImageContext(states, None, None)
        m, t = feats.shape[1], feats.shape[2]
        if tuple(cross_attention_mask.shape) != (b, seq_len, m, t):
            raise ImageError(
                f"cross_attention_mask shape {tuple(cross_attention_mask.shape)}: "
                f"expected [{b}, {seq_len}, {m}, {t}] (batch, tokens, images, tiles)"
            )
        allowed = cross_attention_mask.bool().repeat_interleave(self.args.encoder.n_patches, dim=3)
        return _context(states, allowed.reshape(b, seq_len, -1))

    def video_context(
        self, video: VideoBatch, video_mask: torch.Tensor | None, seq_len: int
    ) -> ImageContext:
        """Frames through the encoder and the projector, each ``frames_per_group`` merged into
        one by the aggregator. ``video_mask`` [b, s]: 1 where a text token may attend to the
        video (None: every token)."""
        if self.args.video is None:
            raise ImageError("this model has no video path (VisionArgs.video is None)")
        b, f = video.frame_mask.shape
        if f > self.args.video.max_frames:
            raise ImageError(f"{f} frames per video: at most {self.args.video.max_frames}")
        feats = self.encoder(video.pixel_values, video.aspect_ratio_ids, video.aspect_ratio_mask)
        frames = self.projector(feats[:, :, 0])  # [b, frames, tokens, dim]: tile 0 only
        merged, groups = self.aggregator(frames, video.frame_mask)
        n = merged.shape[2]
        states = merged.reshape(b, -1, self.args.text.dim)
        if video_mask is None:
            video_mask = torch.ones(b, seq_len, dtype=torch.bool, device=states.device)
        if tuple(video_mask.shape) != (b, seq_len):
            raise ImageError(
                f"video_mask shape {tuple(video_mask.shape)}: expected [{b}, {seq_len}]"
            )
        allowed = video_mask.bool()[:, :, None] & groups.bool().repeat_interleave(n, dim=1)[:, None]
        return _context(states, allowed)

    def hidden(
        self,
        tokens: torch.Tensor,
        images: ImageBatch | None = None,
        cross_attention_mask: torch.Tensor | None = None,
        video: VideoBatch | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final hidden states [b, s, dim] (after the final norm)."""
        h = self.embed(tokens)
        b, s = tokens.shape
        positions = torch.arange(s, device=tokens.device).expand(b, s)
        inserts: dict[int, list] = {}
        if video is not None:
            clip = self.video_context(video, video_mask, s)
            for i, layer in self.video_layers.items():
                inserts.setdefault(int(i), []).append((layer, clip))
        if images is not None:
            image = self.image_context(images, cross_attention_mask, s)
            for i, layer in self.cross_layers.items():
                inserts.setdefault(int(i), []).append((layer, image))
        if not inserts:
            return self.language.norm(self.language.blocks(h, positions, None))
        # Video layers run before the image layer at the same index.
        return self.language.norm(
            blocks_with_insertions(
                self.language,
                h,
                positions,
                {i: partial(_run_layers, layers) for i, layers in inserts.items()},
            )
        )

    def forward(
        self,
        tokens: torch.Tensor,
        images: ImageBatch | None = None,
        cross_attention_mask: torch.Tensor | None = None,
        video: VideoBatch | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [b, s, vocab]."""
        return self.language.head(
            self.hidden(tokens, images, cross_attention_mask, video, video_mask)
        )

    def loss(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        images: ImageBatch | None = None,
        cross_attention_mask: torch.Tensor | None = None,
        ignore_index: int = -100,
        video: VideoBatch | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = self.forward(tokens, images, cross_attention_mask, video, video_mask)
        return F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index
        )


def _context(states: torch.Tensor, allowed: torch.Tensor) -> ImageContext:
    """``allowed`` [b, s, k]: which context tokens each text token may see. A row with none
    keeps its attention over every token (cleared, as Mllama does) and its MLP branch at zero."""
    rows = allowed.any(dim=-1, keepdim=True)
    mask = (allowed | ~rows).unsqueeze(1)
    return ImageContext(states, mask, rows.to(states.dtype))


def _run_layers(
    layers: list[tuple[CrossAttentionLayer, ImageContext]], h: torch.Tensor
) -> torch.Tensor:
    for layer, context in layers:
        h = layer(h, context)
    return h
