"""Fixed-step against strong-Wolfe L-BFGS: which reaches a given loss sooner.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.line_search [--size 96] [--iterations 100]

For each objective (Gatys x 1e3 on random weights; the random-weights objective) both line
searches run the astronaut photo with the brick style for --iterations (tolerance 0). The shared
target is the worse of the two final losses; printed: the iteration and seconds at which each
first reached it, and evaluations spent. Random weights: says nothing about trained networks.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from nst_engine import EngineConfig, load_image, stylize
from nst_engine.vgg import random_state

IMAGES = Path(__file__).resolve().parent.parent / "examples" / "demo" / "images"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--bounds", action="store_true",
                        help="instead: project vs sigmoid pixel bounds, loss of the written 8-bit image "
                             "(chelsea x hubble, Gatys x 1e3, --iterations, tolerance 0)")
    args = parser.parse_args(argv)
    weights = Path(__file__).resolve().parent / "results" / "vgg19_random_seed7.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"features.{k}": v for k, v in random_state(7).items()}, weights)
    content, style = load_image(IMAGES / "astronaut.jpg"), load_image(IMAGES / "brick.jpg")
    problems = {"gatys x 1e3": {"weights": str(weights), "content_weight": 1e3, "style_weight": 1e9},
                "random-weights objective": {"weights": "random:0"}}
    print("RANDOM VGG-19 WEIGHTS")
    if args.bounds:
        for bounds in ("project", "sigmoid"):
            config = EngineConfig(size=args.size, iterations=args.iterations, tolerance=0.0, weights=str(weights),
                                  content_weight=1e3, style_weight=1e9, bounds=bounds)
            result = stylize([load_image(IMAGES / "chelsea.jpg")], [[load_image(IMAGES / "hubble.jpg")]], config)
            run = result.runs[0][0]
            print(f"bounds {bounds:8s} written 8-bit loss {result.losses[0].total:.5g}  optimizer's best "
                  f"{run.loss:.5g}  evaluations {run.evaluations}")
        return
    for name, extra in problems.items():
        curves = {}
        for line_search in ("fixed", "wolfe"):
            events: list[tuple[int, float, float]] = []
            start = time.perf_counter()
            config = EngineConfig(size=args.size, iterations=args.iterations, tolerance=0.0, line_search=line_search,
                                  **extra)  # type: ignore[arg-type]
            result = stylize([content], [[style]], config, callback=lambda e: events.append(
                (e.step, e.losses.total, time.perf_counter() - start)))
            curves[line_search] = (events, result.runs[0][0].evaluations)
        target = max(events[-1][1] for events, _ in curves.values())
        for line_search, (events, evaluations) in curves.items():
            step, _, seconds = next(e for e in events if e[1] <= target)
            print(f"{name:26s} {line_search:5s} final {events[-1][1]:.5g}  reached {target:.5g} at iteration "
                  f"{step} ({seconds:.1f} s); {evaluations} evaluations in {len(events)} iterations")


if __name__ == "__main__":
    main()
