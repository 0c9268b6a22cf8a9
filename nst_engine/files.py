"""Whole-or-nothing file writes, for every layer that writes files (the engine's images and
style targets, the local storage backend)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, then rename it into place: readers see all or nothing.

    The temp file is created with mode 0o666 less the umask, like any file a program makes
    (mkstemp's 0o600 survived the rename: a gallery meant to be served could not be read).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusive temp file beside `path`; the kernel applies the umask to its mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:  # a 64-bit random name collides only with a leftover of the same name
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
