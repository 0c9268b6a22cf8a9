"""StyleTargets: the style statistic (Gram matrices by default) of one style or blend at one size."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from nst_engine import blockwise
from nst_engine.blockwise import BlockPlan
from nst_engine.errors import EngineError
from nst_engine.files import write_atomic
from nst_engine.statistics import get_statistic
from nst_engine.vgg import VGGFeatures

FORMAT_VERSION = 2  # 2: carries the statistic's name


@dataclass(frozen=True)
class StyleTargets:
    """Per-layer style statistics of a style image (or blend), computed once and reused.

    `grams` holds one 2-D tensor per layer: the Gram matrix [C, C] for statistic "gram", the
    packed statistic of nst_engine.statistics otherwise (the name is kept for callers).
    `statistic` names it, so an entry of one statistic is never used as another's.
    `meta` records what they depend on (layers, pooling, weights identity, size) so a cache
    can check an entry matches what it is asked for.
    """

    grams: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)
    statistic: str = "gram"

    def to(self, device: torch.device | str) -> "StyleTargets":
        return StyleTargets({k: v.to(device) for k, v in self.grams.items()}, dict(self.meta), self.statistic)

    def to_bytes(self) -> bytes:
        """Serialise without pickle: a dict of tensors and strings, read back weights_only."""
        buffer = io.BytesIO()
        payload = {"format": FORMAT_VERSION, "grams": {k: v.detach().cpu().contiguous() for k, v in self.grams.items()},
                   "meta": dict(self.meta), "statistic": self.statistic}
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "StyleTargets":
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            grams = payload["grams"]
            meta = payload["meta"]
            statistic = payload.get("statistic")
            ok = payload.get("format") == FORMAT_VERSION and isinstance(statistic, str) and all(
                isinstance(v, torch.Tensor) and v.dim() == 2 for v in grams.values())
        except Exception as exc:  # noqa: BLE001 - any decoding failure is "not valid"
            raise EngineError(f"not a valid StyleTargets file: {exc}") from None
        if not ok:
            raise EngineError("not a valid StyleTargets file: unexpected format or tensor shapes")
        return cls(dict(grams), dict(meta), statistic)

    def save(self, path: str | Path) -> None:
        write_atomic(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "StyleTargets":
        return cls.from_bytes(Path(path).read_bytes())


@torch.no_grad()
def compute_style_targets(extractor: VGGFeatures, images: Sequence[torch.Tensor], layers: Sequence[str],
                          blend: Sequence[float] | None = None, meta: dict[str, str] | None = None,
                          statistic: str = "gram",
                          blocks: Callable[[int, int], BlockPlan | None] | None = None) -> StyleTargets:
    """The statistic (Gram matrices by default) of one or several style images ([1, 3, H, W]
    each, any sizes), blended: the weighted mean of the images' statistics (weights sum to 1).

    `blocks(height, width)` gives the blocks a style image too large for one pass runs in (the
    statistic is the same, summed block by block); None or no plan: the whole image at once.
    """
    stat = get_statistic(statistic)
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
        image = image.to(device)
        plan = blocks(image.shape[-2], image.shape[-1]) if blocks else None
        if plan is None:
            features = extractor(image)
            values = {name: stat.compute(features[name].float()) for name in layers}
        else:
            values = blockwise.style_statistics(extractor, image, plan, layers, statistic)
        for name in layers:
            value = values[name][0] * (weight / total)
            grams[name] = grams[name] + value if name in grams else value
    return StyleTargets(grams, dict(meta or {}), statistic)


def stack_targets(targets: Sequence[StyleTargets], layers: Sequence[str],
                  device: torch.device, statistic: str = "gram") -> dict[str, torch.Tensor]:
    """One [B, R, C] tensor per layer from B StyleTargets (one per batch item).

    Raises EngineError when a target holds another statistic than `statistic` (a cache must
    never serve one statistic's entry to another)."""
    wrong = sorted({t.statistic for t in targets if t.statistic != statistic})
    if wrong:
        raise EngineError(f"style targets hold the {', '.join(wrong)} statistic, this run compares {statistic}")
    return {name: torch.stack([t.grams[name].to(device) for t in targets]) for name in layers}
