"""EngineConfig: every knob of the optimizer in one frozen, typed record."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from nst_engine.errors import ConfigError

ENGINE_VERSION = "1"

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
POOLINGS = ("max", "avg")
# Meanings in nst_engine/accel.py. "auto": the GPU precision benchmarks/gpu_throughput.py picks
# (within 1% of float32's final loss), float32 on the CPU; fingerprinted as "auto", like `device`
# the choice changes pixels only by floating-point noise.
PRECISIONS = ("float32", "tf32", "bfloat16", "float16", "auto")

# Fields that do not change the pixels a run produces (or change them only through
# floating-point noise): they are left out of the fingerprint so a result made on a GPU is
# not redone on a CPU worker.
_NOT_FINGERPRINTED = frozenset({"device"})


@dataclass(frozen=True)
class EngineConfig:
    """What the optimizer does. Defaults are the documented Gatys objective."""

    size: int = 512  # output max side, pixels
    iterations: int = 500  # per scale, unless scale_iterations says otherwise
    scales: tuple[float, ...] = (1.0,)  # coarse-to-fine fractions of `size`, ending at 1
    scale_iterations: tuple[int, ...] | None = None  # iterations at each scale
    optimizer: str = "lbfgs"
    learning_rate: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    lbfgs_history: int = 100
    init: str = "content"
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None  # None: 1 per layer
    content_weight: float = 1.0
    style_weight: float = 1e6
    tv_weight: float = 0.0
    style_scale: float = 1.0  # style image max side relative to the output's
    style_blend: tuple[float, ...] | None = None  # weights of several style images
    pooling: str = "max"
    preserve_colors: bool = False
    match_histogram: bool = False
    weights: str = "imagenet"  # imagenet | random[:SEED] | path to a VGG-19 state dict
    seed: int = 0
    precision: str = "auto"  # see accel.py
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        problems = _check_values(self)
        if problems:
            raise ConfigError(problems)

    # ---- derived values -------------------------------------------------------------
    def iterations_per_scale(self) -> tuple[int, ...]:
        if self.scale_iterations is not None:
            return self.scale_iterations
        return tuple(self.iterations for _ in self.scales)

    def layer_weights(self) -> dict[str, float]:
        weights = self.style_layer_weights or tuple(1.0 for _ in self.style_layers)
        return dict(zip(self.style_layers, weights))

    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1.0 if self.optimizer == "lbfgs" else 0.02

    def replace(self, **changes: Any) -> "EngineConfig":
        return dataclasses.replace(self, **changes)

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def fingerprint(self) -> str:
        """Stable sha256 of everything that changes the output image."""
        return _fingerprint(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: "EngineConfig | None" = None,
                     where: str = "engine") -> "EngineConfig":
        """Build from plain data (YAML, JSON, CLI), checking names and types.

        Every problem is collected and raised at once as ConfigError, each named
        `where.field`.
        """
        base = base or cls()
        if not isinstance(values, Mapping):
            raise ConfigError([(where, f"must be a mapping of engine settings, got {_kind(values)}")])
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        problems: list[tuple[str, str]] = []
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            path = f"{where}.{key}"
            if key not in known:
                problems.append((path, f"unknown setting; known: {', '.join(sorted(known))}"))
                continue
            try:
                changes[key] = _coerce(raw, hints[key])
            except ValueError as exc:
                problems.append((path, str(exc)))
        if problems:
            raise ConfigError(problems)
        try:
            return dataclasses.replace(base, **changes)
        except ConfigError as exc:
            raise ConfigError([(f"{where}.{f}", m) for f, m in exc.problems]) from None


@functools.lru_cache(maxsize=1024)  # configs are frozen; planning 10,000 pairs asks often
def _fingerprint(config: EngineConfig) -> str:
    data = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED}
    data["engine_version"] = ENGINE_VERSION
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _check_values(cfg: EngineConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            problems.append((name, message))

    need(16 <= cfg.size <= 16384, "size", f"must be between 16 and 16384 pixels, got {cfg.size}")
    need(cfg.iterations >= 0, "iterations", f"must be >= 0, got {cfg.iterations}")
    need(len(cfg.scales) > 0 and all(0 < s <= 1 for s in cfg.scales), "scales",
         f"each scale must be in (0, 1], got {list(cfg.scales)}")
    need(list(cfg.scales) == sorted(cfg.scales) and cfg.scales[-1:] == (1.0,), "scales",
         f"must rise coarse to fine and end at 1, got {list(cfg.scales)}")
    if cfg.scale_iterations is not None:
        need(len(cfg.scale_iterations) == len(cfg.scales), "scale_iterations",
             f"needs one count per scale ({len(cfg.scales)}), got {len(cfg.scale_iterations)}")
        need(all(n >= 0 for n in cfg.scale_iterations), "scale_iterations", "counts must be >= 0")
    need(cfg.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}, got {cfg.optimizer!r}")
    need(cfg.init in INITS, "init", f"must be one of {INITS}, got {cfg.init!r}")
    need(cfg.pooling in POOLINGS, "pooling", f"must be one of {POOLINGS}, got {cfg.pooling!r}")
    need(cfg.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {cfg.precision!r}")
    need(cfg.learning_rate is None or cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.lbfgs_history >= 1, "lbfgs_history", "must be >= 1")
    need(len(cfg.content_layers) > 0, "content_layers", "needs at least one layer")
    need(len(cfg.style_layers) > 0, "style_layers", "needs at least one layer")
    from nst_engine.vgg import LAYER_NAMES  # local: vgg imports torch, config stays light

    for name in ("content_layers", "style_layers"):
        unknown = [layer for layer in getattr(cfg, name) if layer not in LAYER_NAMES]
        need(not unknown, name, f"unknown VGG-19 layer(s) {unknown}; use names like relu4_2, conv1_1")
    if cfg.style_layer_weights is not None:
        need(len(cfg.style_layer_weights) == len(cfg.style_layers), "style_layer_weights",
             f"needs one weight per style layer ({len(cfg.style_layers)})")
    for name in ("content_weight", "style_weight", "tv_weight"):
        need(math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0, name, "must be a finite number >= 0")
    need(0 < cfg.style_scale <= 8, "style_scale", f"must be in (0, 8], got {cfg.style_scale}")
    if cfg.style_blend is not None:
        need(all(w >= 0 for w in cfg.style_blend) and sum(cfg.style_blend) > 0, "style_blend",
             "weights must be >= 0 and not all 0")
    need(isinstance(cfg.weights, str) and cfg.weights != "", "weights",
         "must be 'imagenet', 'random[:SEED]' or a path to a VGG-19 state dict")
    need(bool(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.device)), "device",
         f"must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")
    return problems


def _kind(value: Any) -> str:
    return type(value).__name__


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(raw: Any, hint: Any) -> Any:
    """Convert plain data to the annotated type, or raise ValueError saying what was expected."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(raw, inner[0])
    if origin is tuple:
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            raw = [raw]  # a single value where a list is expected
        if not isinstance(raw, (list, tuple)):
            raise ValueError(f"expected a list, got {_kind(raw)}")
        return tuple(_coerce(item, args[0]) for item in raw)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"expected a finite number, got {raw!r}")
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or int(raw) != raw:
            raise ValueError(f"expected a whole number, got {raw!r}")
        return int(raw)
    if hint is float:
        if isinstance(raw, str):  # YAML 1.1 reads `1e3` as a string
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"expected a number, got {raw!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {raw!r}")
            return value
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"expected a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ValueError(f"expected text, got {_kind(raw)} {raw!r}")
        return raw
    raise ValueError(f"unsupported setting type {hint}")  # pragma: no cover - config bug


__all__ = ["EngineConfig", "ENGINE_VERSION", "STYLE_LAYERS", "CONTENT_LAYERS"]
