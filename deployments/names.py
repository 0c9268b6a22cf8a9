"""The names deployments share with the command line and prefect.yaml, importable without
Prefect (whose import costs seconds): `nst --help` and `nst run` read them too."""

from flows.names import FLOW_NAME, deployment_path  # noqa: F401 - the deployments' names in one import

ENTRYPOINT = "flows/stylize_manifest.py:stylize_manifest"  # relative to the repository root (the source)
WORK_POOL = "nst-process"
GPU_LIMIT = "nst-gpu"
SHARD_POOL = "nst-gpu"  # the process work pool GPU workers poll for shard runs (`nst deploy-shards`)
EXAMPLE_CRON = "0 3 * * *"  # every night at 03:00 (UTC unless the schedule names a timezone)
