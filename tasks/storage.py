"""Where results and caches live: a small interface with a local-folder backend.

Keys are '/'-separated paths relative to the storage root. Writes are whole or nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Protocol

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
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"key {key!r} escapes the storage root {self.root}")
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


def open_storage(uri: str) -> Storage:
    """A storage for a local folder (s3:// is not supported yet)."""
    if uri.startswith("s3://"):
        raise StorageError(f"{uri}: s3:// storage is not available in this version; use a local folder")
    return LocalStorage(uri)


def read_uri(uri: str) -> bytes:
    """The bytes of one input (an absolute local path; s3:// later)."""
    if uri.startswith("s3://"):
        raise StorageError(f"{uri}: s3:// inputs are not available in this version")
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
