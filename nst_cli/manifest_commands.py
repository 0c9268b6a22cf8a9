"""`nst validate` and `nst run`: a manifest checked, planned, or run through the Prefect flow."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from typing import Any

from nst_cli.errors import fail
from nst_cli.interrupts import run_beside_signal_handlers, stop_on_signals
from nst_cli.prefect_api import prefect_api
from nst_cli.run_display import TerminalProgress, plan_lines, print_summary
from nst_engine.errors import WeightsError
from nst_engine.vgg import load_weights
from tasks import progress
from tasks.layout import GALLERY_KEY
from tasks.manifest import Manifest, load_manifest
from tasks.options import RunOptions, manifest_for_run
from tasks.output_guard import check_output_location, local_manifest_path, report_is_current
from tasks.plan import Plan, build_plan
from tasks.report import summary_line
from tasks.stores import Storage, open_storage
from tasks.style_cache import StyleCache, cache_location
from tasks.weights import random_weights_warning, weights_problem

# A fresh local Prefect database takes ~30 s to migrate here, over the 20 s default (DESIGN.md).
PREFECT_DEFAULTS = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def add_parsers(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check a manifest and list every problem")
    validate.add_argument("manifest", help="the manifest file (YAML)")
    validate.set_defaults(handler=cmd_validate)

    run = commands.add_parser("run", help="stylize every pair of a manifest through the Prefect flow",
                              description="Plan the manifest, then run the pairs to do through the Prefect flow "
                                          "in this process. Nothing to do: it says so and exits without Prefect. "
                                          "Uses the server PREFECT_API_URL names when set (its UI shows the "
                                          "run); otherwise a temporary local one.")
    run.add_argument("manifest", help="the manifest file (YAML)")
    run.add_argument("--dry-run", action="store_true", help="print the plan and every pair it would do; run nothing")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="no progress: only the final summary")
    shown.add_argument("-v", "--verbose", action="store_true", help="Prefect's own log lines too")
    run.add_argument("--fallback-weights", help="weights to use when the manifest's cannot be loaded "
                                                "(the demo uses `random`, and says so loudly)")
    add_run_option_flags(run)
    _add_scale_flags(run)
    run.set_defaults(handler=cmd_run)


def add_run_option_flags(parser: argparse.ArgumentParser, *, defaults: dict[str, Any] | None = None) -> None:
    """Flags for RunOptions fields; each flag's dest is the field's name (see run_options_from_args)."""
    fields = {f.name: f.default for f in dataclasses.fields(RunOptions)}
    group = parser.add_argument_group("run options")
    group.add_argument("--output", help="output folder or s3:// URI (default: the manifest's `output:`)")
    group.add_argument("--force", action="store_true", default=None, help="redo pairs whose result is already there")
    group.add_argument("--only", type=lambda text: tuple(p for p in text.split(",") if p),
                       help="comma-separated content/style ids to restrict the run to")
    group.add_argument("--batch-size", type=int, help=f"pairs per task (default {fields['batch_size']})")
    group.add_argument("--gpu-slots", type=int, help=f"concurrent GPU tasks (default {fields['gpu_slots']})")
    group.add_argument("--gpu-limit", help="name of a Prefect global concurrency limit to hold GPU slots in "
                                           "(shared by every worker on one server); default: a semaphore "
                                           "in this process")
    group.add_argument("--weights", help="VGG-19 weights for every pair (overrides the manifest)")
    group.add_argument("--gpu-memory", help="device memory a batch may use, e.g. 20GiB: batches are sized "
                                            "to fit it (default: the free memory); a batch that still runs "
                                            "out is split and retried")
    group.add_argument("--allow-non-empty-output", action="store_true", default=None,
                       help="write into a non-empty folder that is not an nst-pipeline output (never a "
                            "filesystem root, home or system folder)")
    group.add_argument("--log-every", type=int, help=f"engine progress in the task logs every this many "
                                                     f"iterations (default {fields['log_every']})")
    parser.set_defaults(**(defaults or {}))


def run_options_from_args(args: argparse.Namespace, **changes: Any) -> RunOptions:
    """RunOptions from the flags given (a field without a flag keeps its default), made absolute
    against the current folder."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunOptions)
              if getattr(args, f.name, None) is not None}
    return RunOptions(**{**values, **changes}).resolved()


def _add_scale_flags(run: argparse.ArgumentParser) -> None:
    """Running on many GPUs: a Dask cluster, or shards on Prefect workers (README)."""
    group = run.add_argument_group("scale-out")
    group.add_argument("--task-runner", choices=("threads", "dask"), default="threads",
                       help="threads (default): this process; dask: a Dask cluster, one worker per GPU")
    group.add_argument("--dask-address", help="scheduler of a running Dask cluster, e.g. tcp://10.0.0.5:8786 "
                                              "(workers started with --nthreads 1 --resources GPU=1)")
    group.add_argument("--workers", type=int, help="start a local Dask cluster of this many workers "
                                                   "(default: one per visible GPU)")
    group.add_argument("--shards", type=int, help="split the pairs into this many deployment runs for the "
                                                  "Prefect workers of a work pool; this process merges them")
    group.add_argument("--deployment", help="the shard deployment (default stylize-manifest/nst-shard, "
                                            "registered by `python -m deployments.shards`)")
    group.add_argument("--shard-timeout", type=float, help="seconds a shard may run, or the run may go "
                                                           "without progress, before it is reported unfinished")


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    for note in manifest.notes:  # a run goes on without these; validation names them
        print(f"nst validate: {manifest.source}: {note}", file=sys.stderr)
    if not _weights_available(manifest, "validate") or manifest.notes:
        return 1
    print(f"{args.manifest}: ok ({len(manifest.contents)} contents, {len(manifest.styles)} styles, "
          f"{len(manifest.pairs)} pairs)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    for note in manifest.notes:  # left out, or failing only their own pairs
        print(f"warning: {manifest.source}: {note}", file=sys.stderr)
    why = None if args.weights else _fallback(manifest.engine.weights, args.fallback_weights)
    options = run_options_from_args(args, **({"weights": args.fallback_weights, "weights_fallback": why} if why else {}))
    guard_output(manifest, options)  # before any work, and before a Prefect server starts
    if args.shards:
        _check_shard_options(args)
    run_manifest, storage, plan = _plan(manifest, options, dry_run=args.dry_run)
    if args.dry_run and not _weights_available(run_manifest, "run --dry-run"):
        return 1
    if args.dry_run or not args.quiet:
        print("\n".join(plan_lines(run_manifest.name, storage.uri, plan, list_todo=args.dry_run)))
    if args.dry_run:
        return 0
    # A resume with nothing left: no Prefect, no server (unless run.json or the gallery is missing)
    if not plan.todo and not plan.failed and report_is_current(storage, run_manifest.name):
        print(f"{run_manifest.name}: nothing to do; output: {storage.uri}; gallery: {storage.url(GALLERY_KEY)}")
        return 0
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect's console lines would repeat what the display shows (and break its redrawing);
    # --verbose shows them. The run's logs still reach the server (and its UI) in full.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if args.verbose else "CRITICAL")
    warning = random_weights_warning(manifest.engine.weights, options)
    if warning and not args.quiet:
        print(f"WARNING: {warning}", file=sys.stderr)
    display = None if args.quiet else TerminalProgress(options.log_every)
    previous = progress.install(display)
    try:
        with prefect_api(), stop_on_signals("run") as signals:
            state, report = run_beside_signal_handlers(lambda: _run_flow(args, options))
    finally:
        progress.install(previous)
        if display is not None:
            display.close()
    print_summary(report, rows=not args.quiet)
    if not report.get("report_error"):  # else print_summary said why there is no gallery
        print(f"gallery: {storage.url(GALLERY_KEY)}")
    if signals:
        name = signal.Signals(signals[0]).name
        print(f"nst run: stopped by {name}: {summary_line(report['counts'])}; rerun the same command to finish",
              file=sys.stderr)
        return 128 + signals[0]
    return 1 if report["counts"]["failed"] or report.get("report_error") or not state.is_completed() else 0


def _plan(manifest: Manifest, options: RunOptions, dry_run: bool = False) -> tuple[Manifest, Storage, Plan]:
    """The plan as the flow will make it (the flow plans again: the inputs may change meanwhile).
    A dry run writes nothing (not even the plan index)."""
    manifest = manifest_for_run(manifest, options)
    storage = open_storage(options.output or manifest.output)
    cache = StyleCache.at(cache_location(manifest.cache))
    plan = build_plan(manifest, storage, force=options.force, only=options.only,
                      batch_size=options.batch_size, cached=cache.has, save_index=not dry_run)
    return manifest, storage, plan


def _uses_dask(args: argparse.Namespace) -> bool:
    return bool(args.task_runner == "dask" or args.dask_address or args.workers)


def _check_shard_options(args: argparse.Namespace) -> None:
    """--shards needs the server the workers poll, checked before a temporary one is started."""
    from prefect.settings import PREFECT_API_URL

    if _uses_dask(args):
        fail("--shards runs on Prefect workers; it does not combine with the Dask options")
    if not PREFECT_API_URL.value():  # a temporary server would die with this command, workers can't see it
        fail("--shards needs the Prefect server the workers poll: set PREFECT_API_URL, e.g. "
             "http://127.0.0.1:4200/api")


def _run_flow(args: argparse.Namespace, options: RunOptions) -> tuple[Any, dict[str, Any]]:
    """Run here, on a Dask cluster, or as shards on Prefect workers."""
    dask = _uses_dask(args)
    if args.shards:
        from flows.sharded import run_sharded

        parent = {"deployment": args.deployment, "shard_timeout": args.shard_timeout}
        return run_sharded(args.manifest, args.shards, options, **{k: v for k, v in parent.items() if v})
    from flows.stylize_manifest import run_manifest

    if not dask:
        return run_manifest(args.manifest, options)
    try:
        from flows.dask_runner import dask_task_runner
    except ImportError as exc:
        fail(f"--task-runner dask needs prefect-dask: pip install 'nst-pipeline[dask]' ({exc})")
    try:
        runner = dask_task_runner(args.dask_address, args.workers)
    except ValueError as exc:
        fail(str(exc))
    return run_manifest(args.manifest, options, task_runner=runner)


def _fallback(weights: str, fallback: str | None) -> str | None:
    """Why `weights` cannot be loaded here, when a `fallback` is given and they cannot; else None
    (keep the manifest's)."""
    if not fallback:
        return None
    try:
        load_weights(weights)
    except WeightsError as exc:
        banner = "!" * 78
        print(f"{banner}\nWEIGHTS '{weights}' ARE NOT AVAILABLE: {exc}\nFALLING BACK TO '{fallback}': "
              f"the images will NOT be real style transfer.\n{banner}", file=sys.stderr)
        return str(exc)
    return None


def guard_output(manifest: Manifest, options: RunOptions) -> None:
    """Refuse (OutputRefusedError) an output that is not the pipeline's to write."""
    check_output_location(open_storage(options.output or manifest.output), manifest=local_manifest_path(manifest),
                          allow_non_empty=options.allow_non_empty_output, name=manifest.name)


def _weights_available(manifest: Manifest, command: str) -> bool:
    """Every weights source the pairs use can be loaded here; else say which and how to fix it."""
    problems = [problem for weights in sorted({p.engine.weights for p in manifest.pairs})
                if (problem := weights_problem(weights))]
    for problem in problems:
        print(f"nst {command}: error: {manifest.source}: {problem}", file=sys.stderr)
    return not problems
