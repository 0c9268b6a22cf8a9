"""Colour control (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer")."""

from __future__ import annotations

import torch

# RGB -> YUV (BT.601). Y carries the luminance, U and V the chroma.
_RGB_TO_YUV = torch.tensor([
    [0.299, 0.587, 0.114],
    [-0.14713, -0.28886, 0.436],
    [0.615, -0.51499, -0.10001],
])
_YUV_TO_RGB = torch.linalg.inv(_RGB_TO_YUV)


def rgb_to_yuv(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB -> YUV."""
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YUV.to(images), images)


def yuv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _YUV_TO_RGB.to(images), images)


def preserve_colors(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance transfer: the stylized image's luminance with the content's chroma."""
    styled_yuv = rgb_to_yuv(stylized)
    content_yuv = rgb_to_yuv(content)
    merged = torch.cat([styled_yuv[:, :1], content_yuv[:, 1:]], dim=1)
    return yuv_to_rgb(merged).clamp(0, 1)


def match_color_statistics(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Recolour `source` so its RGB mean and covariance equal `target`'s (per image, [B,3,H,W]).

    Linear histogram matching with the symmetric square-root transform: x' = A (x - mu_s) + mu_t,
    A = Sigma_t^1/2 Sigma_s^-1/2. Used on style images, toward the content's colours.
    """
    src = source.flatten(2)  # [B, 3, N]
    tgt = target.flatten(2)
    mu_s, mu_t = src.mean(2, keepdim=True), tgt.mean(2, keepdim=True)
    cov_s = _covariance(src - mu_s, eps)
    cov_t = _covariance(tgt - mu_t, eps)
    transform = _matrix_power(cov_t, 0.5) @ _matrix_power(cov_s, -0.5)
    matched = transform @ (src - mu_s) + mu_t
    return matched.view_as(source).clamp(0, 1)


def _covariance(centred: torch.Tensor, eps: float) -> torch.Tensor:
    n = centred.shape[2]
    eye = torch.eye(3, dtype=centred.dtype, device=centred.device)
    return centred @ centred.transpose(1, 2) / max(n - 1, 1) + eps * eye


def _matrix_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag_embed(values.clamp_min(1e-12).pow(power)) @ vectors.transpose(1, 2)
