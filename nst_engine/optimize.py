"""The Gatys optimization loop: a batch of same-size images, one or several scales."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from nst_engine import accel, color, images
from nst_engine.config import EngineConfig
from nst_engine.errors import EngineError
from nst_engine.losses import content_loss, style_loss, total_variation
from nst_engine.targets import StyleTargets, compute_style_targets, stack_targets
from nst_engine.vgg import VGGFeatures, WeightsInfo, build_extractor


@dataclass(frozen=True)
class Losses:
    """Unweighted terms and the weighted total of the objective for one image."""

    content: float
    style: float
    tv: float
    total: float


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the callback after every iteration. Losses are means over the batch."""

    scale_index: int  # 0-based
    scale_count: int
    height: int
    width: int
    step: int  # 1-based, within this scale
    steps: int  # iterations at this scale
    losses: Losses
    elapsed: float  # seconds since the optimization started


ProgressCallback = Callable[[ProgressEvent], None]
# (batch item, style image max side in pixels) -> the Gram targets for that item at that size
TargetsProvider = Callable[[int, int], StyleTargets]


@dataclass(frozen=True)
class StylizeResult:
    images: torch.Tensor  # [B, 3, H, W] on the CPU, in [0, 1]
    losses: tuple[Losses, ...]  # per image, at the final scale's final image
    seconds: float
    iterations: int  # summed over scales
    device: str
    weights: WeightsInfo | None = None

    def pil_images(self) -> list[Image.Image]:
        return [images.to_pil(image) for image in self.images]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return device


# Four 2x2 poolings stand before conv5_1: smaller images lose the deepest style layer.
MIN_SIDE = 16


def scale_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def style_side(config: EngineConfig, scale: float) -> int:
    """Max side of the style image(s) at one scale: the output's max side x scale x style_scale."""
    return max(MIN_SIDE, round(config.size * scale * config.style_scale))


def optimize(extractor: VGGFeatures, content: torch.Tensor, targets_for: TargetsProvider,
             config: EngineConfig, *, init: torch.Tensor | None = None,
             callback: ProgressCallback | None = None) -> StylizeResult:
    """Stylize a batch: content [B, 3, H, W] in [0, 1] at the final size.

    `targets_for(item, side)` gives each item's style Grams at each scale's style size, so a
    caller may serve them from a cache. `init` is the starting image for init="style".
    """
    device = next(extractor.parameters()).device
    accel.prepare(extractor, device, config.precision)  # issue 14: TF32 flags, cudnn.benchmark, channels_last
    content = content.to(device)
    batch, _, height, width = content.shape
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    x: torch.Tensor | None = None
    counts = config.iterations_per_scale()
    last: dict[str, torch.Tensor] = {}
    for index, (scale, steps) in enumerate(zip(config.scales, counts)):
        shape = scale_shape(height, width, scale)
        content_s = _resize(content, shape)
        if x is None:
            x = _initial_image(config, content_s, None if init is None else _resize(init.to(device), shape))
        else:
            x = _resize(x, shape).clamp(0, 1)  # coarse result seeds the finer scale
        side = style_side(config, scale)
        grams = stack_targets([targets_for(i, side) for i in range(batch)], config.style_layers, device)
        with torch.no_grad():
            features = extractor(content_s)
        content_targets = {name: features[name].detach() for name in config.content_layers}
        x, last = _run_scale(extractor, x, content_targets, grams, config, steps,
                             lambda step, terms: _report(callback, (index, len(counts)), shape, step, steps, terms, start))
    assert x is not None
    with torch.no_grad():
        last = _objective(extractor, x, content_targets, grams, config)
        result = color.preserve_colors(x, content) if config.preserve_colors else x
    losses = tuple(Losses(*(float(last[k][i]) for k in ("content", "style", "tv", "total"))) for i in range(batch))
    return StylizeResult(result.detach().float().cpu(), losses, time.perf_counter() - start,
                         sum(counts), str(device))


def _run_scale(extractor: VGGFeatures, x: torch.Tensor, content_targets: dict[str, torch.Tensor],
               grams: dict[str, torch.Tensor], config: EngineConfig, steps: int,
               report: Callable[[int, dict[str, torch.Tensor]], None]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = x.detach().clone().requires_grad_(True)
    if config.optimizer == "lbfgs":
        # max_iter=1: one objective evaluation per step() call, history kept across calls.
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=config.lr(), max_iter=1, history_size=config.lbfgs_history,
            tolerance_grad=0.0, tolerance_change=0.0)
    else:
        optimizer = torch.optim.Adam([x], lr=config.lr())
    terms: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        nonlocal terms
        optimizer.zero_grad(set_to_none=True)
        with _autocast(x.device, config.precision):
            terms = _objective(extractor, x, content_targets, grams, config)
        total = terms["total"].sum()  # items are independent: the sum keeps their gradients apart
        total.backward()
        return total

    # Clamping behind L-BFGS's back breaks its curvature pairs (s = x_new - x_old) and makes the
    # loss spike; so L-BFGS runs unconstrained and the image is clamped after each scale. Adam
    # keeps no such history and is clamped every step.
    clamp_each_step = config.optimizer != "lbfgs"
    for step in range(1, steps + 1):
        optimizer.step(closure)
        if clamp_each_step:
            with torch.no_grad():
                x.clamp_(0, 1)
        report(step, terms)
    return x.detach().clamp(0, 1), terms


def _objective(extractor: VGGFeatures, x: torch.Tensor, content_targets: dict[str, torch.Tensor],
               grams: dict[str, torch.Tensor], config: EngineConfig) -> dict[str, torch.Tensor]:
    features = extractor(x)
    c = content_loss(features, content_targets)
    s = style_loss({k: v.float() for k, v in features.items()}, grams, config.layer_weights())
    tv = total_variation(x) if config.tv_weight > 0 else torch.zeros_like(c)
    total = config.content_weight * c + config.style_weight * s + config.tv_weight * tv
    return {"content": c.detach(), "style": s.detach(), "tv": tv.detach(), "total": total}


def _report(callback: ProgressCallback | None, scale: tuple[int, int], shape: tuple[int, int], step: int, steps: int,
            terms: dict[str, torch.Tensor], start: float) -> None:
    if callback is None or not terms:
        return
    means = [float(terms[k].detach().mean()) for k in ("content", "style", "tv", "total")]
    callback(ProgressEvent(scale[0], scale[1], shape[0], shape[1], step, steps, Losses(*means),
                           time.perf_counter() - start))


def _initial_image(config: EngineConfig, content: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)  # on the CPU: same noise on any device
        return torch.rand(content.shape, generator=generator).to(content.device)
    if style is None:
        raise EngineError("init='style' needs the style image as `init`")
    return style.clone()


def _resize(batch: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(batch.shape[-2:]) == shape:
        return batch
    return F.interpolate(batch, size=shape, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    return accel.network_autocast(device, precision)  # issue 14: resolves "auto", none for fp32/tf32


# ---- the whole job from PIL images ------------------------------------------------------


def stylize(contents: Sequence[Image.Image], styles: Sequence[Sequence[Image.Image]], config: EngineConfig, *,
            callback: ProgressCallback | None = None, targets_for: TargetsProvider | None = None,
            extractor: VGGFeatures | None = None) -> StylizeResult:
    """Stylize B content images, each with its own style image(s), in one batched optimization.

    Contents are resized to `config.size` (max side) and must then share one shape. Without
    `targets_for`, style Grams are computed here from `styles` (blended by config.style_blend).
    """
    if len(contents) != len(styles) or not contents:
        raise EngineError(f"need one style list per content image, got {len(contents)} and {len(styles)}")
    device = resolve_device(config.device)
    info = None
    if extractor is None:
        layers = set(config.content_layers) | set(config.style_layers)
        extractor, info = build_extractor(config.weights, layers, config.pooling, device)
    resized = [images.resize_max_side(image, config.size, MIN_SIDE) for image in contents]
    if len({image.size for image in resized}) != 1:
        raise EngineError(f"a batch needs contents of one shape at size {config.size}, got "
                          f"{sorted({image.size for image in resized})}")
    content = torch.cat([images.to_tensor(image) for image in resized]).to(device)
    if targets_for is None:
        targets_for = _targets_from_images(extractor, styles, content, config)
    init = None
    if config.init == "style":
        init = torch.cat([_style_tensor(group[0], content[i:i + 1], config, exact=True)
                          for i, group in enumerate(styles)])
    result = optimize(extractor, content, targets_for, config, init=init, callback=callback)
    return StylizeResult(result.images, result.losses, result.seconds, result.iterations, result.device, info)


def style_tensors(style_images: Sequence[Image.Image], side: int, content: torch.Tensor | None,
                  config: EngineConfig) -> list[torch.Tensor]:
    """Style images at `side` pixels max side, recoloured toward `content` if match_histogram."""
    return [_style_tensor(image, content, config, side=side) for image in style_images]


def _style_tensor(image: Image.Image, content: torch.Tensor | None, config: EngineConfig, *,
                  side: int | None = None, exact: bool = False) -> torch.Tensor:
    if exact and content is not None:  # init="style": the style stretched to the content's shape
        tensor = images.to_tensor(image.resize((content.shape[-1], content.shape[-2]), Image.Resampling.BICUBIC))
    else:
        tensor = images.to_tensor(images.resize_max_side(image, side or config.size, MIN_SIDE))
    if content is not None:
        tensor = tensor.to(content.device)
        if config.match_histogram:
            tensor = color.match_color_statistics(tensor, content)
    return tensor


def _targets_from_images(extractor: VGGFeatures, styles: Sequence[Sequence[Image.Image]], content: torch.Tensor,
                         config: EngineConfig) -> TargetsProvider:
    memo: dict[tuple[int, int], StyleTargets] = {}

    def provide(item: int, side: int) -> StyleTargets:
        if (item, side) not in memo:
            tensors = style_tensors(styles[item], side, content[item:item + 1], config)
            memo[(item, side)] = compute_style_targets(extractor, tensors, config.style_layers, config.style_blend)
        return memo[(item, side)]

    return provide
