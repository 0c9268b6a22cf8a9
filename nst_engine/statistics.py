"""Style statistics: what a style term measures of a layer's features, and how two are compared.

A statistic maps features [B, C, H, W] to one tensor per image [B, R, C] ("packed", so a
StyleTargets entry stays a dict of 2-D tensors whatever the statistic). Adding a statistic is one
entry in STATISTICS; the cache key and StyleTargets carry its name, so entries never mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C], normalised by C*H*W so it barely depends on image size."""
    b, c, h, w = features.shape
    # fp32 even inside autocast, which would run bmm in bf16/fp16: sums of H*W products need
    # fp32's mantissa, and the style loss compares these to fp32 targets.
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def mean_covariance(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C + 1, C]: row 0 the channel means, rows 1.. the channel covariance.

    The statistic of crowsonkb's Wasserstein-style loss (a Gaussian fitted to the features);
    compared here by squared differences like the Gram.
    """
    b, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):  # fp32, as for the Gram
        flat = features.float().reshape(b, c, h * w)
        mean = flat.mean(dim=2, keepdim=True)
        centred = flat - mean
        covariance = torch.bmm(centred, centred.transpose(1, 2)) / (h * w)
        return torch.cat([mean.transpose(1, 2), covariance], dim=1)


def gram_from_moments(second: torch.Tensor, first: torch.Tensor, count: int) -> torch.Tensor:
    """The Gram from sums over `count` positions: second = sum F F^T [B, C, C], first = sum F [B, C]."""
    channels = second.shape[-1]
    return second / (channels * count)


def mean_covariance_from_moments(second: torch.Tensor, first: torch.Tensor, count: int) -> torch.Tensor:
    """mean_covariance from sums over `count` positions: cov = E[F F^T] - mean mean^T."""
    mean = first / count
    covariance = second / count - mean[:, :, None] * mean[:, None, :]
    return torch.cat([mean[:, None, :], covariance], dim=1)


def squared_difference(statistic: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared difference of two packed statistics [B, R, C] -> [B]."""
    return (statistic - target).pow(2).flatten(1).mean(dim=1)


def whole(packed: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (packed,)


def mean_and_covariance(packed: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return packed[:, :1], packed[:, 1:]


@dataclass(frozen=True)
class Statistic:
    """`compute` features -> packed statistic; `compare` (statistic, target) -> [B];
    `from_moments` (sum F F^T [B, C, C], sum F [B, C], positions) -> the same packed statistic,
    so a statistic summed block by block (nst_engine.blockwise) is the whole image's; `parts` splits a packed statistic into the pieces the balanced objective normalises
    separately (a mean scales with the features, a covariance with their square)."""

    name: str
    compute: Callable[[torch.Tensor], torch.Tensor]
    compare: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    from_moments: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
    parts: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] = whole


STATISTICS: dict[str, Statistic] = {
    "gram": Statistic("gram", gram, squared_difference, gram_from_moments),
    "mean_covariance": Statistic("mean_covariance", mean_covariance, squared_difference,
                                 mean_covariance_from_moments, mean_and_covariance),
}


def get_statistic(name: str) -> Statistic:
    from nst_engine.errors import EngineError

    if name not in STATISTICS:
        raise EngineError(f"unknown style statistic {name!r}; known: {', '.join(STATISTICS)}")
    return STATISTICS[name]
