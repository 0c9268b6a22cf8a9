"""Run nst_engine.stylize and note when it first reaches a target loss: seconds and evaluations.

Shared by benchmarks/vs_pastiche.py and benchmarks/levers.py. An evaluation is one forward and
backward pass through VGG-19; one at a coarse scale counts as its share of the full-size pixels
("full-size-equivalent evaluations"), which is what it costs on a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image
from torch import nn

from nst_engine.config import EngineConfig
from nst_engine.optimize import ProgressEvent, StylizeResult, stylize
from nst_engine.vgg import VGGFeatures

# image [1, 3, H, W] in [0, 1] at the final size -> the loss of that image as written (8-bit)
Judge = Callable[[torch.Tensor], float]


class CountingExtractor(nn.Module):
    """The extractor, counting the passes that need a gradient (the optimizer's evaluations),
    each weighted by its pixels relative to `full_pixels`."""

    def __init__(self, inner: VGGFeatures, full_pixels: int) -> None:
        super().__init__()
        self.inner, self.full_pixels = inner, full_pixels
        self.evaluations = 0.0
        self.passes = 0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.requires_grad:
            self.evaluations += x.shape[0] * x.shape[-2] * x.shape[-1] / self.full_pixels
            self.passes += 1
        return self.inner(x)


@dataclass(frozen=True)
class Point:
    """After one iteration: where the run stood."""

    scale: int  # 0-based scale index
    final_scale: bool
    evaluations: float  # full-size-equivalent, since the start
    seconds: float  # since the stylize call, judging time left out
    loss: float  # the latest evaluated loss (pixels within bounds, float)


@dataclass
class Race:
    points: list[Point] = field(default_factory=list)
    reached_seconds: float | None = None  # when a written (8-bit) picture first met the target
    reached_evaluations: float | None = None
    reached_loss: float | None = None  # that picture's loss (the judge's)
    image: torch.Tensor | None = None  # [1, 3, H, W] in [0, 1]: the picture at the target, else the final one
    result: StylizeResult | None = None  # when the run went to its end
    seconds: float = 0.0  # the whole run (to the target when it stopped there)
    evaluations: float = 0.0
    frames: dict[int, torch.Tensor] = field(default_factory=dict)  # points so far -> picture, every keep_every


    def best(self) -> float:
        return min((p.loss for p in self.points if p.final_scale), default=float("inf"))

    def first_below(self, loss: float) -> Point | None:
        """The first final-scale point whose float loss is <= `loss`."""
        return next((p for p in self.points if p.final_scale and p.loss <= loss), None)


class _Reached(Exception):
    pass


def race(extractor: VGGFeatures, content: Image.Image, style: Image.Image, config: EngineConfig, *,
         target: float | None = None, judge: Judge | None = None, stop_at_target: bool = True, keep_every: int = 0) -> Race:
    """stylize() one pair, recording every iteration. With `target` and `judge`: whenever the
    float loss at the final scale is <= target, the judge scores the current best picture as
    written (its time is left out of the clock); the first that scores <= target is the result,
    and the run stops there when `stop_at_target`. `keep_every` > 0 keeps the best picture every that
    many iterations at the final scale (Race.frames)."""
    full = content.width * content.height
    counted = CountingExtractor(extractor, full)
    out = Race()
    paused = 0.0
    start = time.perf_counter()

    def on_event(event: ProgressEvent) -> None:
        nonlocal paused
        now = time.perf_counter()
        final = event.scale_index == event.scale_count - 1
        out.points.append(Point(event.scale_index, final, counted.evaluations, now - start - paused,
                                event.losses.total))
        if keep_every and final and len(out.points) % keep_every == 0 and event.current is not None:
            out.frames[len(out.points)] = event.current()[0].clone()
            paused += time.perf_counter() - now
            now = time.perf_counter()
        if (target is None or judge is None or out.reached_seconds is not None or not final
                or event.losses.total > target or event.current is None):
            return
        before = paused
        picture = event.current()
        written = judge(picture)
        paused += time.perf_counter() - now
        if written <= target:
            out.reached_seconds, out.reached_evaluations = now - start - before, counted.evaluations
            out.reached_loss, out.image = written, picture
            if stop_at_target:
                raise _Reached

    try:
        out.result = stylize([content], [[style]], config, callback=on_event, extractor=counted)
        if out.image is None:
            out.image = out.result.images[:1]
    except _Reached:
        pass
    out.seconds = time.perf_counter() - start - paused
    out.evaluations = counted.evaluations
    return out


__all__ = ["CountingExtractor", "Point", "Race", "race"]
