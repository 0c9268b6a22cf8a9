"""The local-folder backend. Writes go to a temp file that is renamed into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO, Mapping

from nst_engine.files import write_atomic
from tasks.stores.base import ObjectInfo, StorageError, check_key


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    # An atomic rename (how every writer here replaces a file) gives a new inode; ctime catches
    # an in-place rewrite whose mtime was set back (cp -p, touch -d).
    return ObjectInfo(key, stat.st_size, f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_ctime_ns}")


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

    def _open(self, key: str) -> BinaryIO:
        """The file under `key`, opened for reading only when it is a regular file: a FIFO in its
        place (a hostile cache entry) would block the read forever, a device would never end."""
        path = self._path(key)
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        if not S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError("not a regular file (a FIFO, device or socket in its place); remove it")
        return os.fdopen(fd, "rb")

    def read(self, key: str) -> bytes:
        try:
            with self._open(key) as file:
                return file.read()
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from None

    def _writable(self, key: str) -> Path:
        """The path `key` is written at, refused when a symlink on the way (results/ -> /etc, a
        file linked elsewhere) would take the write out of the root."""
        path = self._path(key)
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"cannot write {path}: it leads out of {self.root} through a symbolic link "
                               f"(to {path.resolve()}); remove the link", "a symbolic link leads out of the folder")
        return path

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> None:
        path = self._writable(key)
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {self._path(key)}: {exc.strerror or exc}") from None

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        folder = self._path(prefix.rpartition("/")[0]) if "/" in prefix else self.root
        found = []
        for path in (folder.rglob("*") if folder.is_dir() else ()):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                try:
                    stat = path.stat()
                except OSError:  # removed while listing
                    continue
                if os.path.isfile(path):
                    found.append(_info(key, stat))
        return sorted(found, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo:
        try:
            return _info(key, self._path(key).stat())
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from None

    def read_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        try:
            with self._open(key) as file:  # fstat and read the same inode
                return file.read(), _info(key, os.fstat(file.fileno()))
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from None

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def version(self, key: str) -> str:
        return self.stat(key).version

    def download(self, key: str, target: Path) -> None:
        temp = target.with_name(f".{target.name}.part")
        try:
            shutil.copyfile(self._path(key), temp)
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot copy {self._path(key)} to {target}: {exc.strerror or exc}") from None
