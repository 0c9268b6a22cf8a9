"""The memory model against the peak measured on the CPU, and the batch size it chooses.

How the CPU peak is measured, and why that way: benchmarks/memory_model.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.memory_model import compare
from nst_engine import EngineConfig
from nst_engine.errors import EngineError
from nst_engine.memory import choose_batch_size, estimate, parse_bytes


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_estimate_is_within_a_quarter_of_the_measured_peak(weights_file: Path, precision: str) -> None:
    # Two demo photos at 96x64; 6 iterations with a 4-pair history: the history ends full.
    peak, predicted = compare(precision, 96, 2, weights=str(weights_file))
    assert abs(predicted - peak) <= 0.25 * peak, f"estimate {predicted:,} bytes, measured peak {peak:,}"


def test_the_estimate_grows_with_pixels_history_and_batch() -> None:
    config = EngineConfig(weights="random", iterations=500)
    small, large = estimate(256, 256, config), estimate(512, 512, config)
    assert 3.5 < large.per_image / small.per_image < 4.5  # per-image terms scale with the pixels
    short = estimate(512, 512, config.replace(iterations=10))
    assert short.lbfgs < large.lbfgs  # 9 curvature pairs, not the history (20)
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
