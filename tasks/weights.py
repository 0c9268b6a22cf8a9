"""VGG-19 weights named by an object URI (s3://...), fetched once to a local file the engine reads.

The engine reads local files only (it never imports boto3). A fetched file is kept under
$NST_WEIGHTS_CACHE (default ~/.cache/nst-pipeline/weights) named after the URI and the object's
version (its ETag on S3), so a changed object is fetched again and an unchanged one costs one
HEAD request.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nst_engine.vgg import is_random_weights
from tasks.manifest import Manifest
from tasks.options import RunOptions
from tasks.stores import is_local, open_storage, split_object
from tasks.stores.base import StorageError

WEIGHTS_CACHE_ENV = "NST_WEIGHTS_CACHE"


def weights_cache_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_CACHE_ENV) or "~/.cache/nst-pipeline/weights").expanduser()


def local_weights(weights: str) -> str:
    """`weights` itself (imagenet, random[:SEED], a local path), or for an object URI the path of a
    local copy, downloaded when missing."""
    if is_local(weights):
        return weights
    root, key = split_object(weights)
    store = open_storage(root)
    try:
        version = store.version(key)
        name = hashlib.sha256(weights.encode()).hexdigest()[:16] + "-" + version.replace("-", "_") + ".pth"
        target = weights_cache_dir() / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download(key, target)
    except StorageError as exc:
        raise StorageError(f"cannot fetch weights {weights}: {exc.detail}", exc.detail) from None
    return str(target)


def weights_problem(weights: str) -> str | None:
    """Why `weights` cannot be used here, with how to fix it; None when they can.

    imagenet: torchvision's cached file (or a download where there is a network); a local file:
    it exists and holds VGG-19's shapes; an object URI: the object exists (its shapes are checked
    when it is fetched).
    """
    from nst_engine.errors import WeightsError  # torch: only when weights are checked
    from nst_engine.vgg import load_weights

    if not is_local(weights):
        root, key = split_object(weights)
        try:
            open_storage(root).version(key)
        except StorageError as exc:
            return (f"weights {weights} cannot be fetched: {exc.detail}; check the URI, the endpoint "
                    "(AWS_ENDPOINT_URL) and the credentials")
        return None
    try:
        load_weights(weights)
    except WeightsError as exc:
        return str(exc)
    return None
def weights_problems(manifest: Manifest) -> list[str]:
    """Why each weights source the manifest's pairs use cannot be used here (empty: all can)."""
    return [problem for weights in sorted({pair.engine.weights for pair in manifest.pairs})
            if (problem := weights_problem(weights))]


def random_weights_warning(manifest_weights: str, options: RunOptions) -> str | None:
    """Why this run's weights are random, or None when they are not: asked for by the manifest,
    asked for by the run (--weights), or a fallback because the manifest's could not be loaded."""
    weights = options.weights or manifest_weights
    if not is_random_weights(weights):
        return None
    if options.weights and options.weights_fallback:
        why = (f"the manifest's weights '{manifest_weights}' could not be loaded here "
               f"({options.weights_fallback}) and the run was told to fall back to '{weights}'")
    elif options.weights:
        why = f"the run asked for them (--weights {weights})"
    else:
        why = f"the manifest asks for them (weights: {weights})"
    return (f"These images were made with RANDOM VGG-19 weights because {why}: they show the pipeline "
            "working, not real style transfer.")
