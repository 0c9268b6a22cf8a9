"""Persistent store of style Gram matrices, shared by runs and workers.

Each entry is sha256(payload) + payload; an entry whose checksum does not match is treated as
missing (and recomputed by the caller), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

from nst_engine import ENGINE_VERSION, EngineConfig, StyleTargets
from nst_engine.errors import EngineError
from tasks.stores import Storage, StorageError, open_storage

log = logging.getLogger(__name__)

CACHE_ENV = "NST_CACHE"
DEFAULT_CACHE = Path("~/.cache/nst-pipeline")


def cache_location(manifest_cache: str | None) -> str:
    """The manifest's `cache:`, else $NST_CACHE, else ~/.cache/nst-pipeline."""
    return manifest_cache or os.environ.get(CACHE_ENV) or str(DEFAULT_CACHE.expanduser())


def style_cache_key(style_sha256s: Sequence[str], blend: Sequence[float], side: int, layers: Sequence[str],
                    pooling: str, weights_identity: str, matched_to: str | None = None,
                    statistic: str = "gram") -> str:
    """The one definition of a style target's identity (docs/design.md: caching style targets).

    `matched_to` is the content's sha256 when the style's colours were matched to it;
    `statistic` names the style statistic (nst_engine.statistics), so entries never mix.
    """
    total = float(sum(blend))
    data = {
        "styles": list(style_sha256s), "blend": [round(w / total, 6) for w in blend], "side": side,
        "layers": list(layers), "pooling": pooling, "weights": weights_identity, "engine": ENGINE_VERSION,
        "matched_to": matched_to, "statistic": statistic,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def style_key(config: EngineConfig, style_sha256s: Sequence[str], blend: Sequence[float], side: int,
              weights_identity: str, matched_to: str | None = None) -> str:
    """The cache key of one pair's style target at one size, from the pair's engine settings."""
    return style_cache_key(style_sha256s, blend, side, config.style_layers, config.pooling, weights_identity,
                           matched_to, statistic=config.style_statistic)


class StyleCache:
    """The persistent store of style targets (Gram matrices) under one storage root, shared by
    runs and workers: `style-targets/<k[:2]>/<k>.pt`, each entry checksummed and checked on read."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def at(cls, uri: str) -> "StyleCache":
        return cls(open_storage(uri))

    @staticmethod
    def _key(key: str) -> str:
        return f"style-targets/{key[:2]}/{key}.pt"

    def has(self, key: str) -> bool:
        return self.storage.exists(self._key(key))

    def get(self, key: str) -> StyleTargets | None:
        """The verified entry, or None when missing or corrupt."""
        try:
            blob = self.storage.read(self._key(key))
        except StorageError:
            return None
        digest, payload = blob[:32], blob[32:]
        if hashlib.sha256(payload).digest() != digest:
            log.warning("style cache entry %s is corrupt (checksum mismatch); recomputing", key)
            return None
        try:
            targets = StyleTargets.from_bytes(payload)
        except EngineError as exc:
            log.warning("style cache entry %s is unreadable (%s); recomputing", key, exc)
            return None
        if targets.meta.get("key") != key:
            log.warning("style cache entry %s holds another key; recomputing", key)
            return None
        return targets

    def put(self, key: str, targets: StyleTargets) -> None:
        payload = StyleTargets(targets.grams, {**targets.meta, "key": key}, targets.statistic).to_bytes()
        self.storage.write(self._key(key), hashlib.sha256(payload).digest() + payload,
                           content_type="application/octet-stream")
