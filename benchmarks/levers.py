"""The optimizer's levers on the original VGG-19, as ratios measured in one run.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.levers [--size 192] [--iterations 100] [--only ...]

One photo and painting (astronaut x starry_night), the engine's default objective (or
--objective pastiche), torch threads --threads. "before" is the optimizer as it was before
the time-to-picture work (strong-Wolfe line search, history 100, one scale), run for --iterations with no
convergence stop; its best loss x 1.05 is the target. Every other setting runs until its
written (8-bit) picture meets the target (cap 1.5 x --iterations at full size) and reports the
full-size-equivalent evaluations (a half-size evaluation counts 1/4) and seconds it took, as
ratios to what "before" took to the same target. Evaluations are exact; seconds are noisy on a
shared machine (one run each, back to back).

Also from the "before" run: where each convergence tolerance would have stopped it, the loss
there relative to its best, and how far that picture is from its last one (mean and 99th
percentile absolute difference, 0-255 levels: under 1 and 8 it does not change visibly). And
Adam at several learning rates (pixels in [0, 1]: lr 0.04 is about 10 levels of 255 per step),
--adam-evaluations each, against "before" at the same number of evaluations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from benchmarks.race import Race, race
from benchmarks.vs_pastiche import DEMO, PASTICHE_OBJECTIVE, SharedLoss
from nst_engine import images
from nst_engine.config import EngineConfig
from nst_engine.optimize import ProgressEvent
from nst_engine.vgg import build_extractor

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_FACTOR = 1.05
SNAPSHOT_EVERY = 5
TOLERANCES = ((1e-3, 20), (2e-3, 20), (5e-3, 10), (1e-2, 10), (1e-3, 10))

# The optimizer before the time-to-picture work, written out so the comparison survives a change of defaults.
BEFORE = {"line_search": "wolfe", "lbfgs_history": 100, "scales": (1.0,), "optimizer": "lbfgs"}


def settings(iterations: int, coarse: int) -> dict[str, dict[str, object]]:
    cap = round(1.5 * iterations)
    half = {"scales": (0.5, 1.0), "scale_iterations": (coarse, cap)}
    return {
        "history 10": {"lbfgs_history": 10},
        "history 20": {"lbfgs_history": 20},
        "fixed step": {"line_search": "fixed"},
        "half-size start": half,
        "half-size start + fixed step + history 20": {**half, "line_search": "fixed", "lbfgs_history": 20},
        "half-size start + history 20": {**half, "lbfgs_history": 20},
        "quarter+half-size start + history 20": {"scales": (0.25, 0.5, 1.0), "lbfgs_history": 20,
                                                "scale_iterations": (coarse, coarse, cap)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=100, help="the 'before' run's iterations")
    parser.add_argument("--coarse", type=int, default=50, help="iterations at each coarse scale")
    parser.add_argument("--objective", choices=("default", "pastiche"), default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pair", default="astronaut,starry_night")
    parser.add_argument("--only", default="", help="comma-separated setting names (default: all)")
    parser.add_argument("--adam-lrs", default="0.02,0.04,0.08", help="empty: skip Adam")
    parser.add_argument("--adam-evaluations", type=int, default=60)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photo, painting = args.pair.split(",")
    content = images.resize_max_side(images.load_image(DEMO / f"{photo}.jpg"), args.size)
    style = images.resize_max_side(images.load_image(DEMO / f"{painting}.jpg"), args.size)
    objective = dict(PASTICHE_OBJECTIVE) if args.objective == "pastiche" else {}
    base = EngineConfig(size=args.size, device="cpu", tolerance=0.0, **objective)  # type: ignore[arg-type]
    before = base.replace(**BEFORE, iterations=args.iterations)
    extractor, _ = build_extractor(before.weights, set(before.content_layers) | set(before.style_layers),
                                   before.pooling, "cpu", before.input_convention)
    loss = SharedLoss(extractor, content, style, before)
    load = os.getloadavg()
    print(f"before: {args.iterations} iterations ...", file=sys.stderr, flush=True)
    reference = race(extractor, content, style, before, keep_every=SNAPSHOT_EVERY)
    target = TARGET_FACTOR * reference.best()
    first = reference.first_below(target)
    assert first is not None
    rows = [{"setting": "before", "evaluations": first.evaluations, "seconds": first.seconds,
             "reached": True, "run_evaluations": reference.evaluations, "run_seconds": reference.seconds}]
    wanted = [name for name in args.only.split(",") if name]
    for name, changes in settings(args.iterations, args.coarse).items():
        if wanted and name not in wanted:
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        cap = round(1.5 * args.iterations)
        config = before.replace(iterations=cap, **changes)
        run = race(extractor, content, style, config, target=target, judge=loss.written)
        rows.append({"setting": name, "evaluations": run.reached_evaluations, "seconds": run.reached_seconds,
                     "reached": run.reached_seconds is not None, "run_evaluations": run.evaluations,
                     "run_seconds": run.seconds, "best": run.best(), "config": _changes(changes)})
    tolerance_rows = _tolerances(reference)
    adam_rows = []
    for lr in (float(x) for x in args.adam_lrs.split(",") if x):
        print(f"adam lr {lr} ...", file=sys.stderr, flush=True)
        config = before.replace(optimizer="adam", learning_rate=lr, iterations=args.adam_evaluations)
        run = race(extractor, content, style, config)
        same = [p.loss for p in reference.points if p.evaluations <= args.adam_evaluations]
        adam_rows.append({"lr": lr, "best": run.best(), "before_at_same_evaluations": min(same) if same else math.inf,
                          "seconds": run.seconds})
    summary = {"size": [content.width, content.height], "objective": args.objective,
               "config": before.to_dict(), "target": target, "load_average_before": load,
               "load_average_after": os.getloadavg(), "rows": rows, "tolerances": tolerance_rows, "adam": adam_rows,
               "before_points": [asdict(p) for p in reference.points]}
    table = _table(summary, args)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"levers-{args.objective}-{args.size}"
    (RESULTS / f"{stem}.md").write_text(table + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0


def _changes(changes: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


def _tolerances(reference: Race) -> list[dict[str, object]]:
    """Where each (tolerance, window) would have stopped the 'before' run."""
    best: list[float] = []
    for point in reference.points:
        best.append(min(point.loss, best[-1]) if best else point.loss)
    final_best = best[-1]
    last = reference.image
    out = []
    for tolerance, window in TOLERANCES:
        stop = next((k for k in range(window, len(best)) if best[k - window] - best[k] <= tolerance * best[k - window]),
                    None)
        row: dict[str, object] = {"tolerance": tolerance, "window": window, "iteration": None if stop is None else stop + 1}
        if stop is not None:
            row["loss_ratio"] = best[stop] / final_best
            row["evaluations"] = reference.points[stop].evaluations
            kept = [n for n in reference.frames if n >= stop + 1]
            frame = reference.frames[min(kept)] if kept else None
            if frame is not None and last is not None:
                diff = (frame - last[0]).abs().flatten() * 255
                row["mean_levels"], row["p99_levels"] = float(diff.mean()), float(diff.quantile(0.99))
        out.append(row)
    return out


def _table(s: dict, args: argparse.Namespace) -> str:  # type: ignore[type-arg]
    before = s["rows"][0]
    lines = [
        f"Levers on the original VGG-19, {args.objective} objective, astronaut x starry_night at "
        f"{s['size'][0]}x{s['size'][1]} px, {args.threads} threads; load average {s['load_average_before'][0]:.1f} "
        f"before, {s['load_average_after'][0]:.1f} after. Target: {TARGET_FACTOR} x the best loss of 'before' "
        f"(wolfe, history 100, one scale) after {args.iterations} iterations = {s['target']:.6g}.",
        "",
        "| setting | full-size evaluations to target | ratio | seconds to target | ratio |",
        "|---|---|---|---|---|",
    ]
    for row in s["rows"]:
        if row["reached"]:
            lines.append(f"| {row['setting']} | {row['evaluations']:.1f} | {row['evaluations'] / before['evaluations']:.2f} "
                         f"| {row['seconds']:.1f} | {row['seconds'] / before['seconds']:.2f} |")
        else:
            lines.append(f"| {row['setting']} | not reached in {row['run_evaluations']:.0f} (best {row['best']:.6g}) "
                         f"| - | - | - |")
    if s["tolerances"]:
        lines += ["", "Convergence stop on the 'before' run (loss ratio: best there / best at the end):", "",
                  "| tolerance | window | stops at iteration | full-size evaluations | loss ratio | mean / p99 "
                  "change to the last picture (levels) |", "|---|---|---|---|---|---|"]
        for row in s["tolerances"]:
            if row["iteration"] is None:
                lines.append(f"| {row['tolerance']:g} | {row['window']} | not within the run | | | |")
                continue
            change = (f"{row['mean_levels']:.2f} / {row['p99_levels']:.1f}" if "mean_levels" in row else "-")
            lines.append(f"| {row['tolerance']:g} | {row['window']} | {row['iteration']} | {row['evaluations']:.0f} | "
                         f"{row['loss_ratio']:.4f} | {change} |")
    if s["adam"]:
        lines += ["", f"Adam, {args.adam_evaluations} evaluations, one scale (pixels in [0, 1]):", "",
                  "| lr | levels of 255 per step | best loss | / L-BFGS 'before' at as many evaluations |",
                  "|---|---|---|---|"]
        for row in s["adam"]:
            lines.append(f"| {row['lr']:g} | {row['lr'] * 255:.1f} | {row['best']:.6g} | "
                         f"{row['best'] / row['before_at_same_evaluations']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
