"""Two processes computing the same style target at once end with one valid cache entry.

The cache's answer to concurrent first computations is "idempotent whole writes": each writer
replaces the entry atomically (temp file + rename here, one PUT on S3) with the same bytes, so
the last one wins and a reader never sees a torn entry.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from pathlib import Path
from typing import Any

from nst_engine import EngineConfig
from nst_engine.vgg import weights_identity
from tasks.plan import StyleJob
from tasks.style_cache import StyleCache, style_cache_key
from tests.conftest import make_image

EXTRA_WRITES = 25


def _race(job: StyleJob, cache_dir: str, barrier: Any, results: Any) -> None:
    """One worker: wait for the other, compute the style (both find the cache empty), then keep
    rewriting the entry to widen the window in which the two writers overlap."""
    from tasks.engine_work import compute_style_target

    cache = StyleCache.at(cache_dir)
    barrier.wait(timeout=120)
    computed = compute_style_target(job, cache, "cpu")
    targets = cache.get(job.key)
    assert targets is not None
    for _ in range(EXTRA_WRITES):
        cache.put(job.key, targets)
    results.put((computed, hashlib.sha256(targets.to_bytes()).hexdigest()))


def _entry_is_whole(path: Path) -> bool:
    """The stored layout: sha256(payload) then payload."""
    blob = path.read_bytes()
    return hashlib.sha256(blob[32:]).digest() == blob[:32]


def test_two_processes_computing_one_style_leave_one_valid_entry(tmp_path: Path) -> None:
    style = tmp_path / "style.png"
    make_image(40, 40, seed=5, kind="style").save(style)
    config = EngineConfig(weights="random:7")
    side = 32
    key = style_cache_key([hashlib.sha256(style.read_bytes()).hexdigest()], (1.0,), side, config.style_layers,
                          config.pooling, weights_identity(config.weights))
    job = StyleJob(key, "style", (str(style),), (1.0,), side, config.style_layers, config.pooling, config.weights)
    cache_dir = tmp_path / "cache"

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_race, args=(job, str(cache_dir), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    entry = cache_dir / "style-targets" / key[:2] / f"{key}.pt"
    reads = 0
    while any(w.is_alive() for w in workers):  # a reader beside the writers never sees a torn entry
        if entry.exists():
            assert _entry_is_whole(entry)
            reads += 1
        time.sleep(0.001)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    outcomes = [results.get(timeout=10) for _ in workers]

    assert [computed for computed, _ in outcomes] == [True, True]  # the race happened: both computed
    assert outcomes[0][1] == outcomes[1][1]  # identical bytes: whichever write lands last is the same
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert files == [entry]  # one entry, no temp files left behind
    stored = StyleCache.at(str(cache_dir)).get(key)
    assert stored is not None and hashlib.sha256(stored.to_bytes()).hexdigest() == outcomes[0][1]
    assert reads > 0
