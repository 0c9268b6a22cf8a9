"""Prefect @task shells over tasks.engine_work: naming, logging, GPU slots. No logic of their own."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.states import Completed, Failed, State

from nst_engine.optimize import ProgressEvent
from tasks import progress
from tasks.engine_work import BatchFailed, compute_style_target, stylize_batch
from tasks.interrupt import check_stop
from tasks.layout import PairOutcome
from tasks.options import RunOptions
from tasks.plan import PairJob, StyleJob
from tasks.stores import open_storage
from tasks.style_cache import StyleCache

_local_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def ensure_concurrency_limit(name: str, slots: int) -> None:
    """Create or resize the Prefect global concurrency limit engine work holds (slots = GPUs)."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


@contextlib.contextmanager
def gpu_slot(options: RunOptions) -> Iterator[None]:
    """Hold one GPU slot while the body runs.

    With `options.gpu_limit`, a Prefect global concurrency limit (shared by every worker talking
    to one server); otherwise a semaphore of `gpu_slots` in this process, which costs nothing per
    hand-off and cannot leak when the process dies.
    """
    if options.gpu_limit:
        from prefect.concurrency.sync import concurrency

        with concurrency(options.gpu_limit, occupy=1, strict=True):
            yield
        return
    with _slots_lock:
        semaphore = _local_slots.setdefault(options.gpu_slots, threading.BoundedSemaphore(options.gpu_slots))
    with semaphore:
        yield


# Plan-level de-duplication already guarantees one task per style key in a run, and the
# persistent StyleCache spans runs, so Prefect's own result cache is off (it would only store
# a second copy under PREFECT_HOME).
@task(name="style-target", cache_policy=NO_CACHE)
def style_target_task(job: StyleJob, cache_uri: str, device: str, options: RunOptions) -> dict[str, Any]:
    with gpu_slot(options):
        computed = compute_style_target(job, StyleCache.at(cache_uri), device)
    get_run_logger().info("style %s at %d px: %s", job.style, job.side, "computed" if computed else "cached")
    return {"key": job.key, "style": job.style, "side": job.side, "computed": computed}


@task(name="stylize-batch", cache_policy=NO_CACHE)
def stylize_batch_task(jobs: list[PairJob], output_uri: str, cache_uri: str, options: RunOptions) -> State:
    """Completed with every pair's outcome, or Failed (no traceback: an unreadable input is
    not a bug) naming each failed pair, with a BatchFailed holding every outcome as its data."""
    logger = get_run_logger()
    names = [job.label for job in jobs]
    sink = progress.current()

    def on_progress(event: ProgressEvent) -> None:
        check_stop()  # Ctrl+C / SIGTERM: abandon this image between two iterations
        sink.engine_step(names, event)
        last = event.scale_index + 1 == event.scale_count and event.step == event.steps
        if event.step % options.log_every == 0 or last:
            logger.info("scale %d/%d (%dx%d) step %d/%d loss %.4g (%.1f s)", event.scale_index + 1,
                        event.scale_count, event.width, event.height, event.step, event.steps,
                        event.losses.total, event.elapsed)

    with gpu_slot(options):
        sink.batch_started(names)
        try:
            outcomes = stylize_batch(jobs, open_storage(output_uri), StyleCache.at(cache_uri), on_progress=on_progress,
                                     memory_budget=options.memory_budget())
        except BatchFailed as exc:  # each failed pair gets its log line from the flow (run_steps.finish)
            return Failed(message=str(exc), data=exc)
    return Completed(message=f"{len(outcomes)} done", data=[o.to_dict() for o in outcomes])


@task(name="failed-pairs", cache_policy=NO_CACHE)
def failed_pairs_task(outcomes: list[PairOutcome]) -> State:
    """A task run that only marks pairs that failed before any engine work (an input that
    cannot be read, a style target that failed), so the UI's task list shows them too."""
    reasons = sorted({o.reason for o in outcomes})
    return Failed(message="; ".join(reasons))
