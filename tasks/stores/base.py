"""What every storage backend offers: the `Storage` interface, its one error type, JSON helpers.

Keys are '/'-separated paths relative to the storage root. Writes are whole or nothing (each
backend says how). Backends live one per module (tasks/stores/local.py, tasks/stores/s3.py) and
are found by URI scheme in tasks/stores/__init__.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol


class StorageError(Exception):
    """A storage location could not be read or written; the message names it.

    `detail` is what went wrong without the location (e.g. "404: Not Found"), for callers that
    name the location their own way. `unreachable`: the store itself did not answer (a timeout,
    a refused or dropped connection), so every other request to it would fail the same way.
    """

    def __init__(self, message: str, detail: str | None = None, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.detail = detail or message
        self.unreachable = unreachable


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing or a stat sees it, without its bytes.

    `version` changes whenever the bytes change: the ETag on S3; inode, mtime and ctime (ns)
    for a local file (ctime cannot be set back by `touch` or `cp -p`, so a rewrite that keeps
    the size and mtime still shows). Planning keys what it learned from an object's bytes on
    (version, size) (tasks/plan_index.py).
    """

    key: str  # relative to the storage root
    size: int  # bytes
    version: str


class Storage(Protocol):
    """A place results, caches or inputs live: a local folder or an object-store prefix.

    `uri` names the root as a user would write it (an absolute folder path, `s3://bucket/prefix`).
    """

    uri: str

    def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> None: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with `prefix` (a plain string prefix, as S3 lists: end it
        with '/' for a folder), sorted by key: one paginated listing, no object read."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """The object's size and version without its bytes (a HEAD request on S3)."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The bytes and the version of exactly those bytes (one GET; fstat of the open file)."""
        ...

    def url(self, key: str) -> str: ...

    def version(self, key: str) -> str:
        """A cheap tag that changes when the object's bytes change (ETag, mtime and size)."""
        ...

    def download(self, key: str, target: Path) -> None:
        """Copy the object to a local file, whole (written under a temp name, then renamed)."""
        ...


def check_key(key: str, root: str) -> None:
    """Keys stay inside their root: no absolute keys, no '..' parts."""
    if key.startswith("/") or ".." in key.split("/"):
        raise StorageError(f"key {key!r} escapes the storage root {root}")


def write_json(storage: Storage, key: str, data: object) -> None:
    storage.write(key, json.dumps(data, indent=2, sort_keys=True).encode(), content_type="application/json")


def read_json(storage: Storage, key: str) -> object | None:
    """The parsed JSON under `key`, or None when it is missing or unreadable."""
    try:
        return json.loads(storage.read(key))
    except (StorageError, ValueError):
        return None
