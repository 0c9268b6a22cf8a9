"""`nst deploy` and `nst serve`: scheduled runs of a manifest on a Prefect server.

deployments/ sits above flows/ in the layering, so it is imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flows.manifest_commands import _load


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """Options `nst deploy` and `nst serve` share."""
    parser.add_argument("manifest", help="the manifest every run stylizes (its path is stored absolute)")
    parser.add_argument("--name", help="deployment name (default: the manifest's name)")
    parser.add_argument("--cron", help='cron schedule, e.g. "0 3 * * *" (03:00 every night)')
    parser.add_argument("--interval", type=float, help="run every this many seconds")
    parser.add_argument("--timezone", help="time zone of --cron, e.g. Europe/Paris (default UTC)")
    parser.add_argument("--gpu-limit", default=None,
                        help="Prefect global concurrency limit GPU work holds (deploy: default nst-gpu; "
                             "serve: default none, runs one at a time with a semaphore each)")
    parser.add_argument("--gpu-slots", type=int, default=1, help="slots of that limit: the number of GPUs (default 1)")
    parser.add_argument("--batch-size", type=int, help="pairs per task (default 4)")
    parser.add_argument("--weights", help="VGG-19 weights for every pair (overrides the manifest)")


def _common(args: argparse.Namespace) -> tuple[str, dict[str, Any]] | None:
    """The deployment name and keyword arguments, or None after reporting what is wrong."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Without it Prefect would start a temporary server that dies with this command: the
        # deployment would vanish and no UI would show it.
        print(f"nst {args.command}: no Prefect server configured. Start one (prefect server start) and point "
              "at it: prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return None
    manifest = _load(args.manifest)  # fail here, not at 03:00
    if manifest is None:
        return None
    options = {"cron": args.cron, "interval": args.interval, "timezone": args.timezone,
               "gpu_slots": args.gpu_slots, "batch_size": args.batch_size, "weights": args.weights}
    return args.name or manifest.name, options


def cmd_deploy(args: argparse.Namespace) -> int:
    from deployments.definitions import GPU_LIMIT, deploy_manifest

    common = _common(args)
    if common is None:
        return 1
    name, options = common
    gpu_limit = args.gpu_limit if args.gpu_limit is not None else GPU_LIMIT
    deployment_id = deploy_manifest(args.manifest, name=name, work_pool=args.pool, gpu_limit=gpu_limit or None,
                                    **options)
    schedule = args.cron or (f"every {args.interval:g} s" if args.interval else "none (trigger it)")
    print(f"deployment stylize-manifest/{name} ({deployment_id}) on work pool {args.pool}; schedule: {schedule}")
    print(f"start a worker:  prefect worker start --pool {args.pool}")
    print(f"run it now:      prefect deployment run 'stylize-manifest/{name}'")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.definitions import serve_manifest

    common = _common(args)
    if common is None:
        return 1
    name, options = common
    if not (args.cron or args.interval):
        print("nst serve: no --cron or --interval; serving for triggered runs only", file=sys.stderr)
    serve_manifest(args.manifest, name=name, gpu_limit=args.gpu_limit or None, **options)
    return 0
