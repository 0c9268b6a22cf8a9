"""Peak memory and time of one evaluation (loss + gradient), whole image vs blocks, on the CPU.

Each case runs in a child process of its own, so its peak RSS (getrusage's ru_maxrss: what the
operating system gave the process, malloc's caches included) is that case's alone. The child
first loads VGG-19 and builds the targets (the content features block by block, the style from
a 256 px image, so their cost stays small), reads its RSS, then evaluates once; the table shows
both and the difference. The objective is Gatys' (relu1_1..relu5_1, relu4_2) on seeded random
weights: memory and time do not depend on the weights' values.

    .venv/bin/python -m benchmarks.blockwise_memory                    # the table in docs/print-sizes.md
    .venv/bin/python -m benchmarks.blockwise_memory --sizes 512 --block 256   # a quick look
    .venv/bin/python -m benchmarks.blockwise_memory --timing 512 --rounds 3   # the time overhead

--timing measures the time overhead side by side in one process: whole and blocked evaluations
alternate, `--rounds` times each, and the ratio of the medians is printed for wall time and for
the process's CPU time (less disturbed by other work on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from nst_engine import EngineConfig, blockwise
from nst_engine.optimize import _Problem
from nst_engine.statistics import get_statistic
from nst_engine.vgg import VGGFeatures, random_state

CONFIG = EngineConfig(weights="random", normalization="none", device="cpu")  # Gatys objective, random weights


def _rss_mib() -> float:
    """The peak RSS of this process so far, in MiB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def run_case(size: int, block: int) -> dict[str, float]:
    """In the child: one evaluation of a size x size image, whole (block 0) or in blocks."""
    config = CONFIG
    extractor = VGGFeatures(random_state(0), set(config.content_layers) | set(config.style_layers), config.pooling)
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=generator)
    x = torch.rand(1, 3, size, size, generator=generator)
    style = torch.rand(1, 3, 256, 256, generator=generator)
    stat = get_statistic(config.style_statistic)
    with torch.no_grad():
        features = extractor(style)
        style_targets = {name: stat.compute(features[name]) for name in config.style_layers}
    build_plan = blockwise.plan_blocks(size, size, 256, config.block_margin)
    content_targets = blockwise.feature_maps(extractor, content, build_plan, config.content_layers)
    items = torch.arange(1)
    before = _current_rss_mib()
    start = time.perf_counter()
    if block == 0:
        z = x.clone().requires_grad_(True)
        terms = _Problem(extractor, content_targets, style_targets, config).terms(z, items)
        terms["total"].sum().backward()
        loss = float(terms["total"])
    else:
        plan = blockwise.plan_blocks(size, size, block, config.block_margin)
        problem = _Problem(extractor, content_targets, style_targets, config, plan)
        terms, _ = problem.blocked(items).loss_and_grad(x)
        loss = float(terms["total"])
    seconds = time.perf_counter() - start
    return {"size": size, "block": block, "rss_before_mib": before, "peak_rss_mib": _rss_mib(),
            "seconds": seconds, "loss": loss}


def _problems(size: int, block: int) -> tuple[torch.Tensor, _Problem, _Problem]:
    config = CONFIG
    extractor = VGGFeatures(random_state(0), set(config.content_layers) | set(config.style_layers), config.pooling)
    generator = torch.Generator().manual_seed(0)
    content, x = torch.rand(2, 3, size, size, generator=generator).split(1)
    stat = get_statistic(config.style_statistic)
    with torch.no_grad():
        features = extractor(torch.rand(1, 3, 256, 256, generator=generator))
        style_targets = {name: stat.compute(features[name]) for name in config.style_layers}
        content_features = extractor(content)
    content_targets = {name: content_features[name] for name in config.content_layers}
    plan = blockwise.plan_blocks(size, size, block, config.block_margin)
    return x, _Problem(extractor, content_targets, style_targets, config), \
        _Problem(extractor, content_targets, style_targets, config, plan)


def timing(size: int, block: int, rounds: int) -> None:
    """Whole and blocked evaluations alternating in this process; medians of wall and CPU seconds."""
    x, whole, blocked = _problems(size, block)
    items = torch.arange(1)
    seconds: dict[str, list[tuple[float, float]]] = {"whole": [], "blocked": []}
    for _ in range(rounds + 1):  # the first round warms up
        for name in ("whole", "blocked"):
            wall, cpu = time.perf_counter(), time.process_time()
            if name == "whole":
                z = x.clone().requires_grad_(True)
                whole.terms(z, items)["total"].sum().backward()
            else:
                blocked.blocked(items).loss_and_grad(x)
            seconds[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    med = {name: [statistics.median(v[i] for v in runs[1:]) for i in (0, 1)] for name, runs in seconds.items()}
    print(f"{size} px, blocks of {block} px, margin {CONFIG.block_margin} px, median of {rounds} alternating rounds: "
          f"whole {med['whole'][0]:.2f} s wall / {med['whole'][1]:.2f} s CPU, blocked {med['blocked'][0]:.2f} s wall / "
          f"{med['blocked'][1]:.2f} s CPU; blocked / whole: {med['blocked'][0] / med['whole'][0]:.2f}x wall, "
          f"{med['blocked'][1] / med['whole'][1]:.2f}x CPU")


def measure(size: int, block: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.blockwise_memory", "--child", str(size), str(block)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--timing", type=int, metavar="SIZE", help="time whole vs blocked at SIZE instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.timing:
        timing(args.timing, args.block, args.rounds)
        return 0
    if args.child:
        print(json.dumps(run_case(*args.child)))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; margin {CONFIG.block_margin} px; "
          f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("| image | evaluation | peak RSS (MiB) | RSS before it (MiB) | peak - before (MiB) | seconds | loss |")
    print("|---|---|---:|---:|---:|---:|---|")
    rows: dict[tuple[int, int], dict[str, float]] = {}
    for size in args.sizes:
        for block in (0, args.block):
            row = measure(size, block)
            rows[(size, block)] = row
            label = "whole image" if block == 0 else f"blocks of {block} px ({-(-size // block)}^2)"
            print(f"| {size} px | {label} | {row['peak_rss_mib']:,.0f} | {row['rss_before_mib']:,.0f} | "
                  f"{row['peak_rss_mib'] - row['rss_before_mib']:,.0f} | {row['seconds']:.1f} | {row['loss']:.6g} |",
                  flush=True)
    for size in args.sizes:
        whole, blocked = rows[(size, 0)], rows[(size, args.block)]
        print(f"{size} px: blocked / whole: peak - before {(blocked['peak_rss_mib'] - blocked['rss_before_mib']) / (whole['peak_rss_mib'] - whole['rss_before_mib']):.3f}, "
              f"time {blocked['seconds'] / whole['seconds']:.2f}x, loss relative difference "
              f"{abs(blocked['loss'] - whole['loss']) / abs(whole['loss']):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
