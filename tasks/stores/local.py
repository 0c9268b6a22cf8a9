"""The local-folder backend. Writes go to a temp file that is renamed into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

from nst_engine.files import write_atomic
from tasks.stores.base import StorageError, check_key


class LocalStorage:
    """A folder on disk (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        check_key(key, str(self.root))
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

    def version(self, key: str) -> str:
        try:
            stat = self._path(key).stat()
        except OSError as exc:
            raise StorageError(f"cannot stat {self._path(key)}: {exc.strerror or exc}") from None
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def download(self, key: str, target: Path) -> None:
        temp = target.with_name(f".{target.name}.part")
        try:
            shutil.copyfile(self._path(key), temp)
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot copy {self._path(key)} to {target}: {exc.strerror or exc}") from None
