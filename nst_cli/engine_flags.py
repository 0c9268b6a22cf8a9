"""Engine options on the command line, generated from EngineConfig's fields.

Every field becomes `--field-name` with its type and default read from the dataclass, so a new
engine option needs no command-line code and the help never restates a default by hand. Only
what a field's name and type cannot say lives here: a short description, an alias, the choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

from nst_engine import config as engine_config
from nst_engine.config import EngineConfig

DESCRIPTIONS = {
    "size": "output max side in pixels",
    "iterations": "iterations per scale (the cap when the engine stops at convergence)",
    "scales": "coarse-to-fine fractions of --size, e.g. 0.25,0.5,1 (auto: nst_engine.config.auto_schedule)",
    "scale_iterations": "iterations at each scale, e.g. 300,100,50",
    "learning_rate": "step size (auto: 1 for L-BFGS; Adam: nst_engine.config.ADAM_LR by input convention)",
    "content_weight": "alpha: weight of the content term",
    "style_weight": "beta: weight of the style term",
    "tv_weight": "weight of the total-variation term",
    "style_layer_weights": "one weight per style layer",
    "style_blend": "weights of several style images, e.g. 0.7,0.3",
    "style_scale": "style image size relative to the output",
    "preserve_colors": "keep the content's original colours",
    "match_histogram": "match the style's colours to the content's first",
    "weights": "original (the paper's VGG-19, default), imagenet, random[:SEED], or a VGG-19 .pth file",
    "input_convention": "how the weights expect their input: auto, torchvision or caffe (BGR 0-255)",
    "device": "auto, cpu, cuda or cuda:N",
    "normalization": "none, or target: each term divided by its target's mean square (auto: from the weights)",
    "tolerance": "stop an image when its loss fell by less than this (relative) over --tolerance-window iterations",
    "init": "content, noise, style, or the path of an image to start from",
}
ALIASES = {"learning_rate": ("--lr",)}
CHOICES = {"optimizer": "OPTIMIZERS", "init": "INITS", "pooling": "POOLINGS", "precision": "PRECISIONS",
           "input_convention": "INPUT_CONVENTIONS"}


def _parser_for(annotation: Any) -> tuple[Callable[[str], Any] | None, str]:
    """(parse one command-line string, metavar) for a field type; None for booleans."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _parser_for(args[0])
    if annotation is bool:
        return None, ""
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        return (lambda text: tuple(item(part.strip()) for part in text.split(","))), f"{item.__name__},..."
    return annotation, annotation.__name__.upper()


def _default_text(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per EngineConfig field, in an 'engine' group; every default is EngineConfig's."""
    group = parser.add_argument_group("engine (defaults from nst_engine.EngineConfig)")
    hints = typing.get_type_hints(EngineConfig)
    for field in dataclasses.fields(EngineConfig):
        if not field.init:  # bookkeeping (which objective fields were auto), not a setting
            continue
        flag = "--" + field.name.replace("_", "-")
        parse, metavar = _parser_for(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        help_text = f"{DESCRIPTIONS.get(field.name, field.name.replace('_', ' '))} (default {_default_text(default)})"
        choices = getattr(engine_config, CHOICES[field.name], None) if field.name in CHOICES else None
        if parse is None:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(flag, *ALIASES.get(field.name, ()), dest=field.name, type=parse, default=None,
                               metavar=metavar, choices=choices, help=help_text)


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig of the flags given; fields without a flag keep their defaults."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EngineConfig)
              if f.init and getattr(args, f.name, None) is not None}
    return EngineConfig(**values)
