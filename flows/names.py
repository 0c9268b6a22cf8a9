"""The flows' names, spelled once: importable without Prefect (whose import costs seconds), so
the command line and the deployments name them without loading the flows."""

FLOW_NAME = "stylize-manifest"
SHARDED_FLOW_NAME = "stylize-manifest-sharded"
SHARD_DEPLOYMENT_NAME = "nst-shard"


def deployment_path(name: str) -> str:
    """A deployment of the manifest flow as Prefect names it: "stylize-manifest/<name>"."""
    return f"{FLOW_NAME}/{name}"


SHARD_DEPLOYMENT = deployment_path(SHARD_DEPLOYMENT_NAME)  # what `nst run --shards` runs
