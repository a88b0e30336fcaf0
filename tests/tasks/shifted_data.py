"""Data sets that differ from what the tiny test models were trained on, in the formats users bring.

Each writes files a user could hand to `zoo finetune --data`: the synthetic
grammar with a new opening phrase (new words and a new sentence pattern), the
grammar's trees with a new construction (an interjection, a label the base
model never wrote), and scenes with a new colour (pink where red was).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# Translation: "hello friend , <sentence>" -> "holo miko , <translation>".
NEW_SOURCE_OPENING = "hello friend ,"
NEW_TARGET_OPENING = "holo miko ,"
# Parsing: "oh , <sentence>" with the interjection as its own constituent.
INTERJECTION = "(INTJ (UH oh)) (, ,)"
# Captioning: red objects drawn and named pink.
RED = np.array([214, 40, 40])
PINK = np.array([250, 110, 190])


def write_shifted_translation(path: Path, size: int, seed: int = 7, max_words: int = 12) -> Path:
    """A TSV of `size` pairs of the grammar, each with the new opening phrase."""
    from zoo.data.synthetic_translation import generate_translation_pairs

    pairs = generate_translation_pairs(size, seed=seed, max_words=max_words)
    lines = [f"{NEW_SOURCE_OPENING} {p.source}\t{NEW_TARGET_OPENING} {p.target}" for p in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_shifted_treebank(
    folder: Path, sizes: dict[str, int], seed: int = 7, max_words: int = 12
) -> Path:
    """`<split>.mrg` files of trees that open with an interjection, `sizes[split]` trees each."""
    from zoo.data.synthetic_translation import generate_source_trees

    folder.mkdir(parents=True, exist_ok=True)
    trees = generate_source_trees(sum(sizes.values()), seed=seed, max_words=max_words)
    start = 0
    for split, count in sizes.items():
        chunk = [t.replace("(S ", f"(S {INTERJECTION} ", 1) for t in trees[start : start + count]]
        (folder / f"{split}.mrg").write_text("\n".join(chunk) + "\n", encoding="utf-8")
        start += count
    return folder


def write_shifted_scenes(folder: Path, size: int, image_size: int, seed: int = 7) -> Path:
    """A Flickr8k-style token file and `images/` of scenes where every red object is pink."""
    from PIL import Image

    from zoo.data.synthetic_scenes import generate_scenes

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, scene in enumerate(generate_scenes(size, seed=seed, image_size=image_size)):
        pixels = np.asarray(Image.open(io.BytesIO(scene.image)).convert("RGB")).copy()
        red = np.all(np.abs(pixels.astype(int) - RED) <= 12, axis=-1)
        pixels[red] = PINK
        name = f"scene{i}.png"
        Image.fromarray(pixels).save(images / name)
        lines.append(f"{name}#0\t{scene.caption.replace('red', 'pink')}")
    token_file = folder / "captions.token.txt"
    token_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return token_file
