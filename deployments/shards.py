"""The shard deployment: `stylize_manifest` on a process work pool that GPU workers poll.

    nst deploy-shards --pool nst-gpu        # once, against the shared Prefect server

creates the pool (process type) if missing and registers `stylize-manifest/nst-shard`. Its
entrypoint is the module path `flows.stylize_manifest.stylize_manifest`, so a worker imports the
flow from the nst-pipeline installed on its machine: no code pull, no shared checkout path.
The sharded parent (flows/sharded.py, `nst run --shards N`) creates one run of it per shard.
"""

from __future__ import annotations

from uuid import UUID

from prefect.deployments.runner import EntrypointType

from deployments.manifest_deployment import ensure_work_pool
from deployments.names import SHARD_POOL
from flows.names import SHARD_DEPLOYMENT_NAME, SHARDED_FLOW_NAME
from flows.stylize_manifest import stylize_manifest

def deploy_shard_flow(work_pool: str = SHARD_POOL, name: str = SHARD_DEPLOYMENT_NAME,
                      create_pool: bool = True) -> UUID:
    """Register (create or update) the shard deployment on `work_pool`; returns its id.

    No schedule and no default manifest: the parent passes every parameter per run.
    """
    if create_pool:
        ensure_work_pool(work_pool)
    return stylize_manifest.deploy(
        name=name, work_pool_name=work_pool, entrypoint_type=EntrypointType.MODULE_PATH,
        description="One shard ('i/n') of a sharded manifest run; started by " + SHARDED_FLOW_NAME,
        tags=["nst", "nst-shard"], build=False, push=False, print_next_steps=False, ignore_warnings=True)
