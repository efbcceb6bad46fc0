"""Caption image files with a trained checkpoint (the checkpoint carries its tokenizer)."""

from __future__ import annotations

from pathlib import Path

from l3_core.tokenizer import Tokenizer
from l3_vision.checkpoint import load_checkpoint
from l3_vision.errors import VisionCheckpointError
from l3_vision.preprocess import preprocess_images
from l3_vision.training.data import open_image
from l3_vision.training.objective import greedy_captions

TOKENIZER = "tokenizer.model"


def caption_files(checkpoint: Path, images: list[Path], max_new_tokens: int = 16) -> list[str]:
    model = load_checkpoint(checkpoint)
    tokenizer_path = checkpoint / TOKENIZER
    if not tokenizer_path.is_file():
        raise VisionCheckpointError(f"{checkpoint}: no {TOKENIZER} beside the weights")
    tokenizer = Tokenizer.from_file(tokenizer_path)
    pixels = [open_image(p, str(p)) for p in images]
    enc = model.args.encoder
    batch = preprocess_images(pixels, tile_size=enc.tile_size, max_tiles=enc.max_tiles)
    return greedy_captions(model, tokenizer, batch, max_new_tokens)
