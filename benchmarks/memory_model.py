"""nst_engine.memory.estimate against the peak torch allocates, measured on the CPU.

The peak is measured with torch.profiler's memory events (profile_memory=True): every
allocation and free through torch's CPU allocator, replayed in time order. That is the quantity
the model estimates and `torch.cuda.max_memory_allocated` reports on a GPU: tensor bytes,
without malloc's caching or the process's libraries, which an RSS delta would mix in and which
tracemalloc cannot see at all. Each run: 6 L-BFGS iterations with a 4-pair history, so the
history is full at the end as in a long run; the extractor is loaded before the measurement.

    .venv/bin/python -m benchmarks.memory_model      # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import sys
from typing import Callable

from torch.profiler import ProfilerActivity, profile

from nst_engine import EngineConfig, load_image, stylize
from nst_engine.images import fit_size
from nst_engine.memory import estimate
from nst_engine.optimize import MIN_SIDE
from nst_engine.vgg import build_extractor

from benchmarks.demo_manifest import DEMO

CASES = [("float32", 96, 2), ("float32", 160, 1), ("bfloat16", 96, 2), ("bfloat16", 160, 1)]  # (chelsea, coffee)


def measured_peak(run: Callable[[], object]) -> int:
    """Peak bytes of torch tensors allocated on the CPU while `run` runs, above where it started."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def compare(precision: str, size: int, batch: int, weights: str = "random:7") -> tuple[int, int]:
    """(measured peak, estimate) for `batch` (1 or 2) demo photos at `size` max side."""
    config = EngineConfig(size=size, iterations=6, lbfgs_history=4, weights=weights, device="cpu",
                          precision=precision)
    build_extractor(config.weights, set(config.content_layers) | set(config.style_layers))
    contents = [load_image(DEMO / f"{name}.jpg") for name in ("chelsea", "coffee")[:batch]]
    styles = [[load_image(DEMO / "hubble.jpg")]] * batch
    width, height = fit_size(contents[0].size, size, MIN_SIDE)
    peak = measured_peak(lambda: stylize(contents, styles, config))
    return peak, estimate(height, width, config, "cpu").batch_bytes(batch)


def main() -> int:
    print("| precision | max side | batch | measured peak (bytes) | estimate (bytes) | estimate / measured |")
    print("|---|---|---:|---:|---:|---:|")
    for precision, size, batch in CASES:
        peak, predicted = compare(precision, size, batch)
        print(f"| {precision} | {size} | {batch} | {peak:,} | {predicted:,} | {predicted / peak:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
