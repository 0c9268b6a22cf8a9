"""`nst validate` and `nst run`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from flows.cli import EXIT_USAGE

# A fresh local Prefect database takes ~30 s to migrate here, over the 20 s default (DESIGN.md).
PREFECT_DEFAULTS = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _load(path: str) -> Any:
    """The manifest, or None after printing every problem in it."""
    from tasks.manifest import ManifestError, load_manifest

    try:
        return load_manifest(path)
    except ManifestError as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = _load(args.manifest)
    if manifest is None:
        return 1
    print(f"{args.manifest}: ok ({len(manifest.contents)} contents, {len(manifest.styles)} styles, "
          f"{len(manifest.pairs)} pairs)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    manifest = _load(args.manifest)
    if manifest is None:
        return 1
    only = [part for part in (args.only or "").split(",") if part] or None
    if args.dry_run:
        return _dry_run(manifest, args, only)
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from flows.stylize_manifest import run_manifest

    options = {"output": args.output, "force": args.force, "only": only,
               "weights": args.weights or _fallback(manifest.engine.weights, args.fallback_weights)}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.gpu_slots:
        options["gpu_slots"] = args.gpu_slots
    if args.gpu_limit:
        options["gpu_limit"] = args.gpu_limit
    from tasks.storage import StorageError

    try:
        state, report = _run(args, options) if _scaled(args) else run_manifest(args.manifest, **options)
    except ScaleError as exc:
        print(f"nst run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:  # the output, cache or weights store could not be reached at all
        print(f"nst run: {manifest.name}: {exc}", file=sys.stderr)
        return 1
    counts = report["counts"]
    print(f"{manifest.name}: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"style targets computed: {report['style_targets']['computed']}; output: {report['output']}")
    for pair in report["pairs"]:
        if pair["status"] == "failed":
            print(f"  failed {pair['content']} x {pair['style']}: {pair['reason']}", file=sys.stderr)
    return 1 if counts["failed"] else 0


class ScaleError(Exception):
    """Scale-out options that cannot work together or here; the message says what to change."""


def _scaled(args: argparse.Namespace) -> bool:
    return bool(args.shards or args.task_runner == "dask" or args.dask_address or args.workers)


def _run(args: argparse.Namespace, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Run on many GPUs: shards on Prefect workers, or the flow's tasks on a Dask cluster."""
    if args.shards:
        from prefect.settings import PREFECT_API_URL

        if args.task_runner == "dask" or args.dask_address or args.workers:
            raise ScaleError("--shards runs on Prefect workers; it does not combine with the Dask options")
        if not PREFECT_API_URL.value():  # a temporary server would die with this command, workers can't see it
            raise ScaleError("--shards needs the Prefect server the workers poll: set PREFECT_API_URL, e.g. "
                             "http://127.0.0.1:4200/api")
        from flows.sharded import run_sharded

        extra = {"deployment": args.deployment} if args.deployment else {}
        if args.shard_timeout:
            extra["shard_timeout"] = args.shard_timeout
        return run_sharded(args.manifest, args.shards, **options, **extra)
    try:
        from flows.dask_runner import dask_task_runner
    except ImportError as exc:
        raise ScaleError(f"--task-runner dask needs prefect-dask: pip install 'nst-pipeline[dask]' ({exc})") from None
    from flows.stylize_manifest import run_manifest

    try:
        runner = dask_task_runner(args.dask_address, args.workers)
    except ValueError as exc:
        raise ScaleError(str(exc)) from None
    return run_manifest(args.manifest, task_runner=runner, **options)


def _fallback(weights: str, fallback: str | None) -> str | None:
    """`fallback` when `weights` cannot be loaded here, else None (keep the manifest's)."""
    if not fallback:
        return None
    from nst_engine.errors import WeightsError
    from nst_engine.vgg import load_weights

    try:
        load_weights(weights)
    except WeightsError as exc:
        banner = "!" * 78
        print(f"{banner}\nWEIGHTS '{weights}' ARE NOT AVAILABLE: {exc}\nFALLING BACK TO '{fallback}': "
              f"the images will NOT be real style transfer.\n{banner}", file=sys.stderr)
        return fallback
    return None


def _dry_run(manifest: Any, args: argparse.Namespace, only: list[str] | None) -> int:
    from tasks.plan import build_plan
    from tasks.storage import open_storage
    from tasks.style_cache import StyleCache, cache_location

    storage = open_storage(args.output or manifest.output)
    cache = StyleCache.at(cache_location(manifest.cache))
    plan = build_plan(manifest, storage, force=args.force, only=only,
                      batch_size=args.batch_size or 4, cached=cache.has)
    summary = plan.summary()
    print(f"plan for {manifest.name} -> {storage.uri}")
    print("  " + ", ".join(f"{k}: {v}" for k, v in summary.items()))
    print(f"  task runs: {len(plan.style_jobs) + len(plan.batches)} "
          f"(batches of up to {max((len(b) for b in plan.batches), default=0)} pairs)")
    for content, style, reason in plan.failed:
        print(f"  will fail {content} x {style}: {reason}")
    return 0
