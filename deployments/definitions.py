"""Deployments of the `stylize_manifest` flow: a work-pool deployment and a served one.

`deployments/prefect.yaml` declares the same nightly deployment for `prefect deploy`; the
names and the example schedule below are the ones it uses (tests/ui checks they agree).
Both need a Prefect server (`prefect server start`, then PREFECT_API_URL pointing at it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

REPO_ROOT = Path(__file__).resolve().parents[1]
FLOW_NAME = "stylize-manifest"
ENTRYPOINT = "flows/stylize_manifest.py:stylize_manifest"  # relative to REPO_ROOT (the source)
MODULE_ENTRYPOINT = "flows.stylize_manifest.stylize_manifest"  # for `serve`: importable anywhere
WORK_POOL = "nst-process"
GPU_LIMIT = "nst-gpu"
EXAMPLE_CRON = "0 3 * * *"  # every night at 03:00 (UTC unless the schedule names a timezone)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def manifest_parameter(manifest: str | Path) -> str:
    """The manifest URI as a run will see it: local paths made absolute, since a worker or a
    served run does not start in the caller's folder; URIs (s3://...) are kept as they are."""
    text = str(manifest)
    if _URI_SCHEME.match(text):
        return text
    return str(Path(text).expanduser().resolve())


def flow_parameters(manifest: str | Path, *, gpu_limit: str | None = GPU_LIMIT, gpu_slots: int = 1,
                    **extra: Any) -> dict[str, Any]:
    """Default parameters of a deployment: the manifest, the GPU limit and its slots, and any
    other `stylize_manifest` parameter (batch_size, weights, ...) that is not None."""
    params: dict[str, Any] = {"manifest_uri": manifest_parameter(manifest), "gpu_slots": gpu_slots}
    if gpu_limit:
        params["gpu_limit"] = gpu_limit
    params.update({key: value for key, value in extra.items() if value is not None})
    return params


def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create a process work pool called `name` unless one exists; True when it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

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


def ensure_gpu_limit(name: str = GPU_LIMIT, slots: int = 1) -> None:
    """Create or resize the global concurrency limit that engine work holds (slots = GPUs).

    The flow upserts it too (parameter gpu_limit); doing it here makes it visible in the UI
    under Concurrency before the first run.
    """
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


def _schedules(cron: str | None, interval: float | None, timezone: str | None) -> list[Any]:
    from prefect.schedules import Cron, Interval

    schedules: list[Any] = []
    if cron:
        schedules.append(Cron(cron, timezone=timezone) if timezone else Cron(cron))
    if interval:
        schedules.append(Interval(interval))
    return schedules


def deploy_manifest(manifest: str | Path, *, name: str, work_pool: str = WORK_POOL, cron: str | None = None,
                    interval: float | None = None, timezone: str | None = None,
                    gpu_limit: str | None = GPU_LIMIT, gpu_slots: int = 1, source: Path = REPO_ROOT,
                    create_pool: bool = True, **extra: Any) -> UUID:
    """Register (create or update) a deployment of `stylize_manifest` for a process work pool.

    The flow's code is pulled from `source` (a local folder: the repository) by the worker,
    which runs each flow run in a subprocess there. Returns the deployment id.
    """
    from prefect import Flow

    if create_pool:
        ensure_work_pool(work_pool)
    if gpu_limit:
        ensure_gpu_limit(gpu_limit, gpu_slots)
    flow = Flow.from_source(source=str(source), entrypoint=ENTRYPOINT)
    return flow.deploy(name=name, work_pool_name=work_pool,
                       schedules=_schedules(cron, interval, timezone) or None,
                       parameters=flow_parameters(manifest, gpu_limit=gpu_limit, gpu_slots=gpu_slots, **extra),
                       description=f"Stylize every pair of {manifest_parameter(manifest)}",
                       tags=["nst"], build=False, push=False, print_next_steps=False,
                       ignore_warnings=True)


def serve_manifest(manifest: str | Path, *, name: str, cron: str | None = None, interval: float | None = None,
                   timezone: str | None = None, gpu_limit: str | None = None, gpu_slots: int = 1,
                   **extra: Any) -> None:
    """Serve the flow from this process until interrupted (no work pool, no worker).

    Scheduled and triggered runs start as subprocesses of this one, one at a time: without
    `gpu_limit` each run bounds its GPU work with a semaphore of its own, which only holds if
    runs do not overlap. The schedule is paused when serving stops, so nothing piles up.
    """
    from prefect.deployments.runner import EntrypointType

    from flows.stylize_manifest import stylize_manifest

    if gpu_limit:
        ensure_gpu_limit(gpu_limit, gpu_slots)
    try:
        stylize_manifest.serve(name=name, schedules=_schedules(cron, interval, timezone) or None,
                               parameters=flow_parameters(manifest, gpu_limit=gpu_limit, gpu_slots=gpu_slots,
                                                          **extra),
                               description=f"Stylize every pair of {manifest_parameter(manifest)}",
                               tags=["nst"], entrypoint_type=EntrypointType.MODULE_PATH, limit=1)
    finally:
        # Prefect pauses the schedule itself on Ctrl+C, but on SIGTERM (what systemd or a
        # container runtime sends) its pause races the exit and was seen lost (tests/ui).
        _pause(f"{FLOW_NAME}/{name}")


def _pause(deployment_name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(deployment_name)
        except ObjectNotFound:  # stopped before it was registered
            return
        if not deployment.paused:
            client.pause_deployment(deployment.id)
