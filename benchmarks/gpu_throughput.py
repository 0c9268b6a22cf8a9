"""GPU throughput of the engine: precisions, fast paths and batches at 512 px, 500 iterations.

One run, one table. Rows, each a full optimization of the same pair (the demo's
astronaut, 512x512, with the hubble style) after a short warm-up run of the same shape:

  single float32   IEEE fp32 (TF32 off: PyTorch turns it on for cuDNN convolutions by default)
  single tf32      fp32 tensors, TF32 tensor-core math
  single bfloat16  autocast bf16 network, fp32 Gram and losses
  single float16   autocast fp16 network, fp32 Gram and losses
  bfloat16 without channels_last, bfloat16 without cudnn.benchmark: what each fast path buys
  batch 4, batch 8 in the fastest precision whose final loss is within 1% of float32's

Columns: seconds per image, images per hour, peak CUDA memory per image (above the weights and
targets already allocated) beside the memory model's estimate, and the final loss (evaluated in
fp32 for every row) relative to float32's. Style targets are computed once, outside the timings,
as the pipeline's cache serves them.

Time: the float32 row is timed first on a short probe; if all rows at --iterations would not
fit --time-budget, every row runs fewer iterations and its seconds are scaled up to
--iterations (linear: every iteration costs the same at one size); the table says so, and its
losses are then those of the shorter runs.

    python -m benchmarks.gpu_throughput --weights ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth
    python -m benchmarks.gpu_throughput --device cpu --quick    # seconds: checks the script runs

Without --weights a seeded random VGG-19 is used and the output says so: speed does not depend
on the weights' values, but the losses, and so the 1% precision rule, do.
Results: benchmarks/results/gpu_throughput.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from nst_engine import EngineConfig, accel, load_image, stylize
from nst_engine.images import fit_size
from nst_engine.memory import choose_batch_size, estimate
from nst_engine.optimize import MIN_SIDE, resolve_device, style_side, style_tensors
from nst_engine.targets import StyleTargets, compute_style_targets
from nst_engine.vgg import build_extractor

DEMO = Path(__file__).parents[1] / "examples" / "demo" / "images"
RESULTS = Path(__file__).parent / "results"
LOSS_TOLERANCE = 0.01  # the default precision keeps the final loss within 1% of fp32
PROBE_ITERATIONS = 10
WARMUP_ITERATIONS = 5  # cudnn.benchmark picks its algorithms on the first passes of a shape


@dataclass(frozen=True)
class Row:
    """One measured configuration."""

    label: str
    precision: str
    batch: int
    channels_last: bool = True
    cudnn_benchmark: bool = True


@dataclass
class Measured:
    row: Row
    iterations: int  # run
    seconds_per_image: float  # scaled to the target iteration count
    images_per_hour: float
    peak_bytes_per_image: int | None
    estimate_bytes_per_image: int
    loss: float  # mean final total loss over the batch, evaluated in fp32
    loss_vs_fp32: float | None = None  # relative difference
    error: str | None = None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.quick:
        args.size, args.iterations = min(args.size, 32), min(args.iterations, 2)
    weights, random_note = (args.weights, None) if args.weights else ("random:0", (
        "RANDOM VGG-19 weights (seeded): speed is real, but the losses, and so the 1% precision rule, "
        "say nothing about trained weights. Pass --weights /path/to/vgg19-dcbb9e9d.pth"))
    if random_note:
        print(f"!!! {random_note}", file=sys.stderr, flush=True)
    content = load_image(args.content)
    style = load_image(args.style)
    base = EngineConfig(size=args.size, iterations=args.iterations, weights=weights, device=str(device))
    extractor, info = build_extractor(weights, set(base.content_layers) | set(base.style_layers), base.pooling, device)
    accel.prepare(extractor, device, "float32")  # targets in IEEE fp32, shared by every row
    targets = compute_style_targets(extractor, style_tensors([style], style_side(base, 1.0), None, base),
                                    base.style_layers)
    runner = Runner(extractor, content, style, targets, base, device, args.quick)

    iterations = args.iterations if args.quick else fit_iterations(runner, args, device)
    singles = [Row("single float32", "float32", 1), Row("single tf32", "tf32", 1),
               Row("single bfloat16", "bfloat16", 1), Row("single float16", "float16", 1),
               Row("bfloat16, no channels_last", "bfloat16", 1, channels_last=False),
               Row("bfloat16, no cudnn.benchmark", "bfloat16", 1, cudnn_benchmark=False)]
    results = [runner.measure(row, iterations, args.iterations) for row in singles]
    fp32 = results[0]
    for result in results:
        result.loss_vs_fp32 = _relative(result.loss, fp32.loss)
    fastest = pick_precision(results)
    for batch in args.batches:
        result = runner.measure(Row(f"batch {batch}, {fastest}", fastest, batch), iterations, args.iterations)
        result.loss_vs_fp32 = _relative(result.loss, fp32.loss)
        results.append(result)

    fits = choose_batch_size(*runner.shape, base.replace(precision=fastest), device)
    table = render(results, args, device, iterations, info.to_dict(), random_note, fastest, fits)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_throughput.md").write_text(table)
    (out / "gpu_throughput.json").write_text(json.dumps({
        "device": device_name(device), "size": args.size, "iterations_target": args.iterations,
        "iterations_run": iterations, "weights": info.to_dict(), "fastest_within_1pct": fastest,
        "memory_model_batch": fits,
        "cuda_auto_precision": accel.CUDA_AUTO_PRECISION, "torch": torch.__version__,
        "rows": [{**asdict(r.row), **{k: v for k, v in asdict(r).items() if k != "row"}} for r in results],
    }, indent=2))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--weights", help="VGG-19 state dict (.pth); default: seeded random weights")
    parser.add_argument("--content", default=str(DEMO / "astronaut.jpg"))
    parser.add_argument("--style", default=str(DEMO / "hubble.jpg"))
    parser.add_argument("--size", type=int, default=512, help="max side, pixels")
    parser.add_argument("--iterations", type=int, default=500, help="the count the table reports")
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--time-budget", type=float, default=170.0,
                        help="seconds for all timed rows; fewer iterations (scaled up) if they would not fit")
    parser.add_argument("--quick", action="store_true",
                        help="32 px, 2 iterations, no warm-up: checks the script, not the GPU")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    return args


class Runner:
    """Runs one row: warm-up, then a timed optimization with peak memory and final loss."""

    def __init__(self, extractor: torch.nn.Module, content: Image.Image, style: Image.Image, targets: StyleTargets,
                 base: EngineConfig, device: torch.device, quick: bool) -> None:
        self.extractor, self.content, self.style, self.targets = extractor, content, style, targets
        self.base, self.device = base, device
        self.warmup = 0 if quick else WARMUP_ITERATIONS
        width, height = fit_size(content.size, base.size, MIN_SIDE)
        self.shape = (height, width)

    def run(self, row: Row, iterations: int) -> tuple[float, int | None, float]:
        """(wall seconds, peak CUDA bytes above the start or None, mean final loss)."""
        config = self.base.replace(precision=row.precision, iterations=iterations)
        targets = self.targets.to(self.device)
        with accel.fast_paths(channels_last=row.channels_last, cudnn_benchmark=row.cudnn_benchmark):
            self._sync()
            start_bytes = self._reset_peak()
            start = time.perf_counter()
            result = stylize([self.content] * row.batch, [[self.style]] * row.batch, config,
                             targets_for=lambda item, side: targets, extractor=self.extractor)  # type: ignore[arg-type]
            self._sync()
            seconds = time.perf_counter() - start
        peak = None if start_bytes is None else torch.cuda.max_memory_allocated(self.device) - start_bytes
        return seconds, peak, sum(loss.total for loss in result.losses) / len(result.losses)

    def measure(self, row: Row, iterations: int, target: int) -> Measured:
        config = self.base.replace(precision=row.precision, iterations=target)
        predicted = estimate(*self.shape, config, self.device)
        try:
            if self.warmup:
                self.run(row, self.warmup)
            seconds, peak, loss = self.run(row, iterations)
        except Exception as exc:  # noqa: BLE001 - a precision this device lacks fails its row, not the table
            return Measured(row, iterations, float("nan"), float("nan"), None, predicted.per_image, float("nan"),
                            error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        per_image = seconds / row.batch * target / iterations
        return Measured(row, iterations, per_image, 3600 / per_image,
                        None if peak is None else peak // row.batch, predicted.per_image, loss)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _reset_peak(self) -> int | None:
        if self.device.type != "cuda":
            return None
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)


def fit_iterations(runner: Runner, args: argparse.Namespace, device: torch.device) -> int:
    """Iterations per row so that all rows fit the time budget, timed on a float32 probe."""
    probe = Row("probe", "float32", 1)
    runner.run(probe, WARMUP_ITERATIONS)
    seconds, _, _ = runner.run(probe, PROBE_ITERATIONS)
    per_iteration = seconds / PROBE_ITERATIONS
    # Images per iteration over all rows, each costed at float32's speed (the slowest): 6 singles
    # plus the batches, and a warm-up per row.
    images = 6 + sum(args.batches)
    affordable = int(args.time_budget / (per_iteration * images)) - WARMUP_ITERATIONS
    iterations = min(args.iterations, max(PROBE_ITERATIONS, affordable))
    print(f"probe on {device_name(device)}: {per_iteration * 1000:.1f} ms per float32 iteration; "
          f"running {iterations} iterations per row", file=sys.stderr, flush=True)
    return iterations


def pick_precision(results: list[Measured]) -> str:
    """The fastest single-image precision whose loss is within LOSS_TOLERANCE of float32's."""
    fits = [r for r in results if r.error is None and r.row.channels_last and r.row.cudnn_benchmark
            and r.loss_vs_fp32 is not None and abs(r.loss_vs_fp32) <= LOSS_TOLERANCE]
    return min(fits, key=lambda r: r.seconds_per_image).row.precision if fits else "float32"


def render(results: list[Measured], args: argparse.Namespace, device: torch.device, iterations: int,
           weights: dict[str, Any], random_note: str | None, fastest: str, fits: int) -> str:
    lines = [f"## GPU throughput: {device_name(device)}", "",
             f"{args.size} px max side ({Path(args.content).name} x {Path(args.style).name}), "
             f"{args.iterations} L-BFGS iterations per image"
             + (f" (each row ran {iterations} and its seconds are scaled up to {args.iterations}; "
                f"losses are at {iterations})" if iterations != args.iterations else "") + ".",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, weights: {weights.get('source')}"
             + (f" (sha256 {weights['sha256'][:12]})" if weights.get("sha256") else ""), ""]
    if random_note:
        lines += [f"**{random_note}**", ""]
    lines += ["| run | s / image | images / hour | peak MiB / image | model MiB / image | final loss | vs float32 |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.row.label} | failed: {r.error} | | | | | |")
            continue
        peak = "n/a" if r.peak_bytes_per_image is None else f"{r.peak_bytes_per_image / 2**20:,.0f}"
        vs = "" if r.loss_vs_fp32 is None else f"{r.loss_vs_fp32:+.2%}"
        lines.append(f"| {r.row.label} | {r.seconds_per_image:.3f} | {r.images_per_hour:,.0f} | {peak} | "
                     f"{r.estimate_bytes_per_image / 2**20:,.0f} | {r.loss:.4g} | {vs} |")
    verdict = ("matches" if fastest == accel.CUDA_AUTO_PRECISION
               else f"DIFFERS: set CUDA_AUTO_PRECISION = {fastest!r} in nst_engine/accel.py")
    if device.type != "cuda":
        verdict = "not a GPU: decides nothing"
    lines += ["", f"Fastest precision within {LOSS_TOLERANCE:.0%} of float32's final loss: **{fastest}** "
              f"(nst_engine.accel.CUDA_AUTO_PRECISION is {accel.CUDA_AUTO_PRECISION!r}: {verdict}).",
              f"Memory model: {fits} images of this size fit in the memory free now, in {fastest} "
              "(nst_engine.memory.choose_batch_size).",
              f"Command: `python -m benchmarks.gpu_throughput {args.command}`", ""]
    if device.type != "cuda":
        lines.insert(2, "_Not a GPU: the CUDA fast paths are not applied and the figures say nothing about a GPU._\n")
    return "\n".join(lines)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _relative(value: float, reference: float) -> float | None:
    if not (value == value and reference == reference) or reference == 0:  # NaN from a failed row
        return None
    return (value - reference) / reference


if __name__ == "__main__":
    raise SystemExit(main())
