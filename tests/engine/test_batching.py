"""Memory-sized batches and the split-on-out-of-memory retry, with a simulated CUDA OOM."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from nst_engine import EngineConfig, StylizeResult, stylize
from nst_engine.batching import stylize_batched
from nst_engine.images import to_tensor
from nst_engine.targets import StyleTargets, compute_style_targets
from nst_engine.vgg import build_extractor
from tests.conftest import make_image

OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB (simulated)"


def _config(weights_file: Path) -> EngineConfig:
    return EngineConfig(size=48, iterations=4, weights=str(weights_file), device="cpu")


def _pairs(count: int) -> tuple[list[Image.Image], list[list[Image.Image]]]:
    contents = [make_image(48, 36, seed=10 + i) for i in range(count)]
    styles = [[make_image(32, 32, seed=40 + i, kind="style")] for i in range(count)]
    return contents, styles


def _oom_when(too_big: Callable[[Sequence[Image.Image]], bool], calls: list[int]) -> Callable[..., StylizeResult]:
    """The real stylize, except that it raises CUDA's OOM error for the batches `too_big` names."""

    def run(contents: Sequence[Image.Image], styles: Any, config: EngineConfig, **kwargs: Any) -> StylizeResult:
        calls.append(len(contents))
        if too_big(contents):
            raise torch.OutOfMemoryError(OOM_TEXT)
        return stylize(contents, styles, config, **kwargs)

    return run


def test_an_out_of_memory_batch_is_split_until_every_pair_finishes(weights_file: Path) -> None:
    contents, styles = _pairs(5)
    calls: list[int] = []
    result = stylize_batched(contents, styles, _config(weights_file), max_batch=5,
                             stylize_fn=_oom_when(lambda batch: len(batch) > 2, calls))
    assert result.batch_size == 5
    assert calls == [5, 3, 2, 1, 2]  # 5 -> 3 + 2, then 3 -> 2 + 1
    assert result.splits == 2
    assert all(item.ok for item in result.items) and len(result.items) == 5
    assert [item.batch for item in result.items] == [2, 2, 1, 2, 2]
    assert all(item.peak_memory_bytes is None for item in result.items)  # no CUDA: nothing to report
    # In order: each output is still closest to its own content (init=content, few iterations).
    for index, item in enumerate(result.items):
        assert item.image is not None and item.image.shape == (3, 36, 48)
        distances = [float((item.image - _tensor(content)).abs().mean()) for content in contents]
        assert min(range(5), key=distances.__getitem__) == index


def test_an_image_that_does_not_fit_alone_fails_alone(weights_file: Path) -> None:
    contents, styles = _pairs(3)
    huge = contents[1]
    calls: list[int] = []
    result = stylize_batched(contents, styles, _config(weights_file), max_batch=3,
                             stylize_fn=_oom_when(lambda batch: any(c is huge for c in batch), calls))
    assert [item.ok for item in result.items] == [True, False, True]
    failed = result.items[1]
    assert failed.image is None and failed.losses is None
    assert failed.error is not None and "does not fit even alone" in failed.error and "simulated" in failed.error
    assert result.items[0].losses is not None and result.items[2].losses is not None


def test_targets_are_asked_for_by_the_callers_index(weights_file: Path) -> None:
    contents, styles = _pairs(3)
    config = _config(weights_file)
    extractor, _ = build_extractor(config.weights, set(config.content_layers) | set(config.style_layers))
    asked: list[int] = []

    def targets_for(item: int, side: int) -> StyleTargets:
        asked.append(item)
        image = torch.nn.functional.interpolate(_tensor(styles[item][0])[None], size=(side, side))
        return compute_style_targets(extractor, [image], config.style_layers)

    result = stylize_batched(contents, styles, config, max_batch=3, targets_for=targets_for, extractor=extractor,
                             stylize_fn=_oom_when(lambda batch: len(batch) > 1, []))
    assert all(item.ok for item in result.items)
    assert asked == [0, 1, 2]  # each batch of one asked for its own pair's targets


def test_the_memory_budget_sets_the_batch_size(weights_file: Path) -> None:
    contents, styles = _pairs(3)
    calls: list[int] = []
    # A 1-byte budget fits no image: the batch size falls to 1, never to 0.
    result = stylize_batched(contents, styles, _config(weights_file), memory_budget=1,
                             stylize_fn=_oom_when(lambda batch: False, calls))
    assert result.batch_size == 1 and calls == [1, 1, 1] and result.splits == 0


def _tensor(image: Image.Image) -> torch.Tensor:
    return to_tensor(image)[0]
