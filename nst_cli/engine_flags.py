"""Engine options on the command line, generated from EngineConfig's fields.

Every field becomes `--field-name` with its type and default read from the dataclass, and its
meaning and choices from nst_engine.config (FIELD_HELP, FIELD_CHOICES), so a new engine option
needs no command-line code and the help never restates a default by hand. Only the aliases are
the command line's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

from nst_engine.config import FIELD_CHOICES, FIELD_HELP, EngineConfig

ALIASES = {"learning_rate": ("--lr",)}


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
        help_text = f"{FIELD_HELP[field.name]} (default {_default_text(default)})"
        choices = FIELD_CHOICES.get(field.name)
        if parse is None:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:  # a field with choices shows them as its metavar: --optimizer {lbfgs,adam}
            group.add_argument(flag, *ALIASES.get(field.name, ()), dest=field.name, type=parse, default=None,
                               metavar=None if choices else metavar, choices=choices, help=help_text)


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig of the flags given; fields without a flag keep their defaults."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EngineConfig)
              if f.init and getattr(args, f.name, None) is not None}
    return EngineConfig(**values)
