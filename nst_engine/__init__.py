"""nst_engine: Gatys et al. neural style transfer in pure PyTorch (no Prefect, no boto3)."""

from nst_engine.config import ENGINE_VERSION, EngineConfig
from nst_engine.errors import ConfigError, EngineError, ImageError, WeightsError
from nst_engine.images import load_image, save_image
from nst_engine.optimize import Losses, ProgressEvent, StylizeResult, optimize, stylize
from nst_engine.targets import StyleTargets, compute_style_targets
from nst_engine.vgg import LAYER_NAMES, VGGFeatures, WeightsInfo, build_extractor, load_weights

__all__ = [
    "ENGINE_VERSION", "EngineConfig", "ConfigError", "EngineError", "ImageError", "WeightsError",
    "load_image", "save_image", "Losses", "ProgressEvent", "StylizeResult", "optimize", "stylize",
    "StyleTargets", "compute_style_targets", "LAYER_NAMES", "VGGFeatures", "WeightsInfo",
    "build_extractor", "load_weights",
]
