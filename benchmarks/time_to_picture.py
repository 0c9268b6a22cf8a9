"""The default settings' time to a finished picture: when the quality scores stop improving.

    python -m benchmarks.time_to_picture [--size 256] [--iterations 300] [--pair astronaut,starry_night]

Runs the default objective and optimizer on one photo and painting at one scale with tolerance 0
(the cap decides), once per setting compared ("before": L-BFGS history 100, the default until
history was measured; "after": the current defaults), and scores the picture every 10 iterations
with the quality tests' scores (benchmarks/objective_study.scores: mean Gram cosine with the
painting over relu1_1..relu5_1, mean content cosine at relu4_1/relu5_1, colour-histogram
distance). The clock counts only the optimization: scoring is timed and subtracted.

A picture is finished at the first checkpoint after which the style score never rises by more
than STYLE_STEP nor the content score moves by more than CONTENT_STEP over the next 20 iterations.
Also printed: the iteration at which the default convergence stop (tolerance 1e-3 over 20
iterations) would end the run, from the same loss curve.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.objective_study import demo_pair, make_scorer, scores
from nst_engine.config import EngineConfig
from nst_engine.optimize import ProgressEvent, stylize

EVERY = 10
AHEAD = 20  # iterations looked ahead for "still improving"
STYLE_STEP = 0.002
CONTENT_STEP = 0.005
SETTINGS = {"before (history 100)": {"lbfgs_history": 100}, "after (defaults)": {}}


def run(size: int, iterations: int, content: torch.Tensor, style: torch.Tensor, scorer: torch.nn.Module,
        content_image: object, style_image: object, **settings: object) -> dict[str, object]:
    config = EngineConfig(size=size, iterations=iterations, tolerance=0.0, **settings)
    trace: dict[int, tuple[float, dict[str, float]]] = {}
    best: list[float] = []
    scoring = 0.0
    start = time.perf_counter()

    def keep(event: ProgressEvent) -> None:
        nonlocal scoring
        best.append(min(event.losses.total, best[-1]) if best else event.losses.total)
        if event.step % EVERY == 0 and event.current is not None:
            began = time.perf_counter()
            picture = event.current()[:1].cpu()
            trace[event.step] = (began - start - scoring, scores(scorer, picture, content, style))
            scoring += time.perf_counter() - began

    result = stylize([content_image], [[style_image]], config, callback=keep)
    return {"config": config, "trace": trace, "best": best, "evaluations": result.runs[0][-1].evaluations,
            "seconds": time.perf_counter() - start - scoring}


def finished_at(trace: dict[int, tuple[float, dict[str, float]]]) -> int | None:
    steps = sorted(trace)
    for step in steps:
        later = [s for s in steps if step < s <= step + AHEAD]
        if len(later) * EVERY < AHEAD:
            return None  # not enough of the curve left to tell
        now = trace[step][1]
        if all(trace[s][1]["style"] - now["style"] <= STYLE_STEP
               and abs(trace[s][1]["content"] - now["content"]) <= CONTENT_STEP for s in later):
            return step
    return None


def default_stop(best: list[float], tolerance: float = 1e-3, window: int = 20) -> int | None:
    """The iteration at which the default convergence rule (nst_engine.optimize._converged) fires."""
    for done in range(window, len(best)):
        old, new = best[done - window], best[done]
        if old - new <= tolerance * abs(old):
            return done + 1
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--pair", default="astronaut,starry_night")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    photo, painting = args.pair.split(",")
    content_image, style_image, content, style = demo_pair(photo, painting, args.size)
    scorer = make_scorer()
    print(f"{photo} x {painting} at {args.size} px, {args.iterations} iterations, tolerance 0, "
          f"torch {torch.__version__}, {args.threads} threads")
    outcomes = {}
    for name, settings in SETTINGS.items():
        outcome = run(args.size, args.iterations, content, style, scorer, content_image, style_image, **settings)
        outcomes[name] = outcome
        trace = outcome["trace"]
        print(f"\n{name}: {outcome['evaluations']} evaluations in {outcome['seconds']:.1f} s (scoring excluded)")
        print("| iteration | seconds | style (Gram cosine) | content cosine | colour distance |\n|---|---:|---:|---:|---:|")
        for step, (seconds, s) in sorted(trace.items()):
            print(f"| {step} | {seconds:.1f} | {s['style']:.4f} | {s['content']:.4f} | {s['hist']:.3f} |")
    print("\n| setting | finished at iteration | seconds | style | content | default stop at iteration | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, outcome in outcomes.items():
        trace = outcome["trace"]
        step = finished_at(trace)
        stop = default_stop(outcome["best"])
        stop_seconds = trace[min(trace, key=lambda s: abs(s - stop))][0] if stop else None
        if step is None:
            print(f"| {name} | not within {args.iterations} | | | | {stop} | |")
            continue
        seconds, s = trace[step]
        print(f"| {name} | {step} | {seconds:.1f} | {s['style']:.4f} | {s['content']:.4f} | {stop} | "
              f"{'' if stop_seconds is None else f'~{stop_seconds:.0f}'} |")


if __name__ == "__main__":
    main()
