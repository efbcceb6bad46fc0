"""Synthetic captioned images: coloured shapes, counted and placed, drawn with PIL.

A caption names the count, colour, shape and where the shapes sit ("two red squares top"),
so a model can only caption a held-out image by looking at it.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from l3_core.io import atomic_path
from l3_core.jsonl import write_jsonl

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230)}
SHAPES = ("circle", "square", "triangle")
COUNTS = {1: "one", 2: "two", 3: "three"}
PLACES = ("top", "bottom")


def caption_space() -> list[tuple[int, str, str, str]]:
    return [(n, c, s, p) for n in COUNTS for c in COLOURS for s in SHAPES for p in PLACES]


FIELDS = ("count", "colour", "shape", "place")


def caption(
    count: int, colour: str, shape: str, place: str, fields: tuple[str, ...] = FIELDS
) -> str:
    """The caption naming ``fields`` (all four by default: "two red squares top"); fewer
    fields make an easier task ("red" alone has 3 classes, the full caption 54)."""
    plural = "s" if count > 1 and "count" in fields else ""
    words = {"count": COUNTS[count], "colour": colour, "shape": shape + plural, "place": place}
    unknown = sorted(set(fields) - set(words))
    if unknown or not fields:
        raise ValueError(f"caption fields {list(fields)}: each must be one of {list(FIELDS)}")
    return " ".join(words[f] for f in FIELDS if f in fields)


def draw(
    count: int, colour: str, shape: str, place: str, size: int, rng: random.Random
) -> Image.Image:
    image = Image.new("RGB", (size, size), (245, 245, 240))
    pen = ImageDraw.Draw(image)
    r = size // 10
    band = (r, size // 2 - r) if place == "top" else (size // 2 + r, size - r)
    slots = [size * (2 * i + 1) // (2 * count) for i in range(count)]
    for x in slots:
        cx = x + rng.randint(-r // 2, r // 2)
        cy = rng.randint(*band)
        box = (cx - r, cy - r, cx + r, cy + r)
        if shape == "circle":
            pen.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            pen.rectangle(box, fill=COLOURS[colour])
        else:
            pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLOURS[colour])
    return image


def write_dataset(
    directory: Path, n: int, size: int, seed: int, fields: tuple[str, ...] = FIELDS
) -> Path:
    """``n`` images under ``directory/images`` and ``directory/pairs.jsonl`` of {image, text},
    captioned with ``fields``."""
    rng = random.Random(seed)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    space = caption_space()
    for i in range(n):
        spec = space[rng.randrange(len(space))]
        path = directory / "images" / f"{i:05d}.png"
        with atomic_path(path) as tmp:
            draw(*spec, size=size, rng=rng).save(tmp, format="PNG")
        rows.append({"image": f"images/{path.name}", "text": caption(*spec, fields=fields)})
    out = directory / "pairs.jsonl"
    write_jsonl(out, rows)
    return out
