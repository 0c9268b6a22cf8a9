"""nst_engine against a tutorial-style Gatys loop (benchmarks/baseline_tutorial.py).

Both sides use the same VGG-19 weights file, the same content and style images at the same
size, the same objective (content relu4_2; style relu1_1..relu5_1 weight 1 each; Gram / (C*H*W);
MSE; content weight K, style weight 1e6 K, K = --loss-scale, default 1e3), L-BFGS (lr 1,
history 100) from the content image. One "iteration" is one objective evaluation (a forward and
a backward pass through VGG-19).

Why K: at K = 1 on random weights the loss is ~1.5 and y.s of torch's curvature pairs falls
under its fixed 1e-10 threshold: the baseline keeps 0 pairs and crawls (1.577 -> 1.54 in 300
iterations), so (b) would measure that stall more than our method. Multiplying the objective by a
constant changes neither side's optimum; at K = 1e3 the baseline keeps its pairs (reported).

(a) seconds per iteration, single scale at --size: the mean over --speed-iterations
    iterations after 3 warm-up ones, median of --repeats runs; the two sides alternate which
    goes first. Ratio project / baseline; target <= 1.0.
(b) the baseline runs --iterations iterations at --size; its final (clamped) image is
    evaluated once more -> L_base, its wall time -> T_base (model/target building included).
    The project then runs coarse-to-fine (--scales, --scale-iterations; the last count caps the
    full-size scale) and the progress callback gives the wall time T_project at which the
    full-size loss first falls to <= L_base. Ratio T_project / T_base; target <= 0.15. The project
    runs with its defaults (line search, per-image convergence stop; --line-search overrides).
    The callback's loss is that of the unclamped image L-BFGS evaluated; so a second project
    run, stopped at that step, is timed end to end and its clamped output evaluated the same
    way as the baseline's, to check the output itself is as good.
(c) per-pair wall time of one batch of 4 pairs against the same 4 pairs run one by one
    (project only, --batch-size pairs, single scale at --size, --batch-iterations cap, tolerance 0
    so both do the same iterations). Ratio batch / singles.

    .venv/bin/python -m benchmarks.engine_vs_baseline            # ~15 min on 2 CPU cores
    .venv/bin/python -m benchmarks.engine_vs_baseline --quick    # smoke check, < 1 min

Without --weights a seeded random VGG-19 is written to benchmarks/results/ and used by both
sides; the output says so loudly: losses from random weights say nothing about stylization
quality, and how fast multi-scale catches up may differ with trained weights.
Results: benchmarks/results/engine_vs_baseline.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from benchmarks import baseline_tutorial as tutorial
from nst_engine import EngineConfig, ProgressEvent, load_image, stylize
from nst_engine.images import resize_max_side, to_tensor
from nst_engine.optimize import MIN_SIDE, resolve_device
from nst_engine.vgg import build_extractor, load_weights, random_state

RESULTS = Path(__file__).parent / "results"
WARMUP = 3


# ---- inputs -----------------------------------------------------------------------------


def synthetic_content(seed: int = 0) -> Image.Image:
    """256x192 'landscape': smooth sky gradient, sun, hills, buildings with windows."""
    rng = np.random.default_rng(seed)
    w, h = 256, 192
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    top, bottom = np.array([0.15, 0.35, 0.75]), np.array([0.95, 0.65, 0.35])
    sky = top * (1 - y) + bottom * y + 0.05 * x
    image = Image.fromarray((np.clip(sky, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 25, 220, 75), fill=(250, 220, 90))
    draw.polygon([(0, 150), (60, 95), (120, 140), (180, 85), (256, 140), (256, 192), (0, 192)], fill=(60, 110, 60))
    for left in range(10, 240, 45):
        top_y = int(rng.integers(90, 130))
        shade = tuple(int(v) for v in rng.integers(60, 160, size=3))
        draw.rectangle((left, top_y, left + 30, 192), fill=shade)
        for wy in range(top_y + 6, 185, 12):
            for wx in (left + 5, left + 18):
                draw.rectangle((wx, wy, wx + 6, wy + 6), fill=(240, 230, 150))
    return image.filter(ImageFilter.GaussianBlur(0.8))


def synthetic_style(seed: int = 1) -> Image.Image:
    """256x256 texture: oriented coloured stripes, brush-like strokes and seeded noise."""
    rng = np.random.default_rng(seed)
    n = 256
    yy, xx = np.mgrid[0:n, 0:n] / n
    image = np.zeros((n, n, 3))
    for freq, angle, colour in ((9, 0.6, (0.9, 0.3, 0.1)), (23, 2.1, (0.1, 0.4, 0.9)), (4, 1.2, (0.9, 0.85, 0.2))):
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        image += wave[..., None] * np.array(colour) / 2
    image += rng.normal(0, 0.08, size=image.shape)
    pil = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    for _ in range(40):
        x0, y0 = rng.integers(0, n, size=2)
        dx, dy = rng.integers(-40, 40, size=2)
        colour = tuple(int(v) for v in rng.integers(0, 255, size=3))
        draw.line((int(x0), int(y0), int(x0 + dx), int(y0 + dy)), fill=colour, width=int(rng.integers(2, 7)))
    return pil


def prepare_weights(path_arg: str | None) -> tuple[str, str, bool]:
    """(path both sides load, note for the report, whether the weights are random)."""
    if path_arg:
        _, info = load_weights(path_arg)
        return path_arg, f"{path_arg} (sha256 {info.sha256})", False
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "vgg19_random_seed0.pth"
    torch.save({"features." + k: v for k, v in random_state(0).items()}, path)
    note = (f"RANDOM VGG-19 weights (nst_engine.vgg.random_state(0), He init), written to {path}: "
            "NOT a trained network - no real weights on this machine")
    return str(path), note, True


def shout(message: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n{message}\n{bar}", file=sys.stderr, flush=True)


# ---- (a) seconds per iteration ------------------------------------------------------------


def baseline_seconds_per_iteration(cnn: torch.nn.Module, content: torch.Tensor, style: torch.Tensor,
                                   iterations: int) -> float:
    marks: list[float] = []
    tutorial.run_style_transfer(cnn, content, style, content.clone(), WARMUP + iterations,
                                on_eval=lambda run, loss: marks.append(time.perf_counter()))
    return (marks[WARMUP + iterations - 1] - marks[WARMUP - 1]) / iterations


def project_seconds_per_iteration(extractor: torch.nn.Module, config: EngineConfig, content_pil: Image.Image,
                                  style_pil: Image.Image, iterations: int) -> float:
    marks: list[float] = []
    config = config.replace(scales=(1.0,), scale_iterations=None, iterations=WARMUP + iterations)
    stylize([content_pil], [[style_pil]], config, extractor=extractor,
            callback=lambda event: marks.append(time.perf_counter()))
    return (marks[WARMUP + iterations - 1] - marks[WARMUP - 1]) / iterations


# ---- (b) time to the baseline's loss ------------------------------------------------------


class _Reached(Exception):
    pass


def project_probe(extractor: torch.nn.Module, config: EngineConfig, content_pil: Image.Image,
                  style_pil: Image.Image, target: float) -> dict[str, Any]:
    """Run multi-scale until the full-size loss is <= target (or the schedule ends)."""
    curve: list[dict[str, Any]] = []
    found: dict[str, Any] = {}

    def watch(event: ProgressEvent) -> None:
        now = time.perf_counter() - start
        curve.append({"scale": event.scale_index, "step": event.step, "seconds": now,
                      "engine_elapsed": event.elapsed, "loss": event.losses.total})
        if event.scale_index == event.scale_count - 1 and event.losses.total <= target:
            found.update(step=event.step, seconds=now, engine_elapsed=event.elapsed, loss=event.losses.total)
            raise _Reached

    start = time.perf_counter()
    try:
        stylize([content_pil], [[style_pil]], config, extractor=extractor, callback=watch)
    except _Reached:
        pass
    last_scale = [c for c in curve if c["scale"] == len(config.scales) - 1]
    scale_ends = [max((c["seconds"] for c in curve if c["scale"] == i), default=None)
                  for i in range(len(config.scales))]
    return {"reached": bool(found), **found, "curve": curve, "scale_end_seconds": scale_ends,
            "best_full_size_loss": min((c["loss"] for c in last_scale), default=None),
            "full_size_steps_run": len(last_scale)}


def project_verify(extractor: torch.nn.Module, config: EngineConfig, content_pil: Image.Image,
                   style_pil: Image.Image, cnn: torch.nn.Module, content: torch.Tensor, style: torch.Tensor
                   ) -> dict[str, Any]:
    """A complete project run, timed end to end; its clamped output evaluated like the baseline's."""
    start = time.perf_counter()
    result = stylize([content_pil], [[style_pil]], config, extractor=extractor)
    seconds = time.perf_counter() - start
    image = result.images.to(content.device)
    loss = tutorial.total_loss(cnn, image, content, style, style_weight=config.style_weight,
                               content_weight=config.content_weight)
    return {"schedule": list(config.iterations_per_scale()), "seconds": seconds, "loss": loss["total"],
            "engine_reported_loss": result.losses[0].total, "runs": result.optimization(0)}


# ---- (c) a batch against single runs -----------------------------------------------------------


def batch_vs_singles(extractor: torch.nn.Module, config: EngineConfig, content_src: Image.Image,
                     style_src: Image.Image, args: argparse.Namespace) -> dict[str, Any]:
    """Per-pair wall seconds: `batch_size` pairs in one engine call against one call each."""
    n = args.batch_size
    contents = [content_src.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else content_src
                for i in range(n)]
    styles = [[style_src.rotate(90 * i)] for i in range(n)]
    single = config.replace(scales=(1.0,), scale_iterations=None, iterations=args.batch_iterations, tolerance=0.0)
    print(f"(c) {n} pairs: one batch, then one by one, {args.batch_iterations} iterations each ...",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    together = stylize(contents, styles, single, extractor=extractor)
    batch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    alone = [stylize([c], [s], single, extractor=extractor) for c, s in zip(contents, styles)]
    singles_seconds = time.perf_counter() - start
    differences = [float((together.images[i] - alone[i].images[0]).abs().max() * 255) for i in range(n)]
    return {"pairs": n, "iterations": args.batch_iterations, "batch_seconds": batch_seconds,
            "singles_seconds": singles_seconds, "ratio": batch_seconds / singles_seconds,
            "max_pixel_difference_255": max(differences)}


# ---- report ---------------------------------------------------------------------------------


def stalled(losses: list[float], steps: int = 20, drop: float = 0.05) -> bool | None:
    """Whether the first `steps` iterations cut the loss by less than `drop` (None: too short)."""
    if len(losses) <= steps:
        return None
    return (losses[0] - losses[steps]) / losses[0] < drop


def fmt_ratio(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return f"**{value:.2f}** ({'meets' if value <= target else 'misses'} <= {target})"


def render(r: dict[str, Any]) -> str:
    a, b = r["a"], r["b"]
    probe, verify = b["probe"], b.get("verify")
    lines = []
    if r["random_weights"]:
        lines += ["> **WEIGHTS ARE RANDOM** (seeded He-initialised VGG-19, `random_state(0)`), not a trained",
                  "> network: no real weights on this machine. Speed (a) does not depend on the weight values;",
                  "> the loss landscape in (b) does, so re-run with `--weights vgg19.pth` for real numbers.", ""]
    lines += ["| measure | baseline (tutorial-style) | project (nst_engine) | project / baseline |",
              "|---|---|---|---|",
              f"| (a) s / iteration at {r['content_shape'][1]}x{r['content_shape'][0]}, single scale "
              f"(mean of {a['iterations']} after {WARMUP} warm-up, median of {a['repeats']}) "
              f"| {a['baseline']:.4f} | {a['project']:.4f} | {fmt_ratio(a['ratio'], 1.0)} |"]
    if probe["reached"]:
        reached_cell = (f"{probe['seconds']:.1f} (step {probe['step']} of the full-size scale, "
                        f"loss {probe['loss']:.5g})")
    else:
        reached_cell = (f"NOT REACHED in {probe['full_size_steps_run']} full-size steps "
                        f"(best {probe['best_full_size_loss']:.5g})")
    lines.append(f"| (b) wall s until loss <= baseline's after {b['baseline_iterations']} it "
                 f"(L_base = {b['baseline_loss']:.5g}); project: callback, scales {b['scales']} "
                 f"| {b['baseline_seconds']:.1f} | {reached_cell} | {fmt_ratio(b['ratio'], 0.15)} |")
    if verify:
        ok = "<=" if verify["loss"] <= b["baseline_loss"] else "> (WORSE than)"
        lines.append(f"| (b') check: complete project run with schedule {verify['schedule']}, timed end to end, "
                     f"clamped output evaluated like the baseline's | {b['baseline_seconds']:.1f} "
                     f"| {verify['seconds']:.1f} (loss {verify['loss']:.5g}, {ok} L_base) "
                     f"| {verify['seconds'] / b['baseline_seconds']:.2f} |")
    c = r["c"]
    lines.append(f"| (c) wall s per pair, {c['pairs']} pairs x {c['iterations']} iterations: one batch vs one "
                 f"call each (project only) | {c['singles_seconds'] / c['pairs']:.2f} (singles) "
                 f"| {c['batch_seconds'] / c['pairs']:.2f} (batch) | **{c['ratio']:.2f}** |")
    full = [c["loss"] for c in probe["curve"] if c["scale"] == len(b["scales"]) - 1]
    lines += ["",
              f"- baseline loss: {b['baseline_curve'][0][1]:.4g} at the content image, {b['baseline_loss']:.4g} "
              f"after {b['baseline_evaluations']} iterations; L-BFGS held {b['baseline_curvature_pairs']} "
              f"curvature pairs at the end; the project held {b.get('project_curvature_pairs')} at the end of "
              f"its check run (line search {b['line_search']}, tolerance {b['tolerance']})",
              f"- objective scale K = {r['loss_scale']:g} on both sides (content weight K, style weight 1e6 K)",
              f"- (c) batch and single runs differ by at most {c['max_pixel_difference_255']:.3g}/255 in a pixel",
              f"- project full-size loss: {full[0]:.4g} at the upsampled coarse result, "
              f"{full[-1]:.4g} after {len(full)} steps" if full else "- project: never reached the full-size scale"]
    for side, stall in (("baseline", b["baseline_stalled"]), ("project (full-size scale)", b["project_stalled"])):
        if stall:
            lines.append(f"- **WARNING: the {side} L-BFGS looks stalled** (< 5% loss drop in its first 20 "
                         "iterations): torch's LBFGS drops curvature pairs with y.s <= 1e-10 and then takes "
                         "plain gradient steps of length lr, which barely move a tiny loss (random weights "
                         "give tiny losses). (b) then measures that threshold more than the method.")
    lines += [f"- weights: {r['weights']}",
              f"- torch {r['torch']}, {r['threads']} threads, device {r['device']}, {r['machine']}; "
              f"load average before/after: {r['loadavg_start']} / {r['loadavg_end']}",
              f"- images: content {r['content_source']} -> {r['content_shape'][1]}x{r['content_shape'][0]}; "
              f"style {r['style_source']} -> {r['style_shape'][1]}x{r['style_shape'][0]}",
              f"- baseline: torch.optim.LBFGS defaults (max_iter 20, history 100), clamp in the closure; "
              f"{b['baseline_evaluations']} evaluations in {b['baseline_step_calls']} optimizer.step() calls for (b)",
              f"- project: per-image L-BFGS, history 100, pixels bounded inside the optimizer, convergence stop; "
              f"scales {b['scales']}, iterations per scale (last = cap) {b['schedule']}; "
              f"coarse scales done at {', '.join(f'{s:.1f}' for s in probe['scale_end_seconds'][:-1] if s is not None)} s",
              f"- (a) runs, s/it: baseline {[round(v, 4) for v in a['baseline_runs']]}, "
              f"project {[round(v, 4) for v in a['project_runs']]}",
              f"- total benchmark wall time {r['wall_seconds']:.0f} s",
              ""]
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="VGG-19 state dict (.pth); default: seeded random weights, said loudly")
    p.add_argument("--content", type=Path, help="content image; default: a synthetic 256 px landscape")
    p.add_argument("--style", type=Path, help="style image; default: a synthetic 256 px stripy texture")
    p.add_argument("--size", type=int, default=256, help="max side in pixels (default 256)")
    p.add_argument("--iterations", type=int, default=300, help="baseline iterations for (b) (default 300)")
    p.add_argument("--scales", default="0.25,0.5,1", help="project scales for (b)")
    p.add_argument("--scale-iterations", default="300,150,300",
                   help="project iterations per scale for (b); the last caps the full-size scale")
    p.add_argument("--speed-iterations", type=int, default=30, help="timed iterations per run for (a)")
    p.add_argument("--repeats", type=int, default=5, help="runs per side for (a)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--no-verify", action="store_true", help="skip the end-to-end check run of (b')")
    p.add_argument("--loss-scale", type=float, default=1e3, help="K: content weight K, style weight 1e6 K")
    p.add_argument("--line-search", choices=("fixed", "wolfe"), help="project line search (default: the engine's)")
    p.add_argument("--batch-size", type=int, default=4, help="pairs in the batch of (c)")
    p.add_argument("--batch-iterations", type=int, default=50, help="iterations of each run in (c)")
    p.add_argument("--skip-a", action="store_true", help="skip (a)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and counts: checks that the script works")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the .md and .json go")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.iterations, args.speed_iterations, args.repeats = 64, 40, 5, 1
        args.scale_iterations, args.batch_iterations = "40,20,40", 10
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    loadavg_start = [round(v, 2) for v in os.getloadavg()]

    weights_path, weights_note, random_weights = prepare_weights(args.weights)
    if random_weights:
        shout("RANDOM VGG-19 WEIGHTS: no trained weights given (--weights). Timings are meaningful;\n"
              "losses and time-to-loss describe a random network, not real stylization.")
    state, _ = load_weights(weights_path)
    cnn = tutorial.vgg19_features(state, device)
    layers = set(tutorial.CONTENT_LAYERS) | set(tutorial.STYLE_LAYERS)
    extractor, _ = build_extractor(weights_path, layers, "max", device)

    content_src = load_image(args.content) if args.content else synthetic_content()
    style_src = load_image(args.style) if args.style else synthetic_style()
    # Exactly what the engine does at the final scale, so both sides see the same pixels. The
    # tutorial's spliced model needs the style image at the content's shape (the style image
    # also flows through the content-loss module); the engine is given that same resized style
    # image, which its own max-side resize then leaves as it is.
    content_pil = resize_max_side(content_src, args.size, MIN_SIDE)
    style_pil = style_src.resize(content_pil.size, Image.Resampling.LANCZOS)
    assert resize_max_side(style_pil, args.size, MIN_SIDE).size == style_pil.size
    content = to_tensor(content_pil).to(device)
    style = to_tensor(style_pil).to(device)
    scales = tuple(float(s) for s in args.scales.split(","))
    schedule = tuple(int(n) for n in args.scale_iterations.split(","))
    k = args.loss_scale
    config = EngineConfig(size=args.size, weights=weights_path, device=str(device), optimizer="lbfgs",
                          init="content", content_weight=k, style_weight=1e6 * k, lbfgs_history=100,
                          pooling="max", content_layers=tutorial.CONTENT_LAYERS, style_layers=tutorial.STYLE_LAYERS,
                          tv_weight=0.0, normalization="none",
                          **({"line_search": args.line_search} if args.line_search else {}))

    # (a) seconds per iteration; alternate which side goes first so load drift hits both.
    print(f"(a) seconds per iteration at {content_pil.size[0]}x{content_pil.size[1]}, "
          f"{args.repeats} x {args.speed_iterations} iterations per side ...", file=sys.stderr, flush=True)
    base_runs: list[float] = []
    proj_runs: list[float] = []
    for repeat in range(0 if args.skip_a else args.repeats):
        sides = [("baseline", base_runs), ("project", proj_runs)]
        for name, runs in sides if repeat % 2 == 0 else sides[::-1]:
            if name == "baseline":
                runs.append(baseline_seconds_per_iteration(cnn, content, style, args.speed_iterations))
            else:
                runs.append(project_seconds_per_iteration(extractor, config, content_pil, style_pil,
                                                          args.speed_iterations))
            print(f"    {name}: {runs[-1]:.4f} s/it", file=sys.stderr, flush=True)
    base_it = statistics.median(base_runs) if base_runs else float("nan")
    proj_it = statistics.median(proj_runs) if proj_runs else float("nan")

    # (b) baseline for --iterations at full size, then the project until it matches.
    print(f"(b) baseline, {args.iterations} iterations ...", file=sys.stderr, flush=True)
    base_curve: list[tuple[int, float]] = []
    base_stats: dict[str, int] = {}
    image, evaluations, base_seconds = tutorial.timed_run(
        cnn, content, style, args.iterations, on_eval=lambda run, loss: base_curve.append((run, loss)),
        stats=base_stats, style_weight=1e6 * k, content_weight=k)
    base_loss = tutorial.total_loss(cnn, image, content, style, style_weight=1e6 * k, content_weight=k)
    print(f"    {base_seconds:.1f} s, final loss {base_loss['total']:.6g}", file=sys.stderr, flush=True)

    print(f"(b) project, scales {list(scales)}, iterations {list(schedule)} ...", file=sys.stderr, flush=True)
    ms_config = config.replace(scales=scales, scale_iterations=schedule)
    probe = project_probe(extractor, ms_config, content_pil, style_pil, base_loss["total"])
    if probe["reached"]:
        print(f"    reached at full-size step {probe['step']}, {probe['seconds']:.1f} s", file=sys.stderr, flush=True)
    else:
        print(f"    NOT reached; best full-size loss {probe['best_full_size_loss']}", file=sys.stderr, flush=True)
    verify = None
    if probe["reached"] and not args.no_verify:
        verify = project_verify(extractor, ms_config.replace(scale_iterations=schedule[:-1] + (probe["step"],)),
                                content_pil, style_pil, cnn, content, style)
        print(f"    check run: {verify['seconds']:.1f} s, clamped output loss {verify['loss']:.6g}",
              file=sys.stderr, flush=True)

    batch = batch_vs_singles(extractor, config, content_src, style_src, args)

    report: dict[str, Any] = {
        "loss_scale": k, "c": batch,
        "weights": weights_note, "random_weights": random_weights,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg_start": loadavg_start, "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "size": args.size, "content_source": str(args.content or "synthetic (seed 0)"),
        "style_source": str(args.style or "synthetic (seed 1)"),
        "content_shape": list(content.shape[-2:]), "style_shape": list(style.shape[-2:]),
        "a": {"baseline": base_it, "project": proj_it, "ratio": proj_it / base_it, "iterations": args.speed_iterations,
              "warmup": WARMUP, "repeats": args.repeats, "baseline_runs": base_runs, "project_runs": proj_runs},
        "b": {"baseline_iterations": args.iterations, "baseline_evaluations": evaluations,
              "baseline_step_calls": base_stats.get("step_calls", 0),
              "baseline_curvature_pairs": base_stats.get("curvature_pairs", 0),
              "baseline_stalled": stalled([loss for _, loss in base_curve]),
              "project_stalled": stalled([c["loss"] for c in probe["curve"] if c["scale"] == len(scales) - 1]),
              "baseline_seconds": base_seconds, "baseline_loss": base_loss["total"],
              "baseline_loss_terms": base_loss, "baseline_curve": base_curve,
              "scales": list(scales), "schedule": list(schedule), "probe": probe, "verify": verify,
              "ratio": probe["seconds"] / base_seconds if probe["reached"] else None,
              "project_curvature_pairs": (verify or {}).get("runs", [{}])[-1].get("curvature_pairs")
              if verify else None, "line_search": ms_config.line_search, "tolerance": ms_config.tolerance},
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    report["wall_seconds"] = time.perf_counter() - wall_start
    table = render(report)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine_vs_baseline.md").write_text(table)
    (args.out / "engine_vs_baseline.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
