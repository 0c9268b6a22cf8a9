"""StyleTargets: the Gram matrices of one style (or a weighted blend) at one size."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from nst_engine.errors import EngineError
from nst_engine.files import write_atomic
from nst_engine.losses import gram_matrix
from nst_engine.vgg import VGGFeatures

FORMAT_VERSION = 1


@dataclass(frozen=True)
class StyleTargets:
    """Per-layer Gram matrices [C, C] of a style image (or blend), computed once and reused.

    `meta` records what they depend on (layers, pooling, weights identity, size) so a cache
    can check an entry matches what it is asked for.
    """

    grams: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "StyleTargets":
        return StyleTargets({k: v.to(device) for k, v in self.grams.items()}, dict(self.meta))

    def to_bytes(self) -> bytes:
        """Serialise without pickle: a dict of tensors and strings, read back weights_only."""
        buffer = io.BytesIO()
        payload = {"format": FORMAT_VERSION, "grams": {k: v.detach().cpu().contiguous() for k, v in self.grams.items()},
                   "meta": dict(self.meta)}
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "StyleTargets":
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            grams = payload["grams"]
            meta = payload["meta"]
            ok = payload.get("format") == FORMAT_VERSION and all(
                isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[0] == v.shape[1] for v in grams.values())
        except Exception as exc:  # noqa: BLE001 - any decoding failure is "not valid"
            raise EngineError(f"not a valid StyleTargets file: {exc}") from None
        if not ok:
            raise EngineError("not a valid StyleTargets file: unexpected format or tensor shapes")
        return cls(dict(grams), dict(meta))

    def save(self, path: str | Path) -> None:
        write_atomic(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "StyleTargets":
        return cls.from_bytes(Path(path).read_bytes())


@torch.no_grad()
def compute_style_targets(extractor: VGGFeatures, images: Sequence[torch.Tensor], layers: Sequence[str],
                          blend: Sequence[float] | None = None, meta: dict[str, str] | None = None) -> StyleTargets:
    """Gram matrices of one or several style images ([1, 3, H, W] each, any sizes), blended.

    A blend is the weighted mean of the images' Gram matrices (weights normalised to sum 1).
    """
    if not images:
        raise EngineError("compute_style_targets needs at least one style image")
    weights = list(blend) if blend is not None else [1.0] * len(images)
    if len(weights) != len(images):
        raise EngineError(f"style blend has {len(weights)} weights for {len(images)} style images")
    total = float(sum(weights))
    if total <= 0 or min(weights) < 0:
        raise EngineError(f"style blend weights must be >= 0 and not all 0, got {weights}")
    device = next(extractor.parameters()).device
    grams: dict[str, torch.Tensor] = {}
    for image, weight in zip(images, weights):
        features = extractor(image.to(device))
        for name in layers:
            gram = gram_matrix(features[name].float())[0] * (weight / total)
            grams[name] = grams[name] + gram if name in grams else gram
    return StyleTargets(grams, dict(meta or {}))


def stack_targets(targets: Sequence[StyleTargets], layers: Sequence[str],
                  device: torch.device) -> dict[str, torch.Tensor]:
    """One [B, C, C] tensor per layer from B StyleTargets (one per batch item)."""
    return {name: torch.stack([t.grams[name].to(device) for t in targets]) for name in layers}
