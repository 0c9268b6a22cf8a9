"""The shard deployment: `stylize_manifest` on a process work pool that GPU workers poll.

    python -m deployments.shards --pool nst-gpu        # once, against the shared Prefect server

creates the pool (process type) if missing and registers `stylize-manifest/nst-shard`. Its
entrypoint is the module path `flows.stylize_manifest.stylize_manifest`, so a worker imports the
flow from the nst-pipeline installed on its machine: no code pull, no shared checkout path.
The sharded parent (flows/sharded.py, `nst run --shards N`) creates one run of it per shard.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence
from uuid import UUID

from prefect.deployments.runner import EntrypointType

from deployments.manifest_deployment import ensure_work_pool
from flows.names import SHARD_DEPLOYMENT_NAME, SHARDED_FLOW_NAME, deployment_path
from flows.stylize_manifest import stylize_manifest

SHARD_POOL = "nst-gpu"


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.shards",
                                     description="register the shard deployment for `nst run --shards N`")
    parser.add_argument("--pool", default=SHARD_POOL, help=f"process work pool, created if missing ({SHARD_POOL})")
    parser.add_argument("--name", default=SHARD_DEPLOYMENT_NAME, help=f"deployment name ({SHARD_DEPLOYMENT_NAME})")
    args = parser.parse_args(argv)
    deployment_id = deploy_shard_flow(args.pool, args.name)
    print(f"deployment {deployment_path(args.name)} ({deployment_id}) on work pool {args.pool}")
    print(f"on each GPU:  CUDA_VISIBLE_DEVICES=<i> prefect worker start --pool {args.pool} --limit 1")
    print(f"then:         nst run manifest.yaml --shards <N> --deployment {deployment_path(args.name)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
