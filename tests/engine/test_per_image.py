"""Every batch item is its own optimization: batch invariance, per-image convergence, written image."""

from __future__ import annotations

import io
from pathlib import Path

from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from nst_engine import EngineConfig, ProgressEvent, stylize
from nst_engine.images import encode_image, resize_max_side, to_tensor
from nst_engine.optimize import MIN_SIDE, _targets_from_images, evaluate_losses
from nst_engine.vgg import build_extractor
from tests.conftest import make_image

CONTENTS = [make_image(64, 48, seed=s) for s in (1, 5, 7, 11)]
STYLES = [[make_image(40, 40, seed=s, kind="style")] for s in (2, 9, 4, 6)]


def _config(weights_file: Path, **changes: object) -> EngineConfig:
    # Gatys as written (the objective these optimizer checks were sized on), not the normalised default.
    values: dict[str, object] = {"size": 64, "iterations": 100, "weights": str(weights_file), "tolerance": 0.0,
                                 "normalization": "none", **changes}
    return EngineConfig(**values)  # type: ignore[arg-type]


def test_a_pair_gives_the_same_image_alone_and_in_any_batch(weights_file: Path, one_torch_thread: None) -> None:
    config = _config(weights_file)
    alone = stylize(CONTENTS[:1], STYLES[:1], config)
    batch = stylize(CONTENTS, STYLES, config)
    # Partners in another order and another batch size: item 0 must not notice.
    other = stylize([CONTENTS[0], CONTENTS[2]], [STYLES[0], STYLES[3]], config)
    for result in (batch, other):
        assert abs(result.losses[0].total / alone.losses[0].total - 1) < 0.005
        assert float((result.images[0] - alone.images[0]).abs().max()) < 2 / 255
    # The partners really were optimized too, each its own way.
    assert len({round(loss.total, 6) for loss in batch.losses}) == 4


def _easy_style(content: Image.Image) -> Image.Image:
    """The content itself, slightly blurred: a pair whose optimum lies near the start."""
    return content.filter(ImageFilter.GaussianBlur(0.6))


def test_a_converged_image_stops_changing_while_its_batch_goes_on(weights_file: Path) -> None:
    easy, hard = CONTENTS[0], CONTENTS[1]
    config = _config(weights_file, iterations=80, tolerance=1e-2, tolerance_window=5)
    snapshots: list[tuple[int, torch.Tensor, int]] = []

    def watch(event: ProgressEvent) -> None:
        assert event.current is not None
        snapshots.append((event.step, event.current(), event.active))

    result = stylize([easy, hard], [[_easy_style(easy)], STYLES[1]], config, callback=watch)
    easy_run, hard_run = result.runs[0][0], result.runs[1][0]
    assert easy_run.stop == "converged" and easy_run.iterations < hard_run.iterations
    after = [(step, images) for step, images, _ in snapshots if step > easy_run.iterations]
    assert after and any(active == 1 for _, _, active in snapshots)
    frozen = [images[0] for _, images in after]
    assert all(torch.equal(frozen[0], image) for image in frozen[1:])  # the easy image stopped changing
    assert not torch.equal(after[0][1][1], after[-1][1][1])  # while its partner still changed
    # A converged image drops out of the compute: its evaluations stop with its iterations.
    assert easy_run.evaluations < hard_run.evaluations


def test_convergence_stops_before_the_cap_and_provenance_says_so(weights_file: Path) -> None:
    config = _config(weights_file, iterations=300, tolerance=1e-2, tolerance_window=10, scales=(0.5, 1.0))
    result = stylize(CONTENTS[:1], [[_easy_style(CONTENTS[0])]], config)
    record = result.optimization(0)
    assert [scale["stop"] for scale in record] == ["converged", "converged"]
    assert all(0 < scale["iterations"] < 300 for scale in record)
    assert record[0]["size"] == [32, 24] and record[1]["size"] == [64, 48]
    assert result.iterations == sum(scale["iterations"] for scale in record)


def _written_loss(weights_file: Path, config: EngineConfig, image: Image.Image) -> float:
    extractor, _ = build_extractor(str(weights_file), set(config.content_layers) | set(config.style_layers),
                                   config.pooling)
    content = to_tensor(resize_max_side(CONTENTS[0], config.size, MIN_SIDE))
    decoded = to_tensor(Image.open(io.BytesIO(encode_image(image))).convert("RGB"))
    targets_for = _targets_from_images(extractor, STYLES[:1], content, config)
    return evaluate_losses(extractor, content, decoded, targets_for, config)[0].total


def _clamp_every_evaluation(weights_file: Path, config: EngineConfig, evaluations: int) -> Image.Image:
    """The tutorial's L-BFGS: torch's optimizer, pixels clamped in place before every evaluation."""
    extractor, _ = build_extractor(str(weights_file), set(config.content_layers) | set(config.style_layers),
                                   config.pooling)
    content = to_tensor(resize_max_side(CONTENTS[0], config.size, MIN_SIDE))
    targets_for = _targets_from_images(extractor, STYLES[:1], content, config)
    x = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=100)

    def closure() -> torch.Tensor:
        with torch.no_grad():
            x.clamp_(0, 1)
        optimizer.zero_grad()
        loss = _objective_value(extractor, content, x, targets_for, config)
        loss.backward()
        return loss

    for _ in range(evaluations):
        optimizer.step(closure)
    from nst_engine.images import to_pil

    return to_pil(x.detach().clamp(0, 1))


def _objective_value(extractor, content, x, targets_for, config):  # type: ignore[no-untyped-def]
    from nst_engine.optimize import _Problem, stack_targets, style_side

    side = style_side(config, 1.0)
    targets = stack_targets([targets_for(0, side)], config.style_layers, x.device, config.style_statistic)
    with torch.no_grad():
        features = extractor(content)
    problem = _Problem(extractor, {n: features[n] for n in config.content_layers}, targets, config)
    return problem.terms(x, torch.arange(1))["total"].sum()


def test_the_written_png_scores_the_optimizers_loss(weights_file: Path) -> None:
    # A well-scaled objective on which clamping once at the end used to ruin the output.
    config = _config(weights_file, iterations=40, content_weight=1e3, style_weight=1e9)
    result = stylize(CONTENTS[:1], STYLES[:1], config)
    optimizer_loss = result.runs[0][0].loss
    written = _written_loss(weights_file, config, result.pil_images()[0])
    assert abs(written / optimizer_loss - 1) < 0.05
    reference = _written_loss(weights_file, config,
                              _clamp_every_evaluation(weights_file, config, result.runs[0][0].evaluations))
    assert written <= reference


def test_the_loss_keeps_falling_on_a_tiny_objective(weights_file: Path) -> None:
    # content 1e-3, style 1e3: y.s of order 1e-13, below torch's absolute curvature test. The
    # scale-free test keeps the pairs: the loss falls as far, relative to its start, as at scale 1.
    small = stylize(CONTENTS[:1], STYLES[:1], _config(weights_file, iterations=30, content_weight=1e-3,
                                                      style_weight=1e3))
    unit = stylize(CONTENTS[:1], STYLES[:1], _config(weights_file, iterations=30, content_weight=1.0,
                                                     style_weight=1e6))
    assert np.isclose(small.losses[0].total * 1e3, unit.losses[0].total, rtol=0.05)
