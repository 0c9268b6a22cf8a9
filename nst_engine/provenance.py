"""Provenance: what made a result, written as JSON beside it."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import torch

from nst_engine.config import ENGINE_VERSION, EngineConfig
from nst_engine.optimize import Losses
from nst_engine.vgg import WeightsInfo


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_provenance(config: EngineConfig, weights: WeightsInfo | None, losses: Losses, seconds: float,
                     device: str, inputs: Mapping[str, Any], fingerprint: str | None = None,
                     extra: Mapping[str, Any] | None = None,
                     optimization: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON-ready record. `fingerprint` defaults to the config's; pipelines pass one that
    also covers the input bytes and weights. `optimization` is StylizeResult.optimization(i):
    per scale, the iterations run and why the image stopped."""
    record: dict[str, Any] = {
        "fingerprint": fingerprint or config.fingerprint(),
        "config_fingerprint": config.fingerprint(),
        "config": config.to_dict(),
        "objective": config.objective_profile(),
        "weights": weights.to_dict() if weights else None,
        "inputs": dict(inputs),
        "losses": {"content": losses.content, "style": losses.style, "tv": losses.tv, "total": losses.total},
        "seconds": round(seconds, 3),
        "device": _device_name(device),
        "versions": {"engine": ENGINE_VERSION, "torch": torch.__version__, "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if optimization is not None:
        record["optimization"] = [dict(scale) for scale in optimization]
    if extra:
        record.update(extra)
    return record


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device
