"""Stylize many same-shape pairs in batches that fit the memory, splitting a batch that runs out.

`stylize_batched` cuts the pairs into batches of the size `memory.choose_batch_size` allows,
runs each with `optimize.stylize`, and when CUDA runs out of memory it frees the cache, splits
the batch in halves and runs each half, down to single images: a single image that still does
not fit fails alone, with the reason, and every other pair finishes. Results come back in the
order the pairs were given, each with the peak GPU memory per image of the batch it ran in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from PIL import Image

from nst_engine import accel, images, memory
from nst_engine.config import EngineConfig
from nst_engine.errors import EngineError
from nst_engine.optimize import (MIN_SIDE, Losses, ProgressCallback, StylizeResult, TargetsProvider,
                                 resolve_device, stylize)
from nst_engine.vgg import VGGFeatures, WeightsInfo

log = logging.getLogger(__name__)

# stylize's signature; tests pass a wrapper that raises torch.OutOfMemoryError for big batches.
StylizeFn = Callable[..., StylizeResult]


@dataclass(frozen=True)
class ItemResult:
    """One pair's outcome: an image and its losses, or the reason it failed."""

    image: torch.Tensor | None  # [3, H, W] on the CPU, in [0, 1]; None when it failed
    losses: Losses | None
    error: str | None
    batch: int  # how many images the batch it finally ran in held
    batch_seconds: float  # the wall time of that batch's engine call (measured; not split per image)
    peak_memory_bytes: int | None  # its share of the batch's peak CUDA memory; None off CUDA
    optimization: tuple[dict[str, object], ...] = ()  # per scale: iterations, stop reason (StylizeResult)

    @property
    def ok(self) -> bool:
        return self.error is None

    def pil_image(self) -> Image.Image:
        if self.image is None:
            raise ValueError(f"no image: {self.error}")
        return images.to_pil(self.image)


@dataclass(frozen=True)
class BatchedResult:
    items: tuple[ItemResult, ...]  # in the order of the pairs given
    device: str
    precision: str  # what config.precision resolved to on this device
    batch_size: int  # the size the memory model chose (before any split)
    splits: int  # how many times running out of memory split a batch
    weights: WeightsInfo | None = None


def stylize_batched(contents: Sequence[Image.Image], styles: Sequence[Sequence[Image.Image]], config: EngineConfig,
                    *, callback: ProgressCallback | None = None, targets_for: TargetsProvider | None = None,
                    extractor: VGGFeatures | None = None, max_batch: int | None = None,
                    memory_budget: int | None = None, stylize_fn: StylizeFn = stylize) -> BatchedResult:
    """Stylize every pair (contents of one shape at config.size) in memory-sized batches.

    `targets_for(item, side)` is indexed like `contents`, as in `stylize`. `memory_budget`
    caps the bytes this process may allocate on the device (`--gpu-memory`); `max_batch` caps
    the batch size whatever the memory allows.
    """
    if len(contents) != len(styles) or not contents:
        raise EngineError(f"need one style list per content image, got {len(contents)} and {len(styles)}")
    device = resolve_device(config.device)
    width, height = images.fit_size(contents[0].size, config.size, MIN_SIDE)
    limit = min(len(contents), max_batch or len(contents))
    batch_size = memory.choose_batch_size(height, width, config, device, memory_budget, limit)
    runner = _Runner(contents, styles, config, device, callback, targets_for, extractor, stylize_fn, memory_budget)
    indices = list(range(len(contents)))
    items: list[ItemResult] = []
    for start in range(0, len(indices), batch_size):
        items += runner.run(indices[start:start + batch_size])
    return BatchedResult(tuple(items), str(device), accel.resolve_precision(config.precision, device),
                         batch_size, runner.splits, runner.weights)


class _Runner:
    """Runs batches of item indices, halving a batch that runs out of memory."""

    def __init__(self, contents: Sequence[Image.Image], styles: Sequence[Sequence[Image.Image]], config: EngineConfig,
                 device: torch.device, callback: ProgressCallback | None, targets_for: TargetsProvider | None,
                 extractor: VGGFeatures | None, stylize_fn: StylizeFn, memory_budget: int | None = None) -> None:
        self.contents, self.styles, self.config, self.device = contents, styles, config, device
        self.callback, self.targets_for, self.extractor, self.stylize_fn = callback, targets_for, extractor, stylize_fn
        self.memory_budget = memory_budget  # also plans the blocks of an image too large for one pass
        self.splits = 0
        self.weights: WeightsInfo | None = None

    def run(self, batch: list[int]) -> list[ItemResult]:
        try:
            return self._attempt(batch)
        except torch.OutOfMemoryError as exc:
            reason = f"out of memory on {self.device} with {len(batch)} image(s): {str(exc).splitlines()[0]}"
        # Outside the except block: the exception's frames, and the tensors they hold, are gone.
        _release(self.device)
        if len(batch) == 1:
            log.warning("pair %d failed alone: %s", batch[0], reason)
            return [ItemResult(None, None, f"{reason}; it does not fit even alone: lower size or free GPU memory",
                               1, 0.0, None)]
        self.splits += 1
        half = (len(batch) + 1) // 2
        log.warning("%s; splitting into %d + %d", reason, half, len(batch) - half)
        return self.run(batch[:half]) + self.run(batch[half:])

    def _attempt(self, batch: list[int]) -> list[ItemResult]:
        base = _start_peak(self.device)
        targets = None
        if self.targets_for is not None:
            provider = self.targets_for
            targets = lambda item, side: provider(batch[item], side)  # noqa: E731 - batch item -> caller's index
        start = time.perf_counter()
        result = self.stylize_fn([self.contents[i] for i in batch], [self.styles[i] for i in batch], self.config,
                                 callback=self.callback, targets_for=targets, extractor=self.extractor,
                                 memory_budget=self.memory_budget)
        seconds = time.perf_counter() - start
        peak = _peak_since(self.device, base)
        per_image = None if peak is None else peak // len(batch)
        self.weights = self.weights or result.weights
        return [ItemResult(image, losses, None, len(batch), seconds, per_image,
                           tuple(result.optimization(i)) if result.runs else ())
                for i, (image, losses) in enumerate(zip(result.images, result.losses))]


def _start_peak(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def _peak_since(device: torch.device, base: int | None) -> int | None:
    """Peak CUDA bytes above what was allocated before the batch (weights, cached targets)."""
    if base is None:
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
