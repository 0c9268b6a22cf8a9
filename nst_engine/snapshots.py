"""Save the image being optimized every N iterations (jcjohnson's -save_iter, crowsonkb's --save-every)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nst_engine.images import save_image, to_pil
from nst_engine.optimize import ProgressCallback, ProgressEvent


def snapshot_path(output: str | Path, event: ProgressEvent) -> Path:
    """out.png -> out.scale1.iter0050.png (scale 1-based, iteration within the scale)."""
    output = Path(output)
    return output.with_name(f"{output.stem}.scale{event.scale_index + 1}.iter{event.step:04d}{output.suffix}")


def snapshot_paths(output: str | Path, iterations_per_scale: Sequence[int], every: int) -> list[Path]:
    """Every file save_every(every, output) may write for these iterations: checked before any
    work (a snapshot name may be an input's, or a file the user keeps)."""
    output = Path(output)
    return [output.with_name(f"{output.stem}.scale{scale + 1}.iter{step:04d}{output.suffix}")
            for scale, steps in enumerate(iterations_per_scale) for step in range(every, steps + 1, every)]


def save_every(every: int, output: str | Path, item: int = 0,
               then: ProgressCallback | None = None) -> ProgressCallback:
    """A progress callback that writes batch item `item`'s current image every `every` iterations
    beside `output` (see snapshot_path), then calls `then` (e.g. a progress bar)."""
    if every < 1:
        raise ValueError(f"save every N iterations needs N >= 1, got {every}")

    def callback(event: ProgressEvent) -> None:
        if event.step % every == 0 and event.current is not None:
            save_image(to_pil(event.current()[item]), snapshot_path(output, event))
        if then is not None:
            then(event)

    return callback


__all__ = ["save_every", "snapshot_path", "snapshot_paths"]
