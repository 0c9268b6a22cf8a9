"""Setting a run up: the one plain function every way of running a manifest starts with.

`nst run` (and `--dry-run`), the manifest flow, its shards, the sharded parent and deployed runs
all call `prepare_run`: the manifest with the run's options applied, the weights decision (and a
fallback when they cannot be had), the output store (checked to be the pipeline's to write), the
style cache, the plan and the random-weights warning. No Prefect: the flows add only their own
steps (naming the flow run, concurrency limits) on top.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Iterator

from tasks import interrupt
from tasks.manifest import Manifest
from tasks.options import RunOptions, manifest_for_run
from tasks.output_guard import check_output_location, local_manifest_path
from tasks.plan import Plan, build_plan
from tasks.shards import shard_selector
from tasks.stores import Storage, absolute, forget_unreachable, open_storage
from tasks.style_cache import StyleCache, cache_location
from tasks.weights import random_weights_warning, weights_problems


class WeightsUnavailableError(Exception):
    """The weights the run would use cannot be had here; str() names each source and the fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class PreparedRun:
    """A run ready to start: everything decided before any engine work, read once.

    `options` are the ones the run uses: resolved, and holding the fallback weights when they
    replaced the manifest's (`options.weights_fallback` says why).
    """

    manifest_uri: str  # absolute: the flow's parameter
    manifest: Manifest  # as this run sees it (run options applied)
    options: RunOptions
    storage: Storage
    cache_uri: str
    plan: Plan
    weights_warning: str | None = None  # why the weights are random, when they are

    @property
    def cache(self) -> StyleCache:
        return StyleCache.at(self.cache_uri)

    @property
    def nothing_to_compute(self) -> bool:
        """No pair needs the engine: each is done already or fails at planning (an unreadable or
        too small input, read again this time), so a Prefect run would only repeat the plan."""
        return not self.plan.todo


def prepare_run(manifest: Manifest, options: RunOptions, *, fallback_weights: str | None = None,
                check_weights: bool = False, dry_run: bool = False) -> PreparedRun:
    """Set a run of `manifest` up; nothing is written but the plan index (`dry_run`: not even that).

    `fallback_weights`: used for every pair when a weights source the manifest names cannot be
    had here (the decision and its reason land in the returned options). `check_weights`: raise
    WeightsUnavailableError when the run's weights cannot be had (rather than let every pair
    fail later). Raises OutputRefusedError for an output that is not the pipeline's to write
    (another manifest's run included), RunOptionsError for `options.only` ids the manifest lacks.
    `options.shard` ("i/n") plans only that shard's pairs.
    """
    # A new run: no stop request and no store left marked unreachable by an earlier run here.
    interrupt.reset()
    forget_unreachable()
    if fallback_weights and not options.weights:
        problems = weights_problems(manifest)
        if problems:
            options = options.replace(weights=fallback_weights, weights_fallback="; ".join(problems)).resolved()
    run_manifest = manifest_for_run(manifest, options)
    if check_weights:
        problems = weights_problems(run_manifest)
        if problems:
            raise WeightsUnavailableError(run_manifest.source, problems)
    storage = open_storage(options.output or run_manifest.output)
    # Before any work (and before a Prefect server starts): only into a folder that is empty
    # or already ours, never over a user's files (OutputRefusedError says why not).
    check_output_location(storage, manifest=local_manifest_path(run_manifest),
                          allow_non_empty=options.allow_non_empty_output, name=run_manifest.name)
    cache_uri = cache_location(run_manifest.cache)
    select = None
    if options.shard:
        select = shard_selector([(p.content, p.style) for p in run_manifest.pairs], options.shard)
    plan = build_plan(run_manifest, storage, options, cached=StyleCache.at(cache_uri).has, select=select,
                      save_index=not dry_run)
    return PreparedRun(absolute(manifest.source, "."), run_manifest, options, storage, cache_uri, plan,
                       random_weights_warning(manifest.engine.weights, options))


# A run prepared by the command line, kept for the flow it starts in this same process, so the
# flow does not read and plan the manifest a second time. Keyed by what the flow is called with.
_handed_over: dict[tuple[str, RunOptions], PreparedRun] = {}
_hand_over_lock = threading.Lock()


@contextlib.contextmanager
def handed_over(run: PreparedRun | None) -> Iterator[None]:
    """While the body runs, the flow this process starts with `run`'s manifest URI and options
    (run.manifest_uri, run.options) takes `run` instead of preparing it again. None: no-op."""
    if run is None:
        yield
        return
    key = (run.manifest_uri, run.options)
    with _hand_over_lock:
        _handed_over[key] = run
    try:
        yield
    finally:  # not left behind when the flow failed before taking it
        with _hand_over_lock:
            _handed_over.pop(key, None)


def take_over(manifest_uri: str, options: RunOptions) -> PreparedRun | None:
    """The run handed over for these flow parameters (once), or None: prepare it afresh."""
    with _hand_over_lock:
        return _handed_over.pop((manifest_uri, options), None)
