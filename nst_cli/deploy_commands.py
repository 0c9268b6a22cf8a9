"""`nst deploy`, `nst serve`, `nst notify` and `nst deploy-shards`: scheduled runs of a manifest
on a Prefect server, an alert when one fails, and the deployment sharded runs use.

Prefect is imported by the handlers, not here: the parser is built for every `nst` command, and
importing Prefect costs ~5 s that `nst validate` or a no-op `nst run` should not pay.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deployments.names import GPU_LIMIT, SHARD_POOL, WORK_POOL
from flows.names import SHARD_DEPLOYMENT_NAME, deployment_path
from nst_cli.errors import fail
from nst_cli.manifest_commands import add_run_option_flags, run_options_from_args
from tasks.manifest import load_manifest


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve a manifest's scheduled runs from this process (flow.serve)")
    _add_schedule_flags(serve)
    serve.set_defaults(handler=cmd_serve)
    deploy = commands.add_parser("deploy", help="register a manifest's deployment for a process work pool")
    _add_schedule_flags(deploy, gpu_limit=GPU_LIMIT)
    deploy.add_argument("--pool", default=WORK_POOL, help=f"work pool, created if missing (default {WORK_POOL})")
    deploy.add_argument("--notify-webhook", metavar="URL_OR_BLOCK", help=NOTIFY_HELP)
    deploy.set_defaults(handler=cmd_deploy)
    notify = commands.add_parser("notify", help="notify a webhook when a run of a deployment fails or crashes "
                                                "(for deployments made by prefect.yaml)")
    notify.add_argument("deployment", help=f"the deployment, FLOW/NAME, e.g. {deployment_path('demo-nightly')}")
    notify.add_argument("--webhook", metavar="URL_OR_BLOCK", required=True, help=NOTIFY_HELP)
    notify.set_defaults(handler=cmd_notify)
    shards = commands.add_parser("deploy-shards", help="register the shard deployment that `nst run --shards N` "
                                                       "runs on the Prefect workers of a work pool")
    shards.add_argument("--pool", default=SHARD_POOL, help="process work pool, created if missing "
                                                           "(default %(default)s)")
    shards.add_argument("--name", default=SHARD_DEPLOYMENT_NAME, help="deployment name (default %(default)s)")
    shards.set_defaults(handler=cmd_deploy_shards)


NOTIFY_HELP = ("attach a Prefect automation that notifies when a run fails or crashes: an http(s) URL "
               "(a Custom Webhook block is saved for it, POSTing JSON {subject, body}) or an existing "
               "notification block as TYPE/NAME, e.g. slack-webhook/ops-alerts")


def _add_schedule_flags(parser: argparse.ArgumentParser, gpu_limit: str | None = None) -> None:
    """What `nst deploy` and `nst serve` share: the manifest, the schedule, the run options."""
    parser.add_argument("manifest", help="the manifest every run stylizes (its path is stored absolute)")
    parser.add_argument("--name", help="deployment name (default: the manifest's name)")
    parser.add_argument("--cron", help='cron schedule, e.g. "0 3 * * *" (03:00 every night)')
    parser.add_argument("--interval", type=float, help="run every this many seconds")
    parser.add_argument("--timezone", help="time zone of --cron, e.g. Europe/Paris (default UTC)")
    # deploy: GPU work holds the nst-gpu limit by default (several workers); serve: a semaphore
    # in each run (runs one at a time), unless --gpu-limit names one.
    add_run_option_flags(parser, defaults={"gpu_limit": gpu_limit})


def _require_server() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Without it Prefect would start a temporary server that dies with this command: the
        # deployment would vanish and no UI would show it.
        fail(f"no Prefect server configured. Start one (prefect server start) and point at it: "
             "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api", code=1)


def _deployment_name(args: argparse.Namespace) -> str:
    """The deployment's name; refuses without a server, or with a bad manifest (fail now, not at 03:00)."""
    _require_server()
    manifest = load_manifest(args.manifest)
    return args.name or manifest.name


def cmd_deploy(args: argparse.Namespace) -> int:
    from deployments.manifest_deployment import deploy_manifest

    name = _deployment_name(args)
    deployment_id = deploy_manifest(args.manifest, name=name, options=run_options_from_args(args),
                                    work_pool=args.pool, cron=args.cron, interval=args.interval,
                                    timezone=args.timezone)
    schedule = args.cron or (f"every {args.interval:g} s" if args.interval else "none (trigger it)")
    print(f"deployment {deployment_path(name)} ({deployment_id}) on work pool {args.pool}; schedule: {schedule}")
    if args.notify_webhook:
        _attach_alert(deployment_id, deployment_path(name), args.notify_webhook)
    print(f"start a worker:  prefect worker start --pool {args.pool}")
    print(f"run it now:      prefect deployment run '{deployment_path(name)}'")
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    _require_server()
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(args.deployment)
        except ObjectNotFound:
            fail(f"no deployment {args.deployment} on this server (see `prefect deployment ls`)", code=1)
    _attach_alert(deployment.id, args.deployment, args.webhook)
    return 0


def _attach_alert(deployment_id: Any, deployment_name: str, target: str) -> None:
    from deployments.alerts import AlertError, attach_failure_alert

    try:
        automation_id = attach_failure_alert(deployment_id, deployment_name, target)
    except AlertError as exc:
        fail(str(exc), code=1)
    print(f"alert: automation {automation_id} notifies {target} when a run of {deployment_name} fails or crashes")


def cmd_deploy_shards(args: argparse.Namespace) -> int:
    _require_server()
    from deployments.shards import deploy_shard_flow

    deployment_id = deploy_shard_flow(args.pool, args.name)
    print(f"deployment {deployment_path(args.name)} ({deployment_id}) on work pool {args.pool}")
    print(f"on each GPU:  CUDA_VISIBLE_DEVICES=<i> prefect worker start --pool {args.pool} --limit 1")
    print(f"then:         nst run manifest.yaml --shards <N> --deployment {deployment_path(args.name)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.manifest_deployment import serve_manifest

    name = _deployment_name(args)
    if not (args.cron or args.interval):
        print("nst serve: no --cron or --interval; serving for triggered runs only", file=sys.stderr)
    serve_manifest(args.manifest, name=name, options=run_options_from_args(args), cron=args.cron,
                   interval=args.interval, timezone=args.timezone)
    return 0
