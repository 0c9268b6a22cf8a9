"""The memory model against the peak measured on the CPU, and the batch size it chooses.

The CPU peak is measured with torch.profiler's memory events (profile_memory=True): every
allocation and free through torch's CPU allocator, replayed in time order. That is the
quantity the model estimates and `torch.cuda.max_memory_allocated` reports on a GPU: tensor
bytes, without malloc's caching or the process's libraries, which an RSS delta would mix in
and which tracemalloc cannot see at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from torch.profiler import ProfilerActivity, profile

from nst_engine import EngineConfig, stylize
from nst_engine.errors import EngineError
from nst_engine.memory import choose_batch_size, estimate, parse_bytes
from nst_engine.vgg import build_extractor
from tests.conftest import make_image


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


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_estimate_is_within_a_quarter_of_the_measured_peak(weights_file: Path, precision: str) -> None:
    # 6 iterations with a 4-pair history: the history is full at the end, as in a long run.
    config = EngineConfig(size=96, iterations=6, lbfgs_history=4, weights=str(weights_file), device="cpu",
                          precision=precision)
    build_extractor(config.weights, set(config.content_layers) | set(config.style_layers))  # loaded before
    contents = [make_image(96, 72, seed=s) for s in (1, 2)]
    styles = [[make_image(64, 64, seed=s, kind="style")] for s in (3, 4)]
    peak = measured_peak(lambda: stylize(contents, styles, config))
    predicted = estimate(72, 96, config, "cpu").batch_bytes(2)
    assert abs(predicted - peak) <= 0.25 * peak, f"estimate {predicted:,} bytes, measured peak {peak:,}"


def test_the_estimate_grows_with_pixels_history_and_batch() -> None:
    config = EngineConfig(weights="random", iterations=500)
    small, large = estimate(256, 256, config), estimate(512, 512, config)
    assert 3.5 < large.per_image / small.per_image < 4.5  # per-image terms scale with the pixels
    short = estimate(512, 512, config.replace(iterations=10))
    assert short.lbfgs < large.lbfgs  # 9 curvature pairs, not 100
    assert large.batch_bytes(4) - large.batch_bytes(3) == large.per_image


def test_the_batch_size_fits_the_budget() -> None:
    config = EngineConfig(weights="random", size=256, device="cpu")
    found = estimate(256, 256, config, "cpu")
    budget = found.shared + int(3.5 * found.per_image)
    assert choose_batch_size(256, 256, config, "cpu", budget) == 3
    assert choose_batch_size(256, 256, config, "cpu", budget, limit=2) == 2
    assert choose_batch_size(256, 256, config, "cpu", 1) == 1  # nothing fits: one at a time, not zero


def test_memory_sizes_parse_with_clear_errors() -> None:
    assert parse_bytes("24GiB") == 24 << 30
    assert parse_bytes("1.5G") == 1_500_000_000
    assert parse_bytes("512 MiB") == 512 << 20
    with pytest.raises(EngineError, match="gpu-memory.*24 potatoes"):
        parse_bytes("24 potatoes")
    with pytest.raises(EngineError, match="more than 0"):
        parse_bytes("0")
