"""Prefect @task shells over tasks.work: naming, logging, GPU slots. No logic of their own."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from nst_engine import ProgressEvent
from tasks.plan import PairJob, StyleJob
from tasks.storage import open_storage
from tasks.style_cache import StyleCache
from tasks.work import BatchFailed, compute_style_target, stylize_batch

_local_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


@contextlib.contextmanager
def gpu_slot(slots: int, limit_name: str | None) -> Iterator[None]:
    """Hold one GPU slot while the body runs.

    With `limit_name`, a Prefect global concurrency limit (shared by every worker talking to one
    server); otherwise a semaphore in this process, which costs nothing per hand-off and cannot
    leak when the process dies.
    """
    if limit_name:
        from prefect.concurrency.sync import concurrency

        with concurrency(limit_name, occupy=1, strict=True):
            yield
        return
    with _slots_lock:
        semaphore = _local_slots.setdefault(slots, threading.BoundedSemaphore(slots))
    with semaphore:
        yield


# Plan-level de-duplication already guarantees one task per style key in a run, and the
# persistent StyleCache spans runs, so Prefect's own result cache is off (it would only store
# a second copy under PREFECT_HOME).
@task(name="style-target", cache_policy=NO_CACHE)
def style_target_task(job: StyleJob, cache_uri: str, device: str, slots: int, limit_name: str | None) -> dict[str, Any]:
    with gpu_slot(slots, limit_name):
        computed = compute_style_target(job, StyleCache.at(cache_uri), device)
    get_run_logger().info("style %s at %d px: %s", job.style_id, job.side, "computed" if computed else "cached")
    return {"key": job.key, "style": job.style_id, "side": job.side, "computed": computed}


@task(name="stylize-batch", cache_policy=NO_CACHE)
def stylize_batch_task(jobs: list[PairJob], output_uri: str, cache_uri: str, slots: int,
                       limit_name: str | None, log_every: int = 50) -> list[dict[str, Any]]:
    logger = get_run_logger()

    def on_progress(event: ProgressEvent) -> None:
        last = event.scale_index + 1 == event.scale_count and event.step == event.steps
        if event.step % log_every == 0 or last:
            logger.info("scale %d/%d (%dx%d) step %d/%d loss %.4g (%.1f s)", event.scale_index + 1,
                        event.scale_count, event.width, event.height, event.step, event.steps,
                        event.losses.total, event.elapsed)

    with gpu_slot(slots, limit_name):
        try:
            outcomes = stylize_batch(jobs, open_storage(output_uri), StyleCache.at(cache_uri), on_progress=on_progress)
        except BatchFailed as exc:
            logger.error("%s", exc)
            raise
    return [o.to_dict() for o in outcomes]
