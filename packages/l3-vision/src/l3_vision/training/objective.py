"""The captioning objective: a batch is images with their captions after ``<|image|>``; the
loss is next-token cross-entropy on the caption tokens only; the metric is exact match of
greedy captions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from l3_core.tokenizer import Tokenizer
from l3_vision.model import VisionLanguageModel
from l3_vision.preprocess import ImageBatch, preprocess_images
from l3_vision.training.data import Pair

IGNORE = -100


@dataclass
class CaptionBatch:
    tokens: torch.Tensor
    targets: torch.Tensor
    images: ImageBatch
    cross_attention_mask: torch.Tensor


def encode_images(pairs: list[Pair], tile_size: int, max_tiles: int) -> ImageBatch:
    return preprocess_images([p.image for p in pairs], tile_size=tile_size, max_tiles=max_tiles)


def select(images: ImageBatch, index: torch.Tensor) -> ImageBatch:
    idx = index.tolist()
    return ImageBatch(
        images.pixel_values[index],
        images.aspect_ratio_ids[index],
        images.aspect_ratio_mask[index],
        [images.num_tiles[i] for i in idx],
    )


def image_attention(images: ImageBatch, seq_len: int) -> torch.Tensor:
    """Every token from ``<|image|>`` (position 0) on sees every real tile of its image."""
    return images.aspect_ratio_mask[:, None].expand(-1, seq_len, -1, -1).contiguous()


class CaptionObjective:
    def __init__(self, tokenizer: Tokenizer, image_token_id: int) -> None:
        self.tokenizer = tokenizer
        self.image_token_id = image_token_id

    def batch(self, texts: list[str], images: ImageBatch) -> CaptionBatch:
        seqs = [
            [self.image_token_id, *self.tokenizer.encode(t, bos=False, eos=True)] for t in texts
        ]
        length = max(len(s) for s in seqs) - 1
        tokens = torch.full((len(seqs), length), self.tokenizer.pad_id, dtype=torch.long)
        targets = torch.full((len(seqs), length), IGNORE, dtype=torch.long)
        for i, seq in enumerate(seqs):
            tokens[i, : len(seq) - 1] = torch.tensor(seq[:-1])
            targets[i, : len(seq) - 1] = torch.tensor(seq[1:])  # caption tokens only
        return CaptionBatch(tokens, targets, images, image_attention(images, length))

    def loss(
        self, model: VisionLanguageModel, batch: CaptionBatch
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = model.loss(batch.tokens, batch.targets, batch.images, batch.cross_attention_mask)
        return loss, {"loss": float(loss.detach()), "tokens": int((batch.targets != IGNORE).sum())}


@torch.no_grad()
def greedy_captions(
    model: VisionLanguageModel, tokenizer: Tokenizer, images: ImageBatch, max_new_tokens: int = 16
) -> list[str]:
    """Greedy captions of a batch of images (no cache: captions are short)."""
    b = images.pixel_values.shape[0]
    tokens = torch.full((b, 1), model.args.image_token_id, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool)
    stops = torch.tensor(sorted(tokenizer.stop_tokens | {tokenizer.eos_id}))
    for _ in range(max_new_tokens):
        logits = model(tokens, images, image_attention(images, tokens.shape[1]))[:, -1]
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, tokenizer.pad_id), nxt)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done |= torch.isin(nxt, stops)
        if bool(done.all()):
            break
    out = []
    for row in tokens[:, 1:].tolist():
        ids = []
        for t in row:
            if t in stops or t == tokenizer.pad_id:
                break
            ids.append(t)
        out.append(tokenizer.decode(ids))
    return out
