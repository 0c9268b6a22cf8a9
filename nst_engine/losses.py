"""The Gatys objective. Batch-first: every function takes [B, C, H, W] and returns [B]."""

from __future__ import annotations

from typing import Mapping

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C], normalised by C*H*W so it barely depends on image size."""
    b, c, h, w = features.shape
    # fp32 even inside autocast, which would run bmm in bf16/fp16: sums of H*W products need
    # fp32's mantissa, and the style loss compares these to fp32 targets (issue 14).
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Sum over content layers of the per-image mean squared feature difference."""
    return sum(_mse(features[name], target) for name, target in targets.items())  # type: ignore[return-value]


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Sum over style layers of weight x per-image mean squared Gram difference."""
    return sum(layer_weights[name] * _mse(gram_matrix(features[name]), target)  # type: ignore[return-value]
               for name, target in target_grams.items())


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontal and vertical neighbours, per image."""
    dx = images[:, :, :, 1:] - images[:, :, :, :-1]
    dy = images[:, :, 1:, :] - images[:, :, :-1, :]
    return dx.pow(2).mean(dim=(1, 2, 3)) + dy.pow(2).mean(dim=(1, 2, 3))


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(dim=1)
