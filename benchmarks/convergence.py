"""How many iterations until the picture stops changing visibly, and what the loss does then.

    python -m benchmarks.convergence [--sizes 256,512] [--iterations 400] [--pair astronaut,starry_night]

Runs the default objective (tolerance 0, so the cap decides) at one scale per size, keeps the
image every 10 iterations, and prints per checkpoint: the mean absolute pixel difference to the
final image (0-255 levels), the 99th percentile of that difference, and the relative fall of the
best loss over the last 20 iterations (what `tolerance` / `tolerance_window` compare). The
iteration after which the picture no longer changes visibly (mean < 1 level and 99th percentile
< 8 levels against the final image) is where the default cap belongs, and the relative fall there
is where the tolerance belongs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from nst_engine import images
from nst_engine.config import EngineConfig
from nst_engine.optimize import ProgressEvent, stylize

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "images"
EVERY = 10
WINDOW = 20
VISIBLE_MEAN = 1.0  # levels of 255
VISIBLE_P99 = 8.0


def measure(size: int, iterations: int, photo: str, painting: str) -> None:
    content = images.load_image(DEMO / f"{photo}.jpg")
    style = images.load_image(DEMO / f"{painting}.jpg")
    config = EngineConfig(size=size, iterations=iterations, tolerance=0.0)
    frames: dict[int, torch.Tensor] = {}
    losses: dict[int, float] = {}

    def keep(event: ProgressEvent) -> None:
        losses[event.step] = event.losses.total
        if event.step % EVERY == 0 and event.current is not None:
            frames[event.step] = event.current()[0].clone()

    start = time.perf_counter()
    result = stylize([content], [[style]], config, callback=keep)
    seconds = time.perf_counter() - start
    final = result.images[0]
    print(f"\n{photo} x {painting} at {size} px: {iterations} iterations in {seconds:.0f} s "
          f"({seconds / max(1, result.runs[0][-1].evaluations):.2f} s per evaluation), objective "
          f"{config.normalization} / style weight {config.style_weight} / pooling {config.pooling}")
    print("| iteration | mean change to final (levels) | 99th pct (levels) | loss fall over last 20 its |")
    print("|---|---|---|---|")
    settled = None
    for step in sorted(frames):
        diff = (frames[step] - final).abs().flatten() * 255
        mean, p99 = float(diff.mean()), float(diff.quantile(0.99))
        fall = _fall(losses, step)
        print(f"| {step} | {mean:.2f} | {p99:.1f} | {fall} |", flush=True)
        if settled is None and mean < VISIBLE_MEAN and p99 < VISIBLE_P99:
            settled = step
    print(f"stops changing visibly at iteration {settled} (of {iterations})")


def _fall(losses: dict[int, float], step: int) -> str:
    if step - WINDOW not in losses or step not in losses:
        return "-"
    old, new = losses[step - WINDOW], losses[step]
    return f"{(old - new) / abs(old):.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--pair", default="astronaut,starry_night")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log file as it happens
    torch.set_num_threads(2)
    photo, painting = args.pair.split(",")
    for size in (int(s) for s in args.sizes.split(",")):
        measure(size, args.iterations, photo, painting)


if __name__ == "__main__":
    main()
