"""Scores of a finished picture, for the objective study and the quality regression tests.

Every score is measured on one fixed scoring network (whatever extractor the caller passes: the
study and the tests pass the original VGG-19, so scores compare across objectives and weights):
- style_similarity: per style layer, the cosine similarity of the output's Gram matrix with the
  style's (1 = the same texture statistics);
- content_similarity: per deep layer, the cosine similarity of the output's features with the
  content's (1 = the same deep features: the photo is still recognisable);
- histogram_distance: how far two colour distributions are (0 = the same, 1 = disjoint);
- chroma_distance: mean absolute difference of the YUV chroma channels (preserve-colors check).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
import torch.nn.functional as F

from nst_engine.color import rgb_to_yuv
from nst_engine.statistics import gram

SCORE_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SCORE_CONTENT_LAYERS = ("relu4_1", "relu5_1")
HISTOGRAM_BINS = 16


def style_similarity(output: Mapping[str, torch.Tensor], style: Mapping[str, torch.Tensor],
                     layers: Iterable[str] = SCORE_STYLE_LAYERS) -> dict[str, float]:
    """Per layer: cosine similarity of the two images' Gram matrices (features of one image each)."""
    return {name: _cosine(gram(output[name]), gram(style[name])) for name in layers}


def content_similarity(output: Mapping[str, torch.Tensor], content: Mapping[str, torch.Tensor],
                       layers: Iterable[str] = SCORE_CONTENT_LAYERS) -> dict[str, float]:
    """Per layer: cosine similarity of the feature maps (same spatial size: same image size)."""
    return {name: _cosine(output[name], content[name]) for name in layers}


def colour_histogram(image: torch.Tensor, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
    """The joint RGB histogram of a [1, 3, H, W] image in [0, 1], as a distribution (sums to 1)."""
    q = (image.clamp(0, 1) * (bins - 1)).round().long().flatten(2)[0]  # [3, H*W]
    index = (q[0] * bins + q[1]) * bins + q[2]
    counts = torch.bincount(index, minlength=bins ** 3).float()
    return counts / counts.sum()


def histogram_distance(a: torch.Tensor, b: torch.Tensor, bins: int = HISTOGRAM_BINS) -> float:
    """Total-variation distance between two images' joint colour histograms, in [0, 1]."""
    return float(0.5 * (colour_histogram(a, bins) - colour_histogram(b, bins)).abs().sum())


def chroma_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of the U and V channels of two same-size [1, 3, H, W] images."""
    return float((rgb_to_yuv(a)[:, 1:] - rgb_to_yuv(b)[:, 1:]).abs().mean())


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


__all__ = ["style_similarity", "content_similarity", "colour_histogram", "histogram_distance", "chroma_distance"]
