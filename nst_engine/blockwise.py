"""Exact block-wise evaluation: the whole image's loss and gradient, one block at a time.

After Galerne, Raad, Lezama and Morel, "Scaling Painting Style Transfer" (EGSR 2024),
implemented from the paper's description. Inner blocks partition the image; each runs through
VGG-19 with a margin of context (clipped at the image border) so its inner features are the
whole image's: block offsets are multiples of 16, so the four poolings line up, and a margin
of 80 px or more covers relu5_1's receptive field (156 px). Then:

  pass A (no grad): every block's inner features add to sums over the whole image: F F^T and
      F for the style statistics (nst_engine.statistics.from_moments turns them into the
      exact global Gram or mean/covariance), and the squared difference to the content target.
  the loss: from those global sums, by the same functions as the whole image's.
  pass B (per block): a forward with grad, then torch.autograd.grad from the analytic gradient
      of the loss with respect to the block's inner feature maps (zero in the margin), added into
      the image's gradient.

Only the sums, the content targets and the image live at full size; VGG-19's activations are
one block's. The cost: one more forward pass per evaluation, plus the margins' pixels.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from nst_engine.losses import compare_statistics, total_variation
from nst_engine.statistics import get_statistic
from nst_engine.vgg import LAYER_NAMES, VGGFeatures

ALIGN = 16  # 2**4: four 2x2 poolings stand before conv5_1

Autocast = Callable[[], contextlib.AbstractContextManager[object]]


@dataclass(frozen=True)
class Block:
    """An inner region [top, bottom) x [left, right) and the crop [crop_top, crop_bottom) x
    [crop_left, crop_right) that runs through the network: the region with its margin."""

    top: int
    bottom: int
    left: int
    right: int
    crop_top: int
    crop_bottom: int
    crop_left: int
    crop_right: int

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.crop_top:self.crop_bottom, self.crop_left:self.crop_right]

    def inner(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """The inner region of this block's crop's feature map at `stride` pixels per position."""
        top, left = (self.top - self.crop_top) // stride, (self.left - self.crop_left) // stride
        bottom, right = (self.bottom - self.crop_top) // stride, (self.right - self.crop_left) // stride
        return features[..., top:bottom, left:right]

    def region(self, stride: int) -> tuple[slice, slice]:
        """Where the inner region lies in the whole image's feature map at `stride`."""
        return slice(self.top // stride, self.bottom // stride), slice(self.left // stride, self.right // stride)


@dataclass(frozen=True)
class BlockPlan:
    """How an image of height x width is cut: inner blocks of `size` px with `margin` px of context."""

    height: int
    width: int
    size: int
    margin: int
    rows: int
    cols: int
    blocks: tuple[Block, ...]

    def to_dict(self) -> dict[str, object]:
        """For provenance: the blocks used at one scale."""
        return {"size": self.size, "margin": self.margin, "grid": [self.rows, self.cols], "count": len(self.blocks)}


def plan_blocks(height: int, width: int, size: int, margin: int) -> BlockPlan:
    """Inner blocks of `size` px (the last in a row or column takes what is left) partitioning the image."""
    if size <= 0 or size % ALIGN or margin < 0 or margin % ALIGN:
        raise ValueError(f"block size {size} and margin {margin} must be multiples of {ALIGN} (size > 0)")
    tops, lefts = range(0, height, size), range(0, width, size)
    blocks = tuple(
        Block(top, min(top + size, height), left, min(left + size, width),
              max(0, top - margin), min(height, top + size + margin),
              max(0, left - margin), min(width, left + size + margin))
        for top in tops for left in lefts)
    return BlockPlan(height, width, size, margin, len(tops), len(lefts), blocks)


def stride_of(layer: str) -> int:
    """Pixels per feature-map position at `layer`: 2 per pooling before it."""
    return 2 ** sum(1 for name in LAYER_NAMES[:LAYER_NAMES.index(layer)] if name.startswith("pool"))


@dataclass
class _Sums:
    """Per layer, the sums over every block's inner positions (float64: millions of terms)."""

    second: dict[str, torch.Tensor]  # sum F F^T [B, C, C]
    first: dict[str, torch.Tensor]  # sum F [B, C]
    count: dict[str, int]  # positions


@torch.no_grad()
def feature_maps(extractor: VGGFeatures, image: torch.Tensor, plan: BlockPlan, layers: Sequence[str],
                 autocast: Autocast = contextlib.nullcontext) -> dict[str, torch.Tensor]:
    """The whole image's feature maps at `layers` (float32), assembled from blocks (content targets)."""
    maps: dict[str, torch.Tensor] = {}
    for block in plan.blocks:
        with autocast():
            features = extractor(block.crop(image))
        for name in layers:
            stride = stride_of(name)
            inner = block.inner(features[name], stride).float()
            if name not in maps:
                shape = (image.shape[0], inner.shape[1], image.shape[-2] // stride, image.shape[-1] // stride)
                maps[name] = inner.new_zeros(shape)
            rows, cols = block.region(stride)
            maps[name][..., rows, cols] = inner
    return maps


@torch.no_grad()
def style_statistics(extractor: VGGFeatures, image: torch.Tensor, plan: BlockPlan, layers: Sequence[str],
                     statistic: str, autocast: Autocast = contextlib.nullcontext) -> dict[str, torch.Tensor]:
    """The whole image's style statistic [B, R, C] per layer, summed block by block (style targets)."""
    sums, _ = _pass_a(extractor, image, plan, layers, {}, autocast)
    stat = get_statistic(statistic)
    return {name: stat.from_moments(sums.second[name].float(), sums.first[name].float(), sums.count[name])
            for name in layers}


def _pass_a(extractor: VGGFeatures, image: torch.Tensor, plan: BlockPlan, style_layers: Sequence[str],
            content_targets: Mapping[str, torch.Tensor],
            autocast: Autocast) -> tuple[_Sums, dict[str, torch.Tensor]]:
    """Sums of the style moments over all blocks, and per content layer the summed squared
    difference to its target [B]."""
    sums = _Sums({}, {}, {})
    squared: dict[str, torch.Tensor] = {}
    for block in plan.blocks:
        with torch.no_grad(), autocast():
            features = extractor(block.crop(image))
        for name in style_layers:
            flat = block.inner(features[name], stride_of(name)).float().flatten(2)
            second = torch.bmm(flat, flat.transpose(1, 2)).double()
            first = flat.sum(dim=2).double()
            if name in sums.second:
                sums.second[name] += second
                sums.first[name] += first
                sums.count[name] += flat.shape[2]
            else:
                sums.second[name], sums.first[name], sums.count[name] = second, first, flat.shape[2]
        for name, target in content_targets.items():
            stride = stride_of(name)
            rows, cols = block.region(stride)
            diff = block.inner(features[name], stride).float() - target[..., rows, cols]
            part = diff.pow(2).flatten(1).sum(dim=1).double()
            squared[name] = squared[name] + part if name in squared else part
    return sums, squared


@dataclass(frozen=True)
class BlockedObjective:
    """The Gatys objective of a batch, evaluated block by block (same terms as optimize._Problem).

    `content_targets` are whole-image feature maps [B, C, h, w] (feature_maps); style targets,
    norms and weights are the whole image's.
    """

    extractor: VGGFeatures
    plan: BlockPlan
    content_targets: Mapping[str, torch.Tensor]
    style_targets: Mapping[str, torch.Tensor]
    content_norms: Mapping[str, torch.Tensor] | None
    style_norms: Mapping[str, torch.Tensor] | None
    layer_weights: Mapping[str, float]
    statistic: str
    content_weight: float
    style_weight: float
    tv_weight: float
    autocast: Autocast = contextlib.nullcontext

    def loss_and_grad(self, x: torch.Tensor, grad: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Per-image terms {content, style, tv, total} ([B], detached) and d total / d x (zeros
        without `grad`: pass A alone)."""
        x = x.detach()
        sums, squared = _pass_a(self.extractor, x, self.plan, tuple(self.style_targets), self.content_targets,
                                self.autocast)
        # The loss from the global sums, on leaves: autograd gives d loss / d sum, which pass B
        # carries into each block's features (the chain rule through a sum is the identity).
        second = {k: v.float().requires_grad_(True) for k, v in sums.second.items()}
        first = {k: v.float().requires_grad_(True) for k, v in sums.first.items()}
        sq = {k: v.float().requires_grad_(True) for k, v in squared.items()}
        stat = get_statistic(self.statistic)
        with torch.enable_grad():
            values = {k: stat.from_moments(second[k], first[k], sums.count[k]) for k in second}
            s = compare_statistics(values, self.style_targets, self.layer_weights, self.style_norms, self.statistic)
            c = _content_from_sums(sq, self.content_targets, self.content_norms, x.new_zeros(x.shape[0]))
            x_tv = x.clone().requires_grad_(self.tv_weight > 0)
            tv = total_variation(x_tv) if self.tv_weight > 0 else torch.zeros_like(c)
            total = self.content_weight * c + self.style_weight * s + self.tv_weight * tv
        terms = {"content": c.detach(), "style": s.detach(), "tv": tv.detach(), "total": total.detach()}
        if not grad:
            return terms, torch.zeros_like(x)
        leaves = [*second.values(), *first.values(), *sq.values()] + ([x_tv] if self.tv_weight > 0 else [])
        grads = torch.autograd.grad(total.sum(), leaves, allow_unused=True)
        n_s, n_f = len(second), len(first)
        d_second = dict(zip(second, grads[:n_s]))
        d_first = dict(zip(first, grads[n_s:n_s + n_f]))
        d_sq = dict(zip(sq, grads[n_s + n_f:n_s + n_f + len(sq)]))
        gradient = grads[-1].clone() if self.tv_weight > 0 else torch.zeros_like(x)
        self._pass_b(x, gradient, d_second, d_first, d_sq)
        return terms, gradient

    def _pass_b(self, x: torch.Tensor, grad: torch.Tensor, d_second: Mapping[str, torch.Tensor | None],
                d_first: Mapping[str, torch.Tensor | None], d_sq: Mapping[str, torch.Tensor | None]) -> None:
        """Add each block's share of d loss / d x into `grad`."""
        for block in self.plan.blocks:
            crop = block.crop(x).detach().requires_grad_(True)
            with torch.enable_grad():
                with self.autocast():
                    features = self.extractor(crop)
                outputs, upstream = [], []
                for name in dict.fromkeys([*self.style_targets, *self.content_targets]):
                    stride = stride_of(name)
                    inner = block.inner(features[name], stride)
                    f = inner.float()
                    g = torch.zeros_like(f)
                    if d_second.get(name) is not None:  # d <D, F F^T> / dF = (D + D^T) F
                        d = d_second[name]
                        g += torch.bmm(d + d.transpose(1, 2), f.flatten(2)).view_as(f)
                    if d_first.get(name) is not None:  # d <d, sum F> / dF = d at every position
                        g += d_first[name][:, :, None, None]
                    if d_sq.get(name) is not None:  # d sum (F - P)^2 / dF = 2 (F - P)
                        rows, cols = block.region(stride)
                        g += 2 * d_sq[name][:, None, None, None] * (f - self.content_targets[name][..., rows, cols])
                    outputs.append(inner)
                    upstream.append(g.to(inner.dtype))
                (crop_grad,) = torch.autograd.grad(outputs, crop, upstream)
            grad[..., block.crop_top:block.crop_bottom, block.crop_left:block.crop_right] += crop_grad.float()


def _content_from_sums(squared: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                       norms: Mapping[str, torch.Tensor] | None, zero: torch.Tensor) -> torch.Tensor:
    """content_loss (the per-image mean squared difference) from the squared differences summed
    over blocks: the sum divided by the whole map's size."""
    total = zero
    for name, value in squared.items():
        size = math.prod(targets[name].shape[1:])
        total = total + value / size * (norms[name] if norms else 1.0)
    return total
