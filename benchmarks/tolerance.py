"""The convergence stop's tolerance: two values on the default objective, scores, time and pictures.

    python -m benchmarks.tolerance [--size 256] [--tolerances 1e-3,1e-2]

Two demo pairs (astronaut x Starry Night, cat x Scream), one scale, cap 500 iterations, one run
per tolerance. Prints iterations, evaluations, seconds and the quality tests' scores
(benchmarks/objective_study.scores) per run, and writes a sheet: one row per pair, one column
per tolerance, to docs/convergence/tolerance-<size>px.jpg.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.objective_study import demo_pair, make_scorer, scores
from nst_engine.config import EngineConfig
from nst_engine.optimize import stylize

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (("astronaut", "starry_night"), ("chelsea", "scream"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tolerances", default="1e-3,1e-2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    tolerances = [float(t) for t in args.tolerances.split(",")]
    scorer = make_scorer()
    rows: list[list[Image.Image]] = []
    print(f"{args.size} px, cap 500, torch {torch.__version__}, {args.threads} threads")
    for photo, painting in PAIRS:
        content_image, style_image, content, style = demo_pair(photo, painting, args.size)
        row = []
        for tolerance in tolerances:
            config = EngineConfig(size=args.size, iterations=500, tolerance=tolerance)
            start = time.perf_counter()
            result = stylize([content_image], [[style_image]], config)
            seconds = time.perf_counter() - start
            run = result.runs[0][-1]
            s = scores(scorer, result.images[:1].cpu(), content, style)
            print(f"{photo} x {painting}, tolerance {tolerance:g}: {run.iterations} iterations, "
                  f"{run.evaluations} evaluations, {seconds:.1f} s, stop {run.stop}; style {s['style']:.4f}, "
                  f"content {s['content']:.4f}, colour distance {s['hist']:.3f}")
            row.append(result.pil_images()[0])
        rows.append(row)
    gap = 8
    sheet = Image.new("RGB", (sum(im.width for im in rows[0]) + gap * (len(tolerances) - 1),
                              sum(row[0].height for row in rows) + gap * (len(rows) - 1)), "white")
    top = 0
    for row in rows:
        left = 0
        for picture in row:
            sheet.paste(picture, (left, top))
            left += picture.width + gap
        top += row[0].height + gap
    path = ROOT / "docs" / "convergence" / f"tolerance-{args.size}px.jpg"
    sheet.save(path, quality=90)
    print(f"sheet: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
