"""Deployments of the `stylize_manifest` flow: a work-pool deployment and a served one.

`deployments/prefect.yaml` declares the same nightly deployment for `prefect deploy`; the
names and the example schedule below are the ones it uses (tests/ui checks they agree).
Both need a Prefect server (`prefect server start`, then PREFECT_API_URL pointing at it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Interval
from prefect.workers.process import ProcessWorker

from deployments.names import ENTRYPOINT, EXAMPLE_CRON, FLOW_NAME, GPU_LIMIT, WORK_POOL, deployment_path
from flows.stylize_manifest import stylize_manifest
from tasks.options import RunOptions
from tasks.prefect_tasks import ensure_concurrency_limit
from tasks.stores import absolute

REPO_ROOT = Path(__file__).resolve().parents[1]
__all__ = ["ENTRYPOINT", "EXAMPLE_CRON", "FLOW_NAME", "GPU_LIMIT", "WORK_POOL", "deploy_manifest", "ensure_work_pool",
           "serve_manifest"]


def manifest_parameter(manifest: str | Path) -> str:
    """The manifest URI as a run will see it: local paths made absolute, since a worker or a
    served run does not start in the caller's folder; URIs (s3://...) are kept as they are."""
    return absolute(str(manifest), Path.cwd())


def flow_parameters(manifest: str | Path, options: RunOptions) -> dict[str, Any]:
    """A deployment's default parameters: the manifest and the run options that differ from
    RunOptions' defaults (local paths in them made absolute)."""
    return {"manifest_uri": manifest_parameter(manifest), "options": options.resolved().to_parameters(changed_only=True)}


def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create a process work pool called `name` unless one exists; True when it was created."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        # The same job template `prefect work-pool create --type process` would give it.
        client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
        return True


def _schedules(cron: str | None, interval: float | None, timezone: str | None) -> list[Any]:
    schedules: list[Any] = []
    if cron:
        schedules.append(Cron(cron, timezone=timezone) if timezone else Cron(cron))
    if interval:
        schedules.append(Interval(interval))
    return schedules


def deploy_manifest(manifest: str | Path, *, name: str, options: RunOptions = RunOptions(gpu_limit=GPU_LIMIT),
                    work_pool: str = WORK_POOL, cron: str | None = None, interval: float | None = None,
                    timezone: str | None = None, source: Path = REPO_ROOT, create_pool: bool = True) -> UUID:
    """Register (create or update) a deployment of `stylize_manifest` for a process work pool.

    The flow's code is pulled from `source` (a local folder: the repository) by the worker,
    which runs each flow run in a subprocess there. Returns the deployment id.
    """
    if create_pool:
        ensure_work_pool(work_pool)
    if options.gpu_limit:  # visible in the UI under Concurrency before the first run
        ensure_concurrency_limit(options.gpu_limit, options.gpu_slots)
    flow = Flow.from_source(source=str(source), entrypoint=ENTRYPOINT)
    return flow.deploy(name=name, work_pool_name=work_pool,
                       schedules=_schedules(cron, interval, timezone) or None,
                       parameters=flow_parameters(manifest, options),
                       description=f"Stylize every pair of {manifest_parameter(manifest)}",
                       tags=["nst"], build=False, push=False, print_next_steps=False,
                       ignore_warnings=True)


def serve_manifest(manifest: str | Path, *, name: str, options: RunOptions = RunOptions(), cron: str | None = None,
                   interval: float | None = None, timezone: str | None = None) -> None:
    """Serve the flow from this process until interrupted (no work pool, no worker).

    Scheduled and triggered runs start as subprocesses of this one, one at a time: without
    `options.gpu_limit` each run bounds its GPU work with a semaphore of its own, which only
    holds if runs do not overlap. The schedule is paused when serving stops, so nothing piles up.
    """
    if options.gpu_limit:
        ensure_concurrency_limit(options.gpu_limit, options.gpu_slots)
    try:
        stylize_manifest.serve(name=name, schedules=_schedules(cron, interval, timezone) or None,
                               parameters=flow_parameters(manifest, options),
                               description=f"Stylize every pair of {manifest_parameter(manifest)}",
                               tags=["nst"], entrypoint_type=EntrypointType.MODULE_PATH, limit=1)
    finally:
        # Prefect pauses the schedule itself on Ctrl+C, but on SIGTERM (what systemd or a
        # container runtime sends) its pause races the exit and was seen lost (tests/ui).
        _pause(deployment_path(name))


def _pause(deployment_name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(deployment_name)
        except ObjectNotFound:  # stopped before it was registered
            return
        if not deployment.paused:
            client.pause_deployment(deployment.id)
