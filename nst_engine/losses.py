"""The Gatys objective. Batch-first: every function takes [B, C, H, W] and returns [B]."""

from __future__ import annotations

from typing import Mapping

import torch

from nst_engine.statistics import gram as gram_matrix
from nst_engine.statistics import get_statistic


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                 norms: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Sum over content layers of the per-image mean squared feature difference.

    `norms[name]` ([B]) multiplies each layer's term (the balanced objective: 1 / mean square of
    the target features)."""
    return sum(_mse(features[name], target) * (norms[name] if norms else 1.0)  # type: ignore[return-value]
               for name, target in targets.items())


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float], norms: Mapping[str, torch.Tensor] | None = None,
               statistic: str = "gram") -> torch.Tensor:
    """Sum over style layers of weight x per-image comparison of the features' statistic with
    the target's (mean squared Gram difference by default); with `norms` (from style_norms),
    each part of the comparison is divided by its target's mean square."""
    stat = get_statistic(statistic)
    values = {name: stat.compute(features[name]) for name in target_grams}
    return compare_statistics(values, target_grams, layer_weights, norms, statistic)


def compare_statistics(values: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                       layer_weights: Mapping[str, float], norms: Mapping[str, torch.Tensor] | None = None,
                       statistic: str = "gram") -> torch.Tensor:
    """The style term from the images' statistics (packed, [B, R, C] per layer): what style_loss
    does after computing them, and what block-wise evaluation does with statistics summed over blocks."""
    stat = get_statistic(statistic)
    total: torch.Tensor | float = 0.0
    for name, target in targets.items():
        value = values[name]
        if norms:  # balanced: each part relative to its own target, averaged over the parts
            pieces = zip(stat.parts(value), stat.parts(target), norms[name].unbind(dim=1))
            term = sum(stat.compare(v, t) * n for v, t, n in pieces) / norms[name].shape[1]
        else:
            term = stat.compare(value, target)
        total = total + layer_weights[name] * term
    return total  # type: ignore[return-value]


def style_norms(targets: Mapping[str, torch.Tensor], statistic: str = "gram") -> dict[str, torch.Tensor]:
    """Per layer [B, parts]: 1 / mean square of each part of the target statistic."""
    stat = get_statistic(statistic)
    return {name: torch.stack([_inverse_mean_square(part) for part in stat.parts(target)], dim=1)
            for name, target in targets.items()}


def target_norms(targets: Mapping[str, torch.Tensor], floor: float = 1e-30) -> dict[str, torch.Tensor]:
    """1 / mean square of each layer's target, per image: [B, ...] -> [B].

    Divides the term by the size of what it is compared with, so a term's value is relative
    error: the same for a dark or a bright style, small or large image, any network. The floor
    only guards an all-zero target (deep random-weight Grams have mean squares near 1e-12).
    """
    return {name: _inverse_mean_square(target, floor) for name, target in targets.items()}


def _inverse_mean_square(target: torch.Tensor, floor: float = 1e-30) -> torch.Tensor:
    return 1.0 / target.pow(2).flatten(1).mean(dim=1).clamp_min(floor)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontal and vertical neighbours, per image."""
    dx = images[:, :, :, 1:] - images[:, :, :, :-1]
    dy = images[:, :, 1:, :] - images[:, :, :-1, :]
    return dx.pow(2).mean(dim=(1, 2, 3)) + dy.pow(2).mean(dim=(1, 2, 3))


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(dim=1)


__all__ = ["gram_matrix", "content_loss", "style_loss", "compare_statistics", "style_norms", "target_norms", "total_variation"]
