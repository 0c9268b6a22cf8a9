"""The S3 backend, and the one place boto3 is set up: settings from the environment, a shared
client, error messages, and `S3Storage` (`s3://bucket/prefix`).

Credentials come from boto3's standard chain (environment, shared profile, instance/task
role); nothing here reads, stores or prints them. S3-compatible stores: set AWS_ENDPOINT_URL
(or NST_S3_ENDPOINT_URL) and, where virtual-host names do not resolve, NST_S3_ADDRESSING_STYLE=path.
"""

from __future__ import annotations

import functools
import io
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from tasks.stores.base import ObjectInfo, StorageError, check_key

SCHEME = "s3://"
# 'a//b' is a legal, distinct key on AWS, but SeaweedFS (and other filer-backed stores) store it
# as 'a/b' while a listing of the prefix 'a//b' finds nothing: a rerun would not see its own
# results. Every key and prefix here is written with single slashes instead.
_SLASHES = re.compile(r"/{2,}")

MIB = 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
# A store that did not answer a request (after that request's retries) is not asked again for
# this long, in this process: a frozen store then costs one request's retries (up to
# max_attempts x read_timeout), not that much per pair and per report.
UNREACHABLE_SECONDS = 120.0
_unreachable: dict[tuple[str | None, str], tuple[float, str]] = {}  # (endpoint, bucket) -> (since, why)


class S3ConfigError(StorageError):
    """An NST_S3_* setting has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class S3Settings:
    """Client settings, read from the environment so workers and deployments inherit them."""

    endpoint_url: str | None = None  # None: boto3's own AWS_ENDPOINT_URL(_S3) or AWS itself
    region: str | None = None  # None: boto3's chain (AWS_REGION, profile), else us-east-1
    addressing_style: str = "auto"  # path | virtual | auto
    max_attempts: int = 5  # total attempts per request, first one included (botocore standard mode)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    presign_seconds: int = 24 * 3600  # lifetime of links in run reports and artifacts
    multipart_threshold: int = 16 * MIB  # larger uploads go in parts (boto3's transfer manager)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "S3Settings":
        env = os.environ if env is None else env

        def number(name: str, kind: type, default: Any, low: float, high: float | None = None) -> Any:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise S3ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
            if value < low or (high is not None and value > high):
                raise S3ConfigError(f"{name}={raw!r} must be between {low} and {high}" if high is not None
                                    else f"{name}={raw!r} must be at least {low}")
            return value

        style = env.get("NST_S3_ADDRESSING_STYLE", "auto") or "auto"
        if style not in ("auto", "path", "virtual"):
            raise S3ConfigError(f"NST_S3_ADDRESSING_STYLE={style!r}: use path, virtual or auto")
        return cls(endpoint_url=env.get("NST_S3_ENDPOINT_URL") or None,
                   region=env.get("NST_S3_REGION") or None,
                   addressing_style=style,
                   max_attempts=number("NST_S3_MAX_ATTEMPTS", int, cls.max_attempts, 1, 20),
                   connect_timeout=number("NST_S3_CONNECT_TIMEOUT", float, cls.connect_timeout, 0.1),
                   read_timeout=number("NST_S3_READ_TIMEOUT", float, cls.read_timeout, 0.1),
                   presign_seconds=number("NST_S3_PRESIGN_SECONDS", int, cls.presign_seconds, 1,
                                          MAX_PRESIGN_SECONDS),
                   multipart_threshold=number("NST_S3_MULTIPART_MB", int, cls.multipart_threshold // MIB, 5) * MIB)

    def botocore_config(self) -> Config:
        return Config(
            signature_version="s3v4",
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            s3={"addressing_style": self.addressing_style},
            # Checksums on every upload that supports one, and verified on download.
            request_checksum_calculation="when_supported",
            response_checksum_validation="when_supported",
        )

    def transfer_config(self) -> TransferConfig:
        # Transfers run inside a task that already owns its thread; s3transfer's own pool would
        # only add threads on 2-core machines. Parts are 8 MiB unless the object is huge.
        return TransferConfig(multipart_threshold=self.multipart_threshold, multipart_chunksize=8 * MIB,
                              use_threads=False)


_client_lock = threading.Lock()


def forget_unreachable() -> None:
    """Ask every store again (a new run: a store down in the last one may be back)."""
    _unreachable.clear()


@functools.lru_cache(maxsize=8)
def _client(settings: S3Settings) -> Any:
    # A Session per client: boto3 sessions are not thread-safe, clients are.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region or
                          session.region_name or "us-east-1", config=settings.botocore_config())


def s3_client(settings: S3Settings | None = None) -> Any:
    """A boto3 S3 client for `settings` (default: from the environment), shared in this process."""
    with _client_lock:
        return _client(settings or S3Settings.from_env())


def split_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b')."""
    if not uri.startswith(SCHEME):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(SCHEME):].partition("/")
    return bucket, key


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def describe_error(exc: BaseException) -> str:
    """What went wrong, for a person: the S3 error code and message, or the connection problem.

    botocore's messages carry the endpoint, operation and attempt count, never credentials.
    """
    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or run with an instance/task role")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        code = error.get("Code", "error")
        message = error.get("Message") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        return f"{code}: {message} (after {attempts + 1} attempt{'s' if attempts else ''})"
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


class S3Storage:
    """`s3://bucket/prefix`. Retries, timeouts and checksums come from `S3Settings`."""

    def __init__(self, uri: str, client: Any = None, settings: S3Settings | None = None) -> None:
        self.bucket, prefix = split_uri(uri)
        prefix = _SLASHES.sub("/", prefix).strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.settings = settings or S3Settings.from_env()
        self.client = client or s3_client(self.settings)

    def _key(self, key: str) -> str:
        check_key(key, self.uri)
        return self.prefix + _SLASHES.sub("/", key)

    def _info(self, full_key: str, size: int, etag: str) -> ObjectInfo:
        return ObjectInfo(full_key[len(self.prefix):], int(size), str(etag).strip('"'))

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        detail = describe_error(exc)
        no_answer = isinstance(exc, (BotoConnectionError, HTTPClientError))  # timeouts, refused, dropped
        if no_answer:
            _unreachable[self._store] = (time.monotonic(), detail)
        return StorageError(f"cannot {action} s3://{self.bucket}/{self._key(key)}: {detail}", detail,
                            unreachable=no_answer)

    @property
    def _store(self) -> tuple[str | None, str]:
        return self.settings.endpoint_url, self.bucket

    def _gate(self, action: str, key: str) -> None:
        """Refuse at once while the store is known not to answer (see UNREACHABLE_SECONDS)."""
        since, why = _unreachable.get(self._store, (None, ""))
        if since is None:
            return
        ago = time.monotonic() - since
        if ago >= UNREACHABLE_SECONDS:
            _unreachable.pop(self._store, None)
            return
        detail = f"the store did not answer a request {ago:.0f} s ago ({why}); not asked again for {UNREACHABLE_SECONDS:g} s"
        raise StorageError(f"cannot {action} s3://{self.bucket}/{self._key(key)}: {detail}", detail, unreachable=True)

    def exists(self, key: str) -> bool:
        self._gate("check", key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; all become StorageError
            if is_not_found(exc):
                return False
            raise self._fail("check", key, exc) from None

    def read(self, key: str) -> bytes:
        self._gate("read", key)
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
        self._gate("write", key)
        try:
            # The transfer manager sends one PUT below the threshold and a multipart upload above
            # it; either way the object appears under its key only once it is complete.
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), ExtraArgs=extra,
                                       Config=self.settings.transfer_config())
        except Exception as exc:  # noqa: BLE001
            raise self._fail("write", key, exc) from None

    def list(self, prefix: str = "") -> list[str]:
        return [info.key for info in self.list_objects(prefix)]

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """One ListObjectsV2 call per 1,000 keys (the paginator follows the continuation tokens)."""
        found = []
        self._gate("list", prefix or "(root)")
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix) if prefix else self.prefix)
            for page in pages:
                found += [self._info(item["Key"], item["Size"], item["ETag"]) for item in page.get("Contents", [])
                          if item["Key"].startswith(self.prefix)]
        except Exception as exc:  # noqa: BLE001
            raise self._fail("list", prefix or "(root)", exc) from None
        return sorted(found, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo:
        """One HEAD request; a missing object reads as 'cannot read ...: 404 ...'."""
        self._gate("read", key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from None
        return self._info(self._key(key), head["ContentLength"], head["ETag"])

    def read_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        self._gate("read", key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
            data = response["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from None
        return data, self._info(self._key(key), len(data), response["ETag"])

    def url(self, key: str) -> str:
        """A presigned GET link (NST_S3_PRESIGN_SECONDS); the bucket can stay private."""
        try:  # signed here, no request: nothing to gate
            return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                      ExpiresIn=self.settings.presign_seconds)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("sign a link to", key, exc) from None

    def version(self, key: str) -> str:
        """The object's ETag: one HEAD request."""
        self._gate("check", key)
        try:
            return str(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ETag"]).strip('"')
        except Exception as exc:  # noqa: BLE001
            raise self._fail("check", key, exc) from None

    def download(self, key: str, target: Path) -> None:
        """Fetch to `target` in ranged parts (the transfer manager), checksums verified."""
        self._gate("fetch", key)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-", suffix=target.suffix)
        os.close(handle)
        try:
            self.client.download_file(self.bucket, self._key(key), temp, ExtraArgs={"ChecksumMode": "ENABLED"},
                                      Config=self.settings.transfer_config())
            os.replace(temp, target)  # whole or absent: concurrent fetches of one file are harmless
        except Exception as exc:  # noqa: BLE001
            Path(temp).unlink(missing_ok=True)
            raise self._fail("fetch", key, exc) from None
