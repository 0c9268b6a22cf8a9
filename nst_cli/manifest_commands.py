"""`nst validate` and `nst run`: a manifest checked, planned, or run through the Prefect flow."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from typing import Any, NoReturn

from flows.names import SHARD_DEPLOYMENT
from nst_cli.errors import fail
from nst_cli.interrupts import run_beside_signal_handlers, stop_on_signals
from nst_cli.prefect_api import ServerWatch, lost_server, prefect_api
from nst_cli.run_display import TerminalProgress, plan_lines, print_summary
from tasks import progress
from tasks.layout import GALLERY_KEY
from tasks.manifest import load_manifest
from tasks.options import RunOptions
from tasks.report import summary_line
from tasks.run_finish import finish_after_lost_run, finish_without_engine
from tasks.run_setup import PreparedRun, WeightsUnavailableError, prepare_run
from tasks.weights import weights_problems

# A fresh local Prefect database takes ~30 s to migrate here, over the 20 s default (docs/design.md).
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
    group.add_argument("--batch-size", type=int, help=f"the most pairs optimised together in one batch, one task run each; "
                                                     f"a batch that does not fit the GPU memory is split "
                                                     f"(default {fields['batch_size']})")
    group.add_argument("--gpu-slots", type=int, help=f"concurrent GPU tasks (default {fields['gpu_slots']})")
    group.add_argument("--gpu-limit", help="name of a Prefect global concurrency limit to hold GPU slots in "
                                           "(shared by every worker on one server); default: a semaphore "
                                           "in this process")
    group.add_argument("--weights", help="VGG-19 weights for every pair (overrides the manifest)")
    group.add_argument("--gpu-memory", help="device memory a batch may use, e.g. 20GiB: batches are sized "
                                            "to fit it (default: the free memory), and an image too large "
                                            "for one pass runs in blocks that fit (engine block_size 0); a "
                                            "batch that still runs out is split and retried")
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
    group.add_argument("--deployment", help=f"the shard deployment (default {SHARD_DEPLOYMENT}, "
                                            "registered by `nst deploy-shards`)")
    group.add_argument("--shard-timeout", type=float, help="seconds a shard may run, or the run may go "
                                                           "without progress, before it is reported unfinished")


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    for note in manifest.notes:  # a run goes on without these; validation names them
        print(f"nst validate: {manifest.source}: {note}", file=sys.stderr)
    problems = weights_problems(manifest)
    if problems:
        raise WeightsUnavailableError(manifest.source, problems)
    if manifest.notes:
        return 1
    print(f"{args.manifest}: ok ({len(manifest.contents)} contents, {len(manifest.styles)} styles, "
          f"{len(manifest.pairs)} pairs)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Load, prepare (the same set-up the flow uses), show, run."""
    manifest = load_manifest(args.manifest)
    for note in manifest.notes:  # left out, or failing only their own pairs
        print(f"warning: {manifest.source}: {note}", file=sys.stderr)
    if args.shards:  # before any work, and before a temporary Prefect server would start
        _check_shard_options(args)
    run = prepare_run(manifest, run_options_from_args(args), fallback_weights=args.fallback_weights,
                      check_weights=args.dry_run, dry_run=args.dry_run)
    show_prepared(run, list_todo=args.dry_run, quiet=args.quiet)
    if args.dry_run:
        return 0
    if run.nothing_to_compute:  # all done, or failing at planning again: no Prefect, no server
        return _finish_without_prefect(run, quiet=args.quiet)
    return _run_with_prefect(args, run)


def show_prepared(run: PreparedRun, *, list_todo: bool, quiet: bool) -> None:
    """The fallback banner, the plan (always for a dry run), the random-weights warning."""
    if run.options.weights_fallback:
        banner = "!" * 78
        print(f"{banner}\nWEIGHTS ARE NOT AVAILABLE: {run.options.weights_fallback}\nFALLING BACK TO "
              f"'{run.options.weights}': the images will NOT be real style transfer.\n{banner}", file=sys.stderr)
    if list_todo or not quiet:
        print("\n".join(plan_lines(run.manifest.name, run.storage.uri, run.plan, list_todo=list_todo)))
    if run.weights_warning and not quiet and not list_todo:
        print(f"WARNING: {run.weights_warning}", file=sys.stderr)


def _finish_without_prefect(run: PreparedRun, *, quiet: bool) -> int:
    """run.json and the gallery of the pairs decided at planning, as the flow would end."""
    report = finish_without_engine(run)
    print_summary(report, rows=not quiet)
    if not report.get("report_error"):  # else print_summary said why there is no gallery
        print(f"gallery: {run.storage.url(GALLERY_KEY)}")
    return 1 if report["counts"]["failed"] or report.get("report_error") else 0


def _run_with_prefect(args: argparse.Namespace, run: PreparedRun) -> int:
    """The flow in this process (threads or Dask) or as shards, with live progress; the summary."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect's console lines would repeat what the display shows (and break its redrawing);
    # --verbose shows them. The run's logs still reach the server (and its UI) in full.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if args.verbose else "CRITICAL")
    display = None if args.quiet else TerminalProgress(run.options.log_every)
    previous = progress.install(display)
    lost: str | None = None
    try:
        with prefect_api() as server, stop_on_signals("run") as signals:
            try:
                state, report = run_beside_signal_handlers(lambda: _run_flow(args, run), gone=lambda: _gone(server))
            except Exception as exc:  # noqa: BLE001 - anything else is re-raised
                lost = server.lost() or lost_server(exc)
                if lost is None:
                    raise
    finally:
        progress.install(previous)
        if display is not None:
            display.close()
    if lost is not None:
        _end_without_server(run, lost, quiet=args.quiet)
    print_summary(report, rows=not args.quiet)
    if not report.get("report_error"):  # else print_summary said why there is no gallery
        print(f"gallery: {run.storage.url(GALLERY_KEY)}")
    if signals:
        name = signal.Signals(signals[0]).name
        print(f"nst run: stopped by {name}: {summary_line(report['counts'])}; rerun the same command to finish",
              file=sys.stderr)
        return 128 + signals[0]
    return 1 if report["counts"]["failed"] or report.get("report_error") or not state.is_completed() else 0


def _gone(server: ServerWatch) -> str | None:
    """Why the run's Prefect server is gone, or None. Once it is, Prefect's log sender and
    logging's handlers would print an error (with a traceback) per failed send: silenced."""
    reason = server.lost()
    if reason is not None:
        logging.raiseExceptions = False
    return reason


def _end_without_server(run: PreparedRun, reason: str, *, quiet: bool) -> NoReturn:
    """The Prefect server went away mid-run: the reports from what reached the output, one line
    on why, and exit 1 now. Not a normal return: Prefect's exit hooks would try to send the
    run's last logs to the vanished server for minutes."""
    logging.raiseExceptions = False  # as in _gone: the loss may have been seen first as an exception
    report = finish_after_lost_run(run, reason)
    print_summary(report, rows=not quiet)
    if not report.get("report_error"):
        print(f"gallery: {run.storage.url(GALLERY_KEY)}")
    print(f"nst run: error: {reason}; results written so far are kept: rerun the same command to finish",
          file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


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


def _run_flow(args: argparse.Namespace, run: PreparedRun) -> tuple[Any, dict[str, Any]]:
    """Run here, on a Dask cluster, or as shards on Prefect workers; the flow starts from `run`."""
    if args.shards:
        from flows.sharded import run_sharded

        parent = {"deployment": args.deployment, "shard_timeout": args.shard_timeout}
        return run_sharded(run.manifest_uri, args.shards, run.options, prepared=run,
                           **{k: v for k, v in parent.items() if v})
    from flows.stylize_manifest import run_manifest

    if not _uses_dask(args):
        return run_manifest(run.manifest_uri, run.options, prepared=run)
    try:
        from flows.dask_runner import dask_task_runner
    except ImportError as exc:
        fail(f"--task-runner dask needs prefect-dask: pip install 'nst-pipeline[dask]' ({exc})")
    try:
        runner = dask_task_runner(args.dask_address, args.workers)
    except ValueError as exc:
        fail(str(exc))
    return run_manifest(run.manifest_uri, run.options, task_runner=runner, prepared=run)
