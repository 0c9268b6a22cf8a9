"""Issue 22 #11, #15 and friends: hostile cache files and bad local copies end in bounded time
with a clear reason."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from tasks.plan_index import MAX_INDEX_BYTES, PlanIndex, index_key
from tasks.stores import StorageError
from tasks.stores.local import LocalStorage


def test_a_gzip_bomb_plan_index_is_ignored_not_inflated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = index_key("/some/output")
    bomb = gzip.compress(b"[" + b" " * (MAX_INDEX_BYTES + 10) + b"]", compresslevel=9)
    assert len(bomb) < MAX_INDEX_BYTES // 500
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(bomb)
    index = PlanIndex.open(str(tmp_path), "/some/output")
    assert index.inputs == {} and "inflates past 64 MiB" in caplog.text


def test_a_fifo_in_place_of_a_cache_entry_is_refused_at_once(tmp_path: Path) -> None:
    from tasks.style_cache import StyleCache

    storage = LocalStorage(tmp_path)
    (tmp_path / "style-targets" / "ab").mkdir(parents=True)
    os.mkfifo(tmp_path / "style-targets" / "ab" / "abcd.pt")
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(StyleCache(storage).get("abcd")), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive() and result == [None]  # missing, so recomputed; never a hang
    with pytest.raises(StorageError, match="not a regular file"):
        storage.read("style-targets/ab/abcd.pt")
