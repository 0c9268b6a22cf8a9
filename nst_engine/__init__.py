"""nst_engine: Gatys et al. neural style transfer in pure PyTorch (no Prefect, no boto3).

The names below load on first use (PEP 562), so torch-free code (the config, the errors, the
manifest reader, `nst --help`) can import from this package without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_EXPORTS = {
    "ENGINE_VERSION": "config", "EngineConfig": "config",
    "ConfigError": "errors", "EngineError": "errors", "ImageError": "errors", "WeightsError": "errors",
    "load_image": "images", "save_image": "images",
    "Losses": "optimize", "ProgressEvent": "optimize", "StylizeResult": "optimize", "optimize": "optimize",
    "stylize": "optimize",
    "StyleTargets": "targets", "compute_style_targets": "targets",
    "LAYER_NAMES": "vgg", "VGGFeatures": "vgg", "WeightsInfo": "vgg", "build_extractor": "vgg", "load_weights": "vgg",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads them
    from nst_engine.config import ENGINE_VERSION, EngineConfig
    from nst_engine.errors import ConfigError, EngineError, ImageError, WeightsError
    from nst_engine.images import load_image, save_image
    from nst_engine.optimize import Losses, ProgressEvent, StylizeResult, optimize, stylize
    from nst_engine.targets import StyleTargets, compute_style_targets
    from nst_engine.vgg import LAYER_NAMES, VGGFeatures, WeightsInfo, build_extractor, load_weights


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nst_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nst_engine.{module}"), name)
    globals()[name] = value  # once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
