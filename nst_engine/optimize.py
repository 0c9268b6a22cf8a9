"""The Gatys optimization loop: a batch of same-size images, one or several scales."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from nst_engine import accel, blockwise, color, images, memory
from nst_engine.blockwise import BlockedObjective, BlockPlan
from nst_engine.config import INITS, EngineConfig
from nst_engine.errors import EngineError
from nst_engine.lbfgs import BatchAdam, BatchLBFGS
from nst_engine.losses import content_loss, style_loss, style_norms, target_norms, total_variation
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
    step: int  # 1-based, within this scale: iterations done by the furthest image
    steps: int  # iterations at this scale (the cap)
    losses: Losses
    elapsed: float  # seconds since the optimization started
    active: int = 0  # images still optimizing at this scale
    # The batch's current images [B, 3, H, W] in [0, 1] (each image's best so far), computed
    # only when called: for saving snapshots every N iterations.
    current: Callable[[], torch.Tensor] | None = None


ProgressCallback = Callable[[ProgressEvent], None]
# (batch item, style image max side in pixels) -> the style targets for that item at that size
TargetsProvider = Callable[[int, int], StyleTargets]

STOP_REASONS = ("converged", "cap", "stalled")


@dataclass(frozen=True)
class ScaleRun:
    """How one image's optimization went at one scale."""

    height: int
    width: int
    iterations: int  # iterations run (<= the cap)
    evaluations: int  # forward/backward passes spent on this image
    stop: str  # converged: tolerance met | cap: ran `iterations` | stalled: no step decreased the loss
    loss: float  # best total loss at this scale
    curvature_pairs: int = 0  # L-BFGS (s, y) pairs held at the end (0 for Adam)
    blocks: BlockPlan | None = None  # the blocks each evaluation ran in; None: the whole image at once

    def to_dict(self) -> dict[str, object]:
        return {"size": [self.width, self.height], "iterations": self.iterations, "evaluations": self.evaluations,
                "stop": self.stop, "loss": self.loss, "curvature_pairs": self.curvature_pairs,
                "blocks": self.blocks.to_dict() if self.blocks else None}


@dataclass(frozen=True)
class StylizeResult:
    images: torch.Tensor  # [B, 3, H, W] on the CPU, in [0, 1]
    losses: tuple[Losses, ...]  # per image, of the written (8-bit) image at the final scale
    seconds: float
    iterations: int  # summed over scales: the most any image ran
    device: str
    weights: WeightsInfo | None = None
    runs: tuple[tuple[ScaleRun, ...], ...] = ()  # per image, per scale

    def pil_images(self) -> list[Image.Image]:
        return [images.to_pil(image) for image in self.images]

    def optimization(self, item: int) -> list[dict[str, object]]:
        """Per scale: iterations run and why it stopped (for provenance)."""
        return [run.to_dict() for run in self.runs[item]] if self.runs else []


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


def block_plan(config: EngineConfig, height: int, width: int, batch: int, device: torch.device,
               memory_budget: int | None = None) -> BlockPlan | None:
    """The blocks an image of height x width is evaluated in (nst_engine.blockwise); None for the
    whole image at once: block_size 0 and the whole image fits the memory, or one block covers it."""
    size = config.block_size or memory.plan_block(height, width, config, device, memory_budget, batch)
    if size == 0 or (size >= height and size >= width):
        return None
    return blockwise.plan_blocks(height, width, size, config.block_margin)


def optimize(extractor: VGGFeatures, content: torch.Tensor, targets_for: TargetsProvider,
             config: EngineConfig, *, init: torch.Tensor | None = None,
             callback: ProgressCallback | None = None, memory_budget: int | None = None) -> StylizeResult:
    """Stylize a batch: content [B, 3, H, W] in [0, 1] at the final size.

    Every item is optimized as its own problem (nst_engine.lbfgs); one forward/backward pass
    serves the items still running. `targets_for(item, side)` gives each item's style targets at
    each scale's style size, so a caller may serve them from a cache. `init` is the starting
    image for init="style" or an image path. Each scale runs whole or in blocks (block_plan;
    `memory_budget` caps the bytes it plans for, as --gpu-memory).
    """
    device = next(extractor.parameters()).device
    accel.prepare(extractor, device, config.precision)  # TF32 flags, cudnn.benchmark, channels_last
    content = content.to(device)
    batch, _, height, width = content.shape
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    x: torch.Tensor | None = None
    counts = config.iterations_per_scale()
    runs: list[list[ScaleRun]] = [[] for _ in range(batch)]
    problem: _Problem | None = None
    for index, (scale, steps) in enumerate(zip(config.scales, counts)):
        shape = scale_shape(height, width, scale)
        content_s = _resize(content, shape)
        if x is None:
            x = _initial_image(config, content_s, None if init is None else _resize(init.to(device), shape))
        else:
            x = _resize(x, shape).clamp(0, 1)  # coarse result seeds the finer scale
        side = style_side(config, scale)
        targets = stack_targets([targets_for(i, side) for i in range(batch)], config.style_layers, device,
                                config.style_statistic)
        plan = block_plan(config, shape[0], shape[1], batch, device, memory_budget)
        if plan is None:
            with torch.no_grad():
                features = extractor(content_s)
            content_targets = {name: features[name].detach().float() for name in config.content_layers}
        else:
            content_targets = blockwise.feature_maps(extractor, content_s, plan, config.content_layers,
                                                     lambda: _autocast(device, config.precision))
        problem = _Problem(extractor, content_targets, targets, config, plan)
        x, scale_runs = _run_scale(problem, x, steps, shape, index, len(counts), callback, start)
        for item, run in enumerate(scale_runs):
            runs[item].append(run)
    assert x is not None and problem is not None
    with torch.no_grad():
        written = (x * 255).round() / 255  # the loss reported is that of the 8-bit image written
        last = problem.terms(written, torch.arange(batch, device=device))
        result = color.preserve_colors(x, content) if config.preserve_colors else x
    losses = tuple(Losses(*(float(last[k][i]) for k in ("content", "style", "tv", "total"))) for i in range(batch))
    iterations = max(sum(run.iterations for run in item_runs) for item_runs in runs)
    return StylizeResult(result.detach().float().cpu(), losses, time.perf_counter() - start,
                         iterations, str(device), runs=tuple(tuple(r) for r in runs))


def evaluate_losses(extractor: VGGFeatures, content: torch.Tensor, images_: torch.Tensor,
                    targets_for: TargetsProvider, config: EngineConfig) -> tuple[Losses, ...]:
    """The objective of `images_` [B, 3, H, W] (e.g. decoded output PNGs) at the final scale,
    exactly as the optimizer measures it."""
    device = next(extractor.parameters()).device
    content = content.to(device)
    batch = content.shape[0]
    side = style_side(config, config.scales[-1])
    targets = stack_targets([targets_for(i, side) for i in range(batch)], config.style_layers, device,
                            config.style_statistic)
    with torch.no_grad():
        features = extractor(content)
        problem = _Problem(extractor, {n: features[n].float() for n in config.content_layers}, targets, config)
        terms = problem.terms(images_.to(device), torch.arange(batch, device=device))
    return tuple(Losses(*(float(terms[k][i]) for k in ("content", "style", "tv", "total"))) for i in range(batch))


class _Problem:
    """The objective at one scale for the whole batch; evaluates any subset of its items."""

    def __init__(self, extractor: VGGFeatures, content_targets: dict[str, torch.Tensor],
                 style_targets: dict[str, torch.Tensor], config: EngineConfig, plan: BlockPlan | None = None) -> None:
        self.extractor, self.config, self.plan = extractor, config, plan
        self.content_targets, self.style_targets = content_targets, style_targets
        balanced = config.normalization == "target"
        # Balanced objective: each term divided by its own target's mean square, per image and
        # per scale, so one style weight means the same for any style, photo, size or network.
        self.content_norms = target_norms(content_targets) if balanced else None
        self.style_norms = style_norms(style_targets, config.style_statistic) if balanced else None
        self._subset_key: tuple[int, ...] | None = None
        self._subset: tuple[dict[str, torch.Tensor], ...] = ()

    def _select(self, items: torch.Tensor) -> tuple[dict[str, torch.Tensor], ...]:
        key = tuple(items.tolist())
        if key != self._subset_key:  # re-indexed only when the active set changes
            tables = (self.content_targets, self.style_targets, self.content_norms or {}, self.style_norms or {})
            self._subset = tuple({k: v[items] for k, v in table.items()} for table in tables)
            self._subset_key = key
        return self._subset

    def blocked(self, items: torch.Tensor) -> BlockedObjective:
        """The objective of `items`, evaluated in self.plan's blocks."""
        assert self.plan is not None
        content_t, style_t, content_n, style_n = self._select(items)
        config, device = self.config, next(self.extractor.parameters()).device
        return BlockedObjective(self.extractor, self.plan, content_t, style_t, content_n or None, style_n or None,
                                config.layer_weights(), config.style_statistic, config.content_weight,
                                config.style_weight, config.tv_weight, lambda: _autocast(device, config.precision))

    def terms(self, x: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.plan is not None:  # the loss alone, block by block: the whole image's would not fit
            return self.blocked(items).loss_and_grad(x, grad=False)[0]
        content_t, style_t, content_n, style_n = self._select(items)
        config = self.config
        with _autocast(x.device, config.precision):
            features = self.extractor(x)
        c = content_loss({k: features[k].float() for k in content_t}, content_t, content_n or None)
        s = style_loss({k: v.float() for k, v in features.items()}, style_t, config.layer_weights(), style_n or None,
                       config.style_statistic)
        tv = total_variation(x) if config.tv_weight > 0 else torch.zeros_like(c)
        total = config.content_weight * c + config.style_weight * s + config.tv_weight * tv
        return {"content": c.detach(), "style": s.detach(), "tv": tv.detach(), "total": total}


# Sigmoid-bounded pixels start this far inside (0, 1): logit(0) is infinite.
_SIGMOID_MARGIN = 1e-3


def _run_scale(problem: _Problem, x0: torch.Tensor, steps: int, shape: tuple[int, int], scale_index: int,
               scale_count: int, callback: ProgressCallback | None,
               start: float) -> tuple[torch.Tensor, list[ScaleRun]]:
    config = problem.config
    batch = x0.shape[0]
    sigmoid = config.bounds == "sigmoid"
    to_pixels = (lambda z: torch.sigmoid(z)) if sigmoid else (lambda z: z)
    z0 = torch.logit(x0.clamp(_SIGMOID_MARGIN, 1 - _SIGMOID_MARGIN)) if sigmoid else x0.clamp(0, 1)
    z0 = z0.detach().float().reshape(batch, -1)
    everyone = torch.arange(batch, device=x0.device)
    latest: dict[str, torch.Tensor] = {}

    def evaluate(items: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = rows.detach().reshape(len(items), *x0.shape[1:]).requires_grad_(True)
        if problem.plan is None:
            terms = problem.terms(to_pixels(z), items)
            # Items are independent: the sum's gradient keeps each image's gradient its own.
            terms["total"].sum().backward()
        else:
            pixels = to_pixels(z)
            terms, grad = problem.blocked(items).loss_and_grad(pixels)
            pixels.backward(grad)  # on through the sigmoid bound, if any, to z
        for name, value in terms.items():
            latest.setdefault(name, torch.zeros(batch, device=x0.device))[items] = value.detach().float()
        return terms["total"].detach().float(), z.grad.detach().reshape(len(items), -1)

    best_f = torch.full((batch,), math.inf, device=x0.device)
    best_z = z0.clone()
    evaluations = torch.zeros(batch, dtype=torch.long)
    iterations = torch.zeros(batch, dtype=torch.long)
    stops: list[str | None] = [None] * batch
    # best_history[b, k]: item b's best loss after k iterations (convergence compares across a window)
    best_history = torch.full((batch, steps + 1), math.inf, dtype=torch.float64)

    def record(items: torch.Tensor, rows: torch.Tensor, f: torch.Tensor) -> None:
        evaluations[items.cpu()] += 1
        better = f < best_f[items]
        if better.any():
            best_f[items[better]] = f[better]
            best_z[items[better]] = rows[better]

    optimizer: BatchLBFGS | BatchAdam
    if config.optimizer == "lbfgs":
        with torch.enable_grad():
            f0, g0 = evaluate(everyone, z0)
        record(everyone, z0, f0)
        best_history[:, 0] = best_f.double().cpu()
        history = memory.lbfgs_history(config, shape[0], shape[1])  # shrinks at print sizes
        optimizer = BatchLBFGS(z0, f0, g0, history=max(1, min(history, steps)), lr=config.lr(),
                               line_search=config.line_search, bounds=None if sigmoid else (0.0, 1.0))
    else:
        optimizer = BatchAdam(z0, lr=config.lr(), bounds=None if sigmoid else (0.0, 1.0))
    active = torch.ones(batch, dtype=torch.bool)
    if steps == 0:
        active[:] = False
        stops = ["cap"] * batch
    furthest = 0
    while active.any():
        items = active.nonzero().squeeze(1).to(x0.device)
        rows = optimizer.trial(items)
        with torch.enable_grad():
            f, g = evaluate(items, rows)
        record(items, rows, f)
        outcome = optimizer.update(items, f, g)
        for row, item in enumerate(items.tolist()):
            if bool(outcome.completed[row]):
                iterations[item] += 1
                done = int(iterations[item])
                best_history[item, done] = float(best_f[item])
                if done >= steps:
                    stops[item] = "cap"
                elif _converged(best_history[item], done, config):
                    stops[item] = "converged"
            elif bool(outcome.stalled[row]):
                # A vanished gradient is a minimum reached (e.g. the start already is one).
                stops[item] = "converged" if bool(outcome.zero_gradient[row]) else "stalled"
            if stops[item] is not None:
                active[item] = False
        if int(iterations.max()) > furthest:
            furthest = int(iterations.max())
            _report(callback, scale_index, scale_count, shape, furthest, steps, latest, start, int(active.sum()),
                    lambda: to_pixels(best_z).reshape(x0.shape).detach().clamp(0, 1).float().cpu())
    with torch.no_grad():
        x = to_pixels(best_z).reshape(x0.shape).clamp(0, 1)
    pairs = optimizer.pairs_held().tolist() if isinstance(optimizer, BatchLBFGS) else [0] * batch
    runs = [ScaleRun(shape[0], shape[1], int(iterations[i]), int(evaluations[i]), stops[i] or "cap",
                     float(best_f[i]), int(pairs[i]), problem.plan) for i in range(batch)]
    return x, runs


def _converged(best: torch.Tensor, done: int, config: EngineConfig) -> bool:
    """The best loss fell by less than `tolerance` (relative) over the last `tolerance_window` iterations."""
    window = config.tolerance_window
    if config.tolerance <= 0 or done < window:
        return False
    old, new = float(best[done - window]), float(best[done])
    if not math.isfinite(old):
        return False
    return old - new <= config.tolerance * abs(old)


def _report(callback: ProgressCallback | None, scale_index: int, scale_count: int, shape: tuple[int, int],
            step: int, steps: int, terms: dict[str, torch.Tensor], start: float, active: int,
            current: Callable[[], torch.Tensor]) -> None:
    if callback is None or not terms:
        return
    means = [float(terms[k].mean()) for k in ("content", "style", "tv", "total")]
    callback(ProgressEvent(scale_index, scale_count, shape[0], shape[1], step, steps, Losses(*means),
                           time.perf_counter() - start, active, current))


def _initial_image(config: EngineConfig, content: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)  # on the CPU: same noise on any device
        return torch.rand(content.shape, generator=generator).to(content.device)
    if init is None:
        raise EngineError(f"init={config.init!r} needs the starting image as `init`")
    return init.clone().clamp(0, 1)


def _resize(batch: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(batch.shape[-2:]) == shape:
        return batch
    return F.interpolate(batch, size=shape, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    return accel.network_autocast(device, precision)  # resolves "auto", none for fp32/tf32


# ---- the whole job from PIL images ------------------------------------------------------


def stylize(contents: Sequence[Image.Image], styles: Sequence[Sequence[Image.Image]], config: EngineConfig, *,
            callback: ProgressCallback | None = None, targets_for: TargetsProvider | None = None,
            extractor: VGGFeatures | None = None, memory_budget: int | None = None) -> StylizeResult:
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
        extractor, info = build_extractor(config.weights, layers, config.pooling, device, config.input_convention)
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
    elif config.init not in INITS:  # an image file (jcjohnson's -init_image), stretched to the content
        start = images.load_image(config.init)
        init = _style_tensor(start, content[:1], config.replace(match_histogram=False), exact=True).expand_as(content)
    result = optimize(extractor, content, targets_for, config, init=init, callback=callback,
                      memory_budget=memory_budget)
    return replace(result, weights=info)


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


def style_block_planner(config: EngineConfig, device: torch.device,
                        memory_budget: int | None = None) -> Callable[[int, int], BlockPlan | None]:
    """How compute_style_targets cuts a style image of (height, width): as block_plan does an output."""
    return lambda height, width: block_plan(config, height, width, 1, device, memory_budget)


def _targets_from_images(extractor: VGGFeatures, styles: Sequence[Sequence[Image.Image]], content: torch.Tensor,
                         config: EngineConfig) -> TargetsProvider:
    memo: dict[tuple[int, int], StyleTargets] = {}

    def provide(item: int, side: int) -> StyleTargets:
        if (item, side) not in memo:
            tensors = style_tensors(styles[item], side, content[item:item + 1], config)
            memo[(item, side)] = compute_style_targets(extractor, tensors, config.style_layers, config.style_blend,
                                                       statistic=config.style_statistic,
                                                       blocks=style_block_planner(config, content.device))
        return memo[(item, side)]

    return provide
