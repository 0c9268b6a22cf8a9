"""The errors a user of the engine can cause. One base type; each says what to fix."""

from __future__ import annotations

from typing import Sequence


class EngineError(Exception):
    """Anything a caller of nst_engine did wrong (bad image, bad weights, bad settings)."""


class ImageError(EngineError):
    """An image could not be read, decoded or written. The message names the file."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class WeightsError(EngineError):
    """VGG-19 weights could not be found or do not fit VGG-19."""


class ConfigError(EngineError):
    """One or more engine settings are invalid; `problems` holds (field, message) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems))
