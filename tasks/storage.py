"""Where results, inputs and caches live: a small interface, a local-folder and an S3 backend.

Keys are '/'-separated paths relative to the storage root. Writes are whole or nothing: a temp
file renamed into place locally; one PUT, or a multipart upload that is completed, on S3.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Protocol

from nst_engine.images import write_atomic


class StorageError(Exception):
    """A storage location could not be read or written; the message names it."""


class Storage(Protocol):
    uri: str

    def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> None: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def url(self, key: str) -> str: ...


class LocalStorage:
    """A folder on disk. Writes go to a temp file that is renamed into place."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        _check_key(key, str(self.root))
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from None

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> None:
        try:
            write_atomic(self._path(key), data)
        except OSError as exc:
            raise StorageError(f"cannot write {self._path(key)}: {exc.strerror or exc}") from None

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


def _check_key(key: str, root: str) -> None:
    if key.startswith("/") or ".." in key.split("/"):
        raise StorageError(f"key {key!r} escapes the storage root {root}")


class S3Storage:
    """`s3://bucket/prefix`. Retries, timeouts and checksums come from tasks.s3's client settings."""

    def __init__(self, uri: str, client: Any = None, settings: Any = None) -> None:
        from tasks.s3 import S3Settings, s3_client, split_uri

        self.bucket, prefix = split_uri(uri)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.settings = settings or S3Settings.from_env()
        self.client = client or s3_client(self.settings)

    def _key(self, key: str) -> str:
        _check_key(key, self.uri)
        return self.prefix + key

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        from tasks.s3 import describe_error

        return StorageError(f"cannot {action} s3://{self.bucket}/{self._key(key)}: {describe_error(exc)}")

    def exists(self, key: str) -> bool:
        from tasks.s3 import is_not_found

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; all become StorageError
            if is_not_found(exc):
                return False
            raise self._fail("check", key, exc) from None

    def read(self, key: str) -> bytes:
        try:
            # ChecksumMode: botocore verifies the body against the checksum stored at upload.
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
            return response["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from None

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> None:
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256", "Metadata": dict(metadata or {})}
        if content_type:
            extra["ContentType"] = content_type
        try:
            # The transfer manager sends one PUT below the threshold and a multipart upload above
            # it; either way the object appears under its key only once it is complete.
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), ExtraArgs=extra,
                                       Config=self.settings.transfer_config())
        except Exception as exc:  # noqa: BLE001
            raise self._fail("write", key, exc) from None

    def list(self, prefix: str = "") -> list[str]:
        keys = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                           Prefix=self._key(prefix) if prefix else self.prefix)
            for page in pages:
                keys += [item["Key"][len(self.prefix):] for item in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001
            raise self._fail("list", prefix or "(root)", exc) from None
        return sorted(keys)

    def url(self, key: str) -> str:
        """A presigned GET link (NST_S3_PRESIGN_SECONDS); the bucket can stay private."""
        try:
            return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                      ExpiresIn=self.settings.presign_seconds)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("sign a link to", key, exc) from None


def open_storage(uri: str) -> Storage:
    """The storage for a local folder or an `s3://bucket/prefix` URI."""
    if uri.startswith("s3://"):
        return S3Storage(uri)
    return LocalStorage(uri)


def read_uri(uri: str) -> bytes:
    """The bytes of one input: an absolute local path or an `s3://bucket/key` object."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://"):].partition("/")
        return S3Storage(f"s3://{bucket}").read(key)
    try:
        return Path(uri).read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {uri}: {exc.strerror or exc}") from None


def write_json(storage: Storage, key: str, data: object) -> None:
    storage.write(key, json.dumps(data, indent=2, sort_keys=True).encode(), content_type="application/json")


def read_json(storage: Storage, key: str) -> object | None:
    """The parsed JSON under `key`, or None when it is missing or unreadable."""
    try:
        return json.loads(storage.read(key))
    except (StorageError, ValueError):
        return None
