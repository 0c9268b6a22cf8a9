"""The steps a manifest flow is made of, as plain functions the plain and the sharded flow share:
open the run, compute style targets, submit pair batches, collect outcomes, finish (report,
gallery, artifacts, final state). Each runs inside a flow run (they use its logger and tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from flows.artifacts import Progress, publish_results
from nst_engine.vgg import is_random_weights
from tasks.engine_work import BatchFailed
from tasks.gallery import gallery_html
from tasks.layout import FAILED, GALLERY_KEY, REPORT_KEY, SKIPPED, PairOutcome, image_key
from tasks.manifest import Manifest, load_manifest
from tasks.options import RunOptions, manifest_for_run
from tasks.output_guard import check_output_location, claim_output, local_manifest_path
from tasks.plan import PairJob, Plan
from tasks.prefect_tasks import ensure_concurrency_limit, style_target_task, stylize_batch_task
from tasks.report import earlier_outcomes, run_report, summary_line
from tasks.stores import Storage, StorageError, open_storage, read_json, write_json
from tasks.style_cache import StyleCache, cache_location

RANDOM_WEIGHTS_WARNING = ("These images were made with RANDOM VGG-19 weights (no ImageNet weights were "
                          "available): they show the pipeline working, not real style transfer.")


@dataclass(frozen=True)
class OpenRun:
    """A run's manifest (run options applied), its output store and its style cache."""

    manifest: Manifest
    storage: Storage
    cache_uri: str

    @property
    def cache(self) -> StyleCache:
        return StyleCache.at(self.cache_uri)

    @property
    def random_weights(self) -> bool:
        return is_random_weights(self.manifest.engine.weights)


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


def open_run(manifest_uri: str, options: RunOptions, run_name_suffix: str = "") -> OpenRun:
    """Read and check the manifest (the run's only read of it), name the flow run after it, and
    open the output store and the style cache."""
    manifest = manifest_for_run(load_manifest(manifest_uri), options)  # ManifestError: before any GPU work
    _name_flow_run(manifest.name + run_name_suffix)
    run = OpenRun(manifest, open_storage(options.output or manifest.output), cache_location(manifest.cache))
    # Only into a folder that is empty or already ours (OutputRefusedError says why not), and
    # marked ours before the first write, so a run stopped early still finds it its own.
    check_output_location(run.storage, manifest=local_manifest_path(manifest),
                          allow_non_empty=options.allow_non_empty_output)
    claim_output(run.storage)
    if run.random_weights:
        get_run_logger().warning(RANDOM_WEIGHTS_WARNING)
    if options.gpu_limit:
        ensure_concurrency_limit(options.gpu_limit, options.gpu_slots)
    return run


def _name_flow_run(name: str) -> None:
    """Runs are named after the manifest's `name:` (the UI lists them so); set here, from the one
    read of the manifest, rather than by a flow_run_name callable that would read it again."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name)


def compute_styles(plan: Plan, run: OpenRun, options: RunOptions, only_missing: bool = False) -> StyleStats:
    """One task per style target the plan needs (or, with `only_missing`, per one the cache lacks)."""
    jobs = [job for job in plan.style_jobs if not (only_missing and job.key in plan.cached_styles)]
    futures = {job.key: style_target_task.with_options(task_run_name=f"style {job.style_id} @{job.side}px")
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


def planned_outcomes(plan: Plan) -> list[PairOutcome]:
    """Pairs decided before any work: failed inputs and pairs already done."""
    return [*plan.failed, *(PairOutcome(j.content_id, j.style_id, SKIPPED, "same fingerprint already done",
                                        fingerprint=j.fingerprint) for j in plan.skipped)]


def run_batches(plan: Plan, run: OpenRun, options: RunOptions, styles: StyleStats,
                progress_label: str) -> tuple[list[PairOutcome], int]:
    """Submit every batch (pairs whose style target failed fail here), advance a progress
    artifact as batches finish, and return every pair's outcome and the task runs submitted."""
    outcomes: list[PairOutcome] = []
    submitted: list[tuple[list[PairJob], PrefectFuture[Any]]] = []
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
    progress = Progress(progress_label, sum(len(jobs) for jobs, _ in submitted))
    jobs_of = {id(future): jobs for jobs, future in submitted}
    for future in as_completed([future for _, future in submitted]):
        future.wait()  # as_completed can yield before the final state is readable
        outcomes += batch_outcomes(jobs_of[id(future)], future)
        progress.advance(len(jobs_of[id(future)]))
    return outcomes, len(submitted)


def batch_task_name(jobs: list[PairJob]) -> str:
    if len(jobs) == 1:
        return f"stylize {jobs[0].content_id} x {jobs[0].style_id}"
    return f"stylize {len(jobs)} pairs: {jobs[0].content_id} x {jobs[0].style_id}, ..."


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


def add_links(outcomes: list[PairOutcome], storage: Storage) -> None:
    """Each result's link: a file URI locally, a presigned URL on S3 (NST_S3_PRESIGN_SECONDS)."""
    for outcome in outcomes:
        if outcome.status != FAILED:
            outcome.link = storage.url(image_key(outcome.content, outcome.style))


def finish(run: OpenRun, outcomes: list[PairOutcome], stats: dict[str, Any], *, report_key: str = REPORT_KEY,
           gallery: bool = True, label: str | None = None, unfinished: str = "") -> State:
    """The end of every run: links, report (and gallery), UI artifacts, the final state.

    Completed, or Failed naming how many pairs failed (`unfinished`: why some pairs were not
    even tried, e.g. shards that never finished, also fails the run). The state carries the report.
    """
    manifest, storage = run.manifest, run.storage
    add_links(outcomes, storage)
    # run.json and the gallery describe the whole output: pairs this run did not touch (--only)
    # keep what the previous report said of them. A shard's report is its own pairs only.
    earlier = earlier_outcomes(read_json(storage, report_key), outcomes,
                               [(p.content, p.style) for p in manifest.pairs]) if gallery else []
    report = run_report(manifest.name, outcomes, stats, earlier)
    write_report(run, report, report_key, gallery)
    publish_results(label or manifest.name, outcomes, storage)
    counts = report["counts"]
    message = summary_line(counts) + (f"; {unfinished}" if unfinished else "")
    get_run_logger().info("%s; gallery: %s", message, storage.url(GALLERY_KEY))
    if counts[FAILED]:
        return Failed(message=f"{counts[FAILED]} of {len(outcomes)} pairs failed ({message})", data=report)
    if unfinished:
        return Failed(message=message, data=report)
    return Completed(message=message, data=report)


def write_report(run: OpenRun, report: dict[str, Any], key: str = REPORT_KEY, gallery: bool = True) -> None:
    """run.json (or a shard's report) and the gallery. A store that went away is logged and noted
    in the report, not raised: the report still reaches the caller and the UI."""
    manifest = run.manifest
    warning = RANDOM_WEIGHTS_WARNING if run.random_weights else None
    try:
        write_json(run.storage, key, report)
        if gallery:
            page = gallery_html(manifest.name, [c.id for c in manifest.contents], [s.id for s in manifest.styles],
                                report["pairs"], warning)
            run.storage.write(GALLERY_KEY, page.encode(), content_type="text/html")
    except StorageError as exc:
        get_run_logger().error("could not write the run report and gallery: %s", exc)
        report["report_error"] = str(exc)
