from pathlib import Path

import pytest
import torch

from nst_engine import StyleTargets
from tasks.stores import StorageError, open_storage, read_json, write_json
from tasks.stores.local import LocalStorage
from tasks.style_cache import StyleCache, cache_location, style_cache_key


def test_local_storage_round_trip_and_atomic_layout(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "out"))
    storage.write("results/a--b.png", b"png")
    write_json(storage, "run.json", {"x": 1})
    assert storage.exists("results/a--b.png") and not storage.exists("results/zz.png")
    assert storage.read("results/a--b.png") == b"png" and read_json(storage, "run.json") == {"x": 1}
    assert storage.list() == ["results/a--b.png", "run.json"]
    assert read_json(storage, "missing.json") is None
    with pytest.raises(StorageError, match="escapes"):
        storage.write("../evil", b"")
    with pytest.raises(StorageError, match="cannot read"):
        storage.read("nope")


def test_cache_key_changes_with_everything_that_changes_the_grams() -> None:
    base = dict(style_sha256s=["aa"], blend=[1.0], side=256, layers=["relu1_1"], pooling="max",
                weights_identity="random:0")
    key = style_cache_key(**base)  # type: ignore[arg-type]
    assert key == style_cache_key(**{**base, "blend": [2.0]})  # type: ignore[arg-type]  # normalised
    for change in ({"style_sha256s": ["bb"]}, {"side": 128}, {"layers": ["relu2_1"]}, {"pooling": "avg"},
                   {"weights_identity": "random:1"}):
        assert style_cache_key(**{**base, **change}) != key  # type: ignore[arg-type]
    assert style_cache_key(**base, matched_to="cc") != key  # type: ignore[arg-type]


def test_corrupt_cache_entries_are_never_trusted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = StyleCache(LocalStorage(tmp_path))
    targets = StyleTargets({"relu1_1": torch.rand(4, 4)})
    cache.put("k1", targets)
    assert torch.equal(cache.get("k1").grams["relu1_1"], targets.grams["relu1_1"])  # type: ignore[union-attr]
    entry = next(tmp_path.rglob("k1.pt"))
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cache.get("k1") is None and "checksum mismatch" in caplog.text
    cache.put("k1", targets)  # a valid entry, copied under another key
    cache.storage.write(StyleCache._key("k2"), cache.storage.read(StyleCache._key("k1")))
    assert cache.get("k2") is None and "another key" in caplog.text


def test_cache_location_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NST_CACHE", "/env/cache")
    assert cache_location("/manifest/cache") == "/manifest/cache"
    assert cache_location(None) == "/env/cache"
    monkeypatch.delenv("NST_CACHE")
    assert cache_location(None).endswith(".cache/nst-pipeline")
