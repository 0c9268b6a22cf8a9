"""VGG-19 weights named by an s3:// URI, fetched once to a local file the engine can read.

The engine reads local files only (it never imports boto3). A fetched file is kept under
$NST_WEIGHTS_CACHE (default ~/.cache/nst-pipeline/weights) named after the URI and the object's
ETag, so a changed object is fetched again and an unchanged one costs one HEAD request.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from tasks.storage import StorageError

WEIGHTS_CACHE_ENV = "NST_WEIGHTS_CACHE"


def weights_cache_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_CACHE_ENV) or "~/.cache/nst-pipeline/weights").expanduser()


def local_weights(weights: str) -> str:
    """`weights` itself, or for an s3:// URI the path of a local copy (downloaded when missing)."""
    if not weights.startswith("s3://"):
        return weights
    from tasks.s3 import S3Settings, describe_error, s3_client, split_uri

    settings = S3Settings.from_env()
    client = s3_client(settings)
    bucket, key = split_uri(weights)
    try:
        etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    except Exception as exc:  # noqa: BLE001 - botocore raises many types
        raise StorageError(f"cannot fetch weights {weights}: {describe_error(exc)}") from None
    name = hashlib.sha256(weights.encode()).hexdigest()[:16] + "-" + etag.replace("-", "_") + ".pth"
    target = weights_cache_dir() / name
    if target.is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-", suffix=".pth")
    os.close(handle)
    try:
        # The transfer manager fetches big files in ranged parts; checksums are verified.
        client.download_file(bucket, key, temp, ExtraArgs={"ChecksumMode": "ENABLED"},
                             Config=settings.transfer_config())
        os.replace(temp, target)  # whole or absent: concurrent fetches of one file are harmless
    except Exception as exc:  # noqa: BLE001
        Path(temp).unlink(missing_ok=True)
        raise StorageError(f"cannot fetch weights {weights}: {describe_error(exc)}") from None
    return str(target)
