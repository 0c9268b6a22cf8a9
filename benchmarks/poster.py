"""A print-size stylization evaluated in blocks, and the views that check its block borders.

Runs the engine's defaults (original VGG-19 weights) coarse to fine up to `--size` with
`--block-size` blocks at every scale larger than one block, then writes into `--out`:

  poster.png            the full-size result
  poster-view.jpg       the result downscaled to 1024 px, block borders not marked
  crop-<y>-<x>.png      1:1 crops of `--crop` px centred where four inner blocks meet
  crop-<y>-<x>-marked.png  the same crop with the block borders drawn in, for orientation

and prints a seam measure per border: the mean absolute step between the two pixel columns
(rows) on either side of a block border, divided by the mean step between neighbouring column
(row) pairs within 8 px of it. A seam shows as a ratio well above 1; a seam-free image stays
near 1, as any column of a natural image does.

    python -m benchmarks.poster --size 2048 --block-size 512
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from nst_engine import images
from nst_engine.blockwise import plan_blocks
from nst_engine.config import EngineConfig
from nst_engine.optimize import ProgressEvent, stylize

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "paintings"
NEAR = 8  # px either side of a border that the seam measure compares against


def seam_ratio(pixels: np.ndarray, border: int, axis: int) -> float:
    """Mean |step| across `border` (between index border-1 and border along `axis`) over the
    mean |step| between the other neighbouring pairs within NEAR px."""
    steps = np.abs(np.diff(pixels.astype(np.float64), axis=axis)).mean(axis=tuple(a for a in (0, 1, 2) if a != axis))
    across = steps[border - 1]
    around = np.concatenate([steps[border - 1 - NEAR:border - 1], steps[border:border + NEAR]])
    return float(across / around.mean())


def crops(result: Image.Image, block: int, side: int, out: Path) -> list[str]:
    """1:1 crops centred on inner-block corners (one near the centre, one off-centre)."""
    width, height = result.size
    corners = sorted({(y, x) for y in range(block, height, block) for x in range(block, width, block)},
                     key=lambda c: abs(c[0] - height / 2) + abs(c[1] - width / 2))
    written = []
    for y, x in corners[:2]:
        box = (max(0, x - side // 2), max(0, y - side // 2), min(width, x + side // 2), min(height, y + side // 2))
        crop = result.crop(box)
        name = f"crop-{y}-{x}"
        crop.save(out / f"{name}.png")
        marked = crop.copy()
        draw = ImageDraw.Draw(marked)
        for bx in range(block, width, block):
            if box[0] < bx < box[2]:
                draw.line([(bx - box[0], 0), (bx - box[0], marked.height)], fill=(255, 0, 255), width=1)
        for by in range(block, height, block):
            if box[1] < by < box[3]:
                draw.line([(0, by - box[1]), (marked.width, by - box[1])], fill=(255, 0, 255), width=1)
        marked.save(out / f"{name}-marked.png")
        written.append(name)
    return written


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(PAINTINGS / "the_scream.jpg"))
    parser.add_argument("--style", default=str(PAINTINGS / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--scales", default="0.125,0.25,0.5,1")
    parser.add_argument("--scale-iterations", default="100,40,10,3")
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="out/poster")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    config = EngineConfig(size=args.size, block_size=args.block_size, device="cpu",
                          scales=tuple(float(s) for s in args.scales.split(",")),
                          scale_iterations=tuple(int(n) for n in args.scale_iterations.split(",")))
    content, style = images.load_image(args.content), images.load_image(args.style)
    start = time.perf_counter()

    def report(event: ProgressEvent) -> None:
        print(f"scale {event.scale_index + 1}/{event.scale_count} {event.height}x{event.width} "
              f"iteration {event.step}/{event.steps} loss {event.losses.total:.4f} "
              f"{time.perf_counter() - start:.0f} s")

    result = stylize([content], [[style]], config, callback=report)
    seconds = time.perf_counter() - start
    picture = result.pil_images()[0]
    picture.save(out / "poster.png")
    view = picture.copy()
    view.thumbnail((1024, 1024), Image.Resampling.LANCZOS)
    view.save(out / "poster-view.jpg", quality=90)
    names = crops(picture, args.block_size, args.crop, out)

    print(f"{picture.width}x{picture.height} px in {seconds:.0f} s, torch {torch.__version__}, "
          f"{args.threads} threads; content {Path(args.content).name}, style {Path(args.style).name}")
    print("blocks per scale:", json.dumps([run.get("blocks") for run in result.optimization(0)]))
    plan = plan_blocks(picture.height, picture.width, args.block_size, config.block_margin)
    pixels = np.asarray(picture)
    borders_x = sorted({b.left for b in plan.blocks if b.left > 0})
    borders_y = sorted({b.top for b in plan.blocks if b.top > 0})
    print("| border | seam ratio |\n|---|---:|")
    for x in borders_x:
        print(f"| column {x} | {seam_ratio(pixels, x, axis=1):.3f} |")
    for y in borders_y:
        print(f"| row {y} | {seam_ratio(pixels, y, axis=0):.3f} |")
    # The same measure at places that are no border, for comparison.
    for x in (b + args.block_size // 2 for b in [0] + borders_x if b + args.block_size // 2 < picture.width - NEAR):
        print(f"| column {x} (inside a block) | {seam_ratio(pixels, x, axis=1):.3f} |")
    for y in (b + args.block_size // 2 for b in [0] + borders_y if b + args.block_size // 2 < picture.height - NEAR):
        print(f"| row {y} (inside a block) | {seam_ratio(pixels, y, axis=0):.3f} |")
    print("crops:", ", ".join(names))


if __name__ == "__main__":
    main()
