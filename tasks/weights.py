"""VGG-19 weights named by an object URI (s3://...), fetched once to a local file the engine reads.

The engine reads local files only (it never imports boto3). A fetched file is kept under
$NST_WEIGHTS_CACHE (default ~/.cache/nst-pipeline/weights) named after the URI and the object's
version (its ETag on S3), so a changed object is fetched again and an unchanged one costs one
HEAD request. Beside it, `<file>.sha256` records the bytes fetched: a local copy that no longer
hashes to it (or has no record) is fetched again, never reused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

from nst_engine.files import write_atomic
from nst_engine.vgg import is_random_weights
from tasks.manifest import Manifest
from tasks.options import RunOptions
from tasks.stores import is_local, open_storage, split_object
from tasks.stores.base import StorageError

WEIGHTS_CACHE_ENV = "NST_WEIGHTS_CACHE"
log = logging.getLogger(__name__)


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
        target = _local_copy(weights, store.version(key))
        if target.is_file() and not _intact(target):
            log.warning("the local copy %s of weights %s is corrupt (its sha256 is not the one recorded when it "
                        "was fetched); fetching it again", target, weights)
            target.unlink(missing_ok=True)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download(key, target)  # botocore checks the transfer against the stored checksum
            write_atomic(_checksum_file(target), (_sha256_of(target) + "\n").encode())
    except (StorageError, OSError) as exc:
        detail = exc.detail if isinstance(exc, StorageError) else str(exc)
        raise StorageError(f"cannot fetch weights {weights}: {detail}", detail) from None
    return str(target)


def planned_identity(weights: str, *, fetch: bool = True) -> str:
    """The identity a plan records for `weights` (nst_engine.vgg.weights_identity of the file the
    engine will read). `fetch=False` (a dry run, which writes nothing): an object URI is not
    downloaded; its identity is the sha256 recorded beside an intact local copy of the current
    version, or, with none, a placeholder naming the version (its pairs then plan as to do)."""
    from nst_engine.vgg import weights_identity  # torch: only when a plan is made

    if fetch or is_local(weights):
        return weights_identity(local_weights(weights))
    root, key = split_object(weights)
    try:
        version = open_storage(root).version(key)
    except StorageError as exc:
        raise StorageError(f"cannot check weights {weights}: {exc.detail}", exc.detail) from None
    target = _local_copy(weights, version)
    if target.is_file() and _intact(target):
        return "sha256:" + _checksum_file(target).read_text().strip()
    return f"not fetched: {weights} version {version}"


def _local_copy(weights: str, version: str) -> Path:
    name = hashlib.sha256(weights.encode()).hexdigest()[:16] + "-" + version.replace("-", "_") + ".pth"
    return weights_cache_dir() / name


def _checksum_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _intact(target: Path) -> bool:
    """The local copy still hashes to what it hashed to when fetched (a disk error, a partial
    copy by hand, another tool writing there: all would otherwise be reused forever)."""
    try:
        return _checksum_file(target).read_text().strip() == _sha256_of(target)
    except OSError:  # no record (fetched before records were kept): fetch again once
        return False


def _sha256_of(path: Path) -> str:
    stat = path.stat()  # hashed once per process while the file is unchanged (weights are ~550 MB)
    return _cached_sha256(str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _cached_sha256(path: str, _inode: int, _mtime: int, _size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            target = _local_copy(weights, open_storage(root).version(key))
        except StorageError as exc:
            return (f"weights {weights} cannot be fetched: {exc.detail}; check the URI, the endpoint "
                    "(AWS_ENDPOINT_URL) and the credentials")
        if target.is_file() and not _intact(target):  # said here, left alone; the run fetches it again
            log.warning("the local copy %s of weights %s is corrupt; the run will fetch it again", target, weights)
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
