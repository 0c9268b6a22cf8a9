"""The steps a manifest flow is made of, as plain functions the plain and the sharded flow share:
open the run, compute style targets, submit pair batches, collect outcomes, finish (report,
gallery, artifacts, final state). Each runs inside a flow run (they use its logger and tasks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from flows.artifacts import Progress, publish_results
from tasks import progress
from tasks.engine_work import BatchFailed
from tasks.layout import FAILED, GALLERY_KEY, REPORT_KEY, PairOutcome
from tasks.manifest import load_manifest
from tasks.options import RunOptions
from tasks.output_guard import claim_output
from tasks.plan import PairJob, Plan
from tasks.prefect_tasks import (ensure_concurrency_limit, failed_pairs_task, style_target_task,
                                 stylize_batch_task)
from tasks.report import PairsFailed, summary_line
from tasks.run_finish import write_results
from tasks.run_setup import PreparedRun, prepare_run, take_over



class _ExpectedFailureNoise(logging.Filter):
    """Drops two log records Prefect 3.9 writes for failures this pipeline expects and reports
    itself (one log line per failed pair, the states' messages, "Finished in state ..." lines):

    - the process entrypoint (`python -m prefect.engine`, used by workers and `serve`) runs the
      flow with return_type="result", so for a Failed final state it raises the state's
      exception and logs "Engine execution exited with unexpected exception" with a traceback:
      dropped when that exception is our PairsFailed;
    - a task that returns a Failed state (a batch with a failed pair, a failed-pairs marker) is
      logged as "Task run failed with state: ..." with exc_info=True but no exception, which
      prints "NoneType: None": dropped (the task's "Finished in state Failed(...)" follows).

    Any other exception keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PairsFailed):
            return False
        return not (record.exc_info and exc is None and str(record.msg).startswith("Task run failed with state"))


for _logger_name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
    logging.getLogger(_logger_name).addFilter(_ExpectedFailureNoise())


@dataclass
class StyleStats:
    """What the style-target tasks did: how many were computed, and the ones that failed."""

    planned: int = 0
    computed: int = 0
    cached: int = 0
    failed: dict[str, BaseException] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        return {"planned": self.planned, "computed": self.computed, "cached": self.cached,
                "failed": len(self.failed)}


def open_run(manifest_uri: str, options: RunOptions, run_name_suffix: str = "") -> PreparedRun:
    """The run's set-up (prepare_run: the one the command line made in this process when it
    made one, so the manifest is read and planned once), then what only a flow run does: name
    it after the manifest, mark the output ours before the first write (a run stopped early
    still finds it its own), log the weights warning, create the GPU concurrency limit."""
    run = take_over(manifest_uri, options) or prepare_run(load_manifest(manifest_uri), options)
    _name_flow_run(run.manifest.name + run_name_suffix)
    claim_output(run.storage)
    if run.weights_warning:
        get_run_logger().warning(run.weights_warning)
    if options.gpu_limit:
        ensure_concurrency_limit(options.gpu_limit, options.gpu_slots)
    return run


def _name_flow_run(name: str) -> None:
    """Runs are named after the manifest's `name:` (the UI lists them so); set here, from the one
    read of the manifest, rather than by a flow_run_name callable that would read it again."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name)


def compute_styles(plan: Plan, run: PreparedRun, options: RunOptions, only_missing: bool = False) -> StyleStats:
    """One task per style target the plan needs (or, with `only_missing`, per one the cache lacks)."""
    jobs = [job for job in plan.style_jobs if not (only_missing and job.key in plan.cached_styles)]
    futures = {job.key: style_target_task.with_options(task_run_name=f"style {job.style} @{job.side}px")
               .submit(job, run.cache_uri, run.manifest.engine.device, options) for job in jobs}
    wait(list(futures.values()))
    stats = StyleStats(planned=len(plan.style_jobs))
    for key, future in futures.items():
        result = _result(future)
        if isinstance(result, BaseException):
            stats.failed[key] = result
        elif result["computed"]:
            stats.computed += 1
    stats.cached = len(plan.style_jobs) - stats.computed - len(stats.failed)
    return stats


def start_progress(plan: Plan, name: str, label: str) -> "Progress":
    """The run's tally (every pair of the plan), its progress artifact, and a failed task run
    per reason for the pairs that failed at planning, so the task list shows them too."""
    decided = plan.decided()
    tally = progress.Tally(total=len(plan.todo) + len(decided))
    tally.count(decided, worked=False)
    progress.current().run_planned(name, tally.total, decided)
    mark_failed(plan.failed)
    return Progress(label, tally)


def mark_failed(outcomes: Sequence[PairOutcome]) -> None:
    """One short Failed task run per reason (pairs sharing an unreadable input share one),
    named after every pair in it."""
    by_reason: dict[str, list[PairOutcome]] = {}
    for outcome in outcomes:
        by_reason.setdefault(outcome.reason, []).append(outcome)
    for group in by_reason.values():
        failed_pairs_task.with_options(task_run_name="failed " + pair_list(group))(group, return_state=True)


def run_batches(plan: Plan, run: PreparedRun, options: RunOptions, styles: StyleStats,
                progress_artifact: "Progress") -> tuple[list[PairOutcome], int]:
    """Submit every batch (pairs whose style target failed fail here), advance the progress
    artifact as batches finish, and return every pair's outcome and the task runs submitted."""
    outcomes: list[PairOutcome] = []
    submitted: list[tuple[list[PairJob], PrefectFuture[Any]]] = []
    tally, sink = progress_artifact.tally, progress.current()
    tally.start_work()
    for batch in plan.batches:
        runnable = []
        for job in batch:
            failed_key = next((k for k in job.style_keys if k in styles.failed), None)
            if failed_key:
                outcomes.append(job.failed(f"style target failed: {styles.failed[failed_key]}"))
            else:
                runnable.append(job)
        if runnable:
            future = (stylize_batch_task.with_options(task_run_name=batch_task_name(runnable))
                      .submit(runnable, run.storage.uri, run.cache_uri, options))
            submitted.append((runnable, future))
    if outcomes:  # pairs of a failed style target: counted and shown like any other failure
        mark_failed(outcomes)
        tally.count(outcomes, worked=False)
        progress_artifact.update()
    jobs_of = {id(future): jobs for jobs, future in submitted}
    for future in as_completed([future for _, future in submitted]):
        future.wait()  # as_completed can yield before the final state is readable
        jobs = jobs_of[id(future)]
        finished = batch_outcomes(jobs, future)
        outcomes += finished
        tally.count(finished)
        sink.pairs_finished([j.label for j in jobs], finished)
        progress_artifact.update()
    return outcomes, len(submitted)


def pair_list(pairs: Sequence[PairJob] | Sequence[PairOutcome]) -> str:
    """Every pair, "photo0 x art0, photo0 x art1": task names carry all their pairs, written out
    whole, so the UI's search by name finds any one of them."""
    return ", ".join(p.label for p in pairs)


def batch_task_name(jobs: list[PairJob]) -> str:
    return "stylize " + pair_list(jobs)


def _result(future: PrefectFuture[Any]) -> Any:
    """The task's return value, or the exception it failed with."""
    return future.state.result(raise_on_failure=False)


def batch_outcomes(jobs: list[PairJob], future: PrefectFuture[Any]) -> list[PairOutcome]:
    result = _result(future)
    if isinstance(result, BatchFailed):
        return list(result.outcomes)
    if isinstance(result, BaseException):  # crashed task: every pair in it failed
        return [job.failed(f"{type(result).__name__}: {result}") for job in jobs]
    return [PairOutcome.from_dict(item) for item in result]


def finish(run: PreparedRun, outcomes: list[PairOutcome], stats: dict[str, Any], *, report_key: str = REPORT_KEY,
           gallery: bool = True, label: str | None = None, unfinished: str = "") -> State:
    """The end of every run: report (and gallery) as plain code writes them, then the UI
    artifacts, a log line per failed pair, the final state.

    Completed, or Failed naming how many pairs failed (`unfinished`: why some pairs were not
    even tried, e.g. shards that never finished, also fails the run). A Completed state carries
    the report; a Failed one a PairsFailed holding it (see report_of).
    """
    report = write_results(run, outcomes, stats, report_key=report_key, gallery=gallery)
    logger = get_run_logger()
    if "report_error" in report:
        logger.error("could not write the run report and gallery: %s", report["report_error"])
    publish_results(label or run.manifest.name, outcomes, run.storage)
    for outcome in outcomes:
        if outcome.status == FAILED:
            logger.error("failed %s: %s", outcome.label, outcome.reason)
    counts = report["counts"]
    message = summary_line(counts) + (f"; {unfinished}" if unfinished else "")
    logger.info("%s; gallery: %s", message, run.storage.url(GALLERY_KEY))
    if counts[FAILED]:
        message = f"{counts[FAILED]} of {len(outcomes)} pairs failed ({message})"
        return Failed(message=message, data=PairsFailed(message, report))
    if unfinished:
        return Failed(message=message, data=PairsFailed(message, report))
    return Completed(message=message, data=report)
