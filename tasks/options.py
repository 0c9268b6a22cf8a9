"""RunOptions: the run-wide options of one manifest run, built once and passed whole.

The command line (`nst run`), deployments (`nst deploy`, `nst serve`, prefect.yaml) and the
sharded parent all build one of these; the flows take it as one parameter. A new run-wide option
is a field here plus its flag in nst_cli: nothing in between copies fields by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nst_engine.errors import EngineError
from nst_engine.memory import parse_bytes
from nst_engine.vgg import is_named_weights
from tasks.manifest import Manifest, with_engine_changes
from tasks.shards import ShardError, parse_shard
from tasks.stores import absolute


class RunOptionsError(ValueError):
    """A run option with a value that cannot work; the message names the option."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a manifest, beyond what the manifest itself says.

    Locations given here (`output`, a weights file) are made absolute by `resolved()` against
    the caller's folder, the same way the manifest's own paths are made absolute against its
    folder, so a worker starting elsewhere reads the same files and computes the same
    fingerprints as the process that planned the run.
    """

    output: str | None = None  # folder or URI; None: the manifest's `output:`
    force: bool = False  # redo pairs whose result (same fingerprint) is already there
    only: tuple[str, ...] = ()  # content/style ids to restrict the run to; empty: every pair
    batch_size: int = 4  # the most pairs in one batch (optimised together; one task run each); memory may split it
    gpu_slots: int = 1  # concurrent engine calls (GPUs) in this process, or the size of gpu_limit
    gpu_limit: str | None = None  # a Prefect global concurrency limit shared by every worker
    weights: str | None = None  # VGG-19 weights for every pair; None: the manifest's
    weights_fallback: str = ""  # why `weights` replaced the manifest's (those could not be loaded)
    shard: str | None = None  # "i/n": run only that shard's pairs (flows/sharded.py)
    log_every: int = 50  # engine progress lines in the task logs, every this many iterations
    allow_non_empty_output: bool = False  # write into a non-empty folder that is not a pipeline output
    gpu_memory: str | None = None  # e.g. "20GiB": the device memory engine calls may use (batch sizes)

    def __post_init__(self) -> None:
        for name in ("batch_size", "gpu_slots", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RunOptionsError(f"{name.replace('_', '-')}={value!r}: must be a whole number >= 1")
        if self.shard is not None:
            try:
                parse_shard(self.shard)
            except ShardError as exc:
                raise RunOptionsError(str(exc)) from None
        if self.gpu_memory is not None:
            try:
                parse_bytes(self.gpu_memory)
            except EngineError as exc:
                raise RunOptionsError(str(exc)) from None
        object.__setattr__(self, "only", tuple(self.only))  # lists from JSON parameters

    def resolved(self, base_dir: Path | str | None = None) -> "RunOptions":
        """The same options with local paths absolute (relative to `base_dir`, default the cwd)."""
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        weights = self.weights
        if weights and not is_named_weights(weights):
            weights = absolute(weights, base)
        output = absolute(self.output, base) if self.output else None
        return dataclasses.replace(self, output=output, weights=weights)

    def memory_budget(self) -> int | None:
        """`gpu_memory` in bytes (None: the device's free memory decides)."""
        return parse_bytes(self.gpu_memory) if self.gpu_memory else None

    def replace(self, **changes: Any) -> "RunOptions":
        return dataclasses.replace(self, **changes)

    def to_parameters(self, changed_only: bool = False) -> dict[str, Any]:
        """The options as JSON-ready values, for deployment and subflow parameters
        (`changed_only`: just those that differ from the defaults, as a deployment shows them)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if not (changed_only and getattr(self, f.name) == f.default)}
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()}

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any] | None) -> "RunOptions":
        return cls(**dict(values or {}))


def manifest_for_run(manifest: Manifest, options: RunOptions) -> Manifest:
    """The manifest as this run sees it: `options.weights` replaces every pair's weights."""
    return with_engine_changes(manifest, weights=options.weights) if options.weights else manifest
