"""The flow: manifest -> plan -> style targets -> pair batches -> run.json + gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from flows.artifacts import Progress, publish_results
from tasks.gallery import GALLERY_KEY, REPORT_KEY, gallery_html, run_report
from tasks.manifest import Manifest, load_manifest, with_engine_changes
from tasks.plan import PairJob, build_plan
from tasks.prefect_tasks import stylize_batch_task, style_target_task
from tasks.shards import runner_identity, shard_report_key, shard_selector
from tasks.storage import Storage, StorageError, open_storage, write_json
from tasks.style_cache import StyleCache, cache_location
from tasks.work import BatchFailed

RANDOM_WEIGHTS_WARNING = ("These images were made with RANDOM VGG-19 weights (no ImageNet weights were "
                          "available): they show the pipeline working, not real style transfer.")


def manifest_run_name() -> str:
    """The running flow's manifest `name:`, falling back to the file name (names flow runs)."""
    uri = str(flow_run.parameters.get("manifest_uri", "manifest"))
    try:
        return load_manifest(uri).name
    except Exception:  # noqa: BLE001 - a bad manifest fails the run itself, with the full report
        return Path(uri).stem


def _run_name() -> str:
    shard = flow_run.parameters.get("shard")
    return f"{manifest_run_name()} [{shard}]" if shard else manifest_run_name()


# One worker thread per GPU slot (1 by default). Measured on 2 CPU cores: with 2 threads a
# pair's engine time rose from ~8 s to 12-15 s (two OpenMP thread teams contend for the cores);
# with 1 it matches a direct engine call (benchmarks/pipeline_overhead.py).
@flow(name="stylize-manifest", flow_run_name=_run_name, task_runner=ThreadPoolTaskRunner(max_workers=1),
      log_prints=False)
def stylize_manifest(manifest_uri: str, output: str | None = None, force: bool = False,
                     only: list[str] | None = None, batch_size: int = 4, gpu_slots: int = 1,
                     gpu_limit: str | None = None, weights: str | None = None, shard: str | None = None) -> State:
    """Stylize every pair of a manifest. Returns Completed, or Failed naming how many pairs failed.

    gpu_slots bounds concurrent engine work in this process; gpu_limit names a Prefect global
    concurrency limit instead (several workers, one server). `weights` overrides the manifest's.
    `shard` ("i/n") runs only that shard's pairs and writes shards/<i>-of-<n>.json instead of
    run.json and the gallery (flows/sharded.py merges the shards).
    """
    logger = get_run_logger()
    manifest, storage, cache_uri = open_run(manifest_uri, weights, output)
    cache = StyleCache.at(cache_uri)
    select = shard_selector([(p.content, p.style) for p in manifest.pairs], shard) if shard else None
    plan = build_plan(manifest, storage, force=force, only=only, batch_size=batch_size, cached=cache.has,
                      select=select)
    logger.info("plan: %s", plan.summary())
    if gpu_limit:
        _ensure_limit(gpu_limit, gpu_slots)

    style_futures = {job.key: style_target_task.with_options(task_run_name=f"style {job.style_id} @{job.side}px")
                     .submit(job, cache_uri, manifest.engine.device, gpu_slots, gpu_limit)
                     for job in plan.style_jobs}
    wait(list(style_futures.values()))
    style_results = {key: _result(f) for key, f in style_futures.items()}
    bad_styles = {key: r for key, r in style_results.items() if isinstance(r, BaseException)}
    computed = sum(1 for r in style_results.values() if isinstance(r, dict) and r["computed"])

    outcomes: list[dict[str, Any]] = [{"content": c, "style": s, "status": "failed", "reason": reason}
                                      for c, s, reason in plan.failed]
    outcomes += [{"content": j.content_id, "style": j.style_id, "status": "skipped",
                  "reason": "same fingerprint already done", "fingerprint": j.fingerprint} for j in plan.skipped]
    batch_futures = []
    for batch in plan.batches:
        runnable = []
        for job in batch:
            failed_key = next((k for k in job.style_keys if k in bad_styles), None)
            if failed_key:
                outcomes.append({"content": job.content_id, "style": job.style_id, "status": "failed",
                                 "reason": f"style target failed: {bad_styles[failed_key]}"})
            else:
                runnable.append(job)
        if runnable:
            batch_futures.append((runnable, stylize_batch_task.with_options(task_run_name=_batch_name(runnable))
                                  .submit(runnable, storage.uri, cache_uri, gpu_slots, gpu_limit)))
    label = f"{manifest.name}-shard-{shard.replace('/', '-of-')}" if shard else manifest.name  # artifact keys
    progress = Progress(label, sum(len(jobs) for jobs, _ in batch_futures))
    jobs_of = {id(future): jobs for jobs, future in batch_futures}
    for future in as_completed([future for _, future in batch_futures]):
        future.wait()  # as_completed can yield before the final state is readable
        outcomes += _batch_outcomes(jobs_of[id(future)], future)
        progress.advance(len(jobs_of[id(future)]))

    stats = {"style_targets": {"planned": len(plan.style_jobs), "computed": computed,
                               "cached": len(plan.style_jobs) - computed - len(bad_styles),
                               "failed": len(bad_styles)},
             "task_runs": len(style_futures) + len(batch_futures), "output": storage.uri, "cache": cache_uri}
    if shard:  # which machine and GPU ran this shard, for the merged report
        stats["shard"] = {"shard": shard, "flow_run": str(flow_run.id), **runner_identity()}
    _add_links(outcomes, storage)
    report = run_report(manifest.name, outcomes, stats)
    # A sharded run's one gallery is written by its parent.
    write_report(manifest, storage, report, shard_report_key(shard) if shard else REPORT_KEY, gallery=not shard)
    publish_results(label, outcomes, storage)
    counts = report["counts"]
    message = f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
    logger.info("%s; gallery: %s", message, storage.url(GALLERY_KEY))
    if counts["failed"]:
        return Failed(message=f"{counts['failed']} of {len(outcomes)} pairs failed ({message})", data=report)
    return Completed(message=message, data=report)


def open_run(manifest_uri: str, weights: str | None, output: str | None) -> tuple[Manifest, Storage, str]:
    """The manifest (weights overridden when asked), its output store and its style cache URI."""
    manifest = load_manifest(manifest_uri)  # ManifestError: every problem, before any GPU work
    if weights:
        manifest = with_engine_changes(manifest, weights=weights)
    if manifest.engine.weights.startswith("random"):
        get_run_logger().warning(RANDOM_WEIGHTS_WARNING)
    return manifest, open_storage(output or manifest.output), cache_location(manifest.cache)


def write_report(manifest: Manifest, storage: Storage, report: dict[str, Any], key: str = REPORT_KEY,
                 gallery: bool = True) -> None:
    """run.json (or a shard's report) and the gallery. A store that went away is logged and noted
    in the report, not raised: the report still reaches the caller and the UI."""
    warning = RANDOM_WEIGHTS_WARNING if manifest.engine.weights.startswith("random") else None
    try:
        write_json(storage, key, report)
        if gallery:
            storage.write(GALLERY_KEY, gallery_html(manifest.name, [c.id for c in manifest.contents],
                                                    [s.id for s in manifest.styles], report["pairs"], warning).encode(),
                          content_type="text/html")
    except StorageError as exc:
        get_run_logger().error("could not write the run report and gallery: %s", exc)
        report["report_error"] = str(exc)


def _add_links(outcomes: list[dict[str, Any]], storage: Storage) -> None:
    """Each result's link: a file URI locally, a presigned URL on S3 (NST_S3_PRESIGN_SECONDS)."""
    for outcome in outcomes:
        if outcome["status"] != "failed":
            outcome["link"] = storage.url(f"results/{outcome['content']}--{outcome['style']}.png")


def _batch_name(jobs: list[PairJob]) -> str:
    if len(jobs) == 1:
        return f"stylize {jobs[0].content_id} x {jobs[0].style_id}"
    return f"stylize {len(jobs)} pairs: {jobs[0].content_id} x {jobs[0].style_id}, ..."


def _result(future: PrefectFuture[Any]) -> Any:
    """The task's return value, or the exception it failed with."""
    return future.state.result(raise_on_failure=False)


def _batch_outcomes(jobs: list[PairJob], future: PrefectFuture[Any]) -> list[dict[str, Any]]:
    result = _result(future)
    if isinstance(result, BatchFailed):
        return [o.to_dict() for o in result.outcomes]
    if isinstance(result, BaseException):  # crashed task: every pair in it failed
        return [{"content": j.content_id, "style": j.style_id, "status": "failed",
                 "reason": f"{type(result).__name__}: {result}"} for j in jobs]
    return list(result)


def _ensure_limit(name: str, slots: int) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


def run_manifest(manifest_uri: str, *, task_runner: Any = None, **options: Any) -> tuple[State, dict[str, Any]]:
    """Run the flow and return its final state and run report (raises on a bad manifest).

    `task_runner` replaces the flow's own, e.g. flows.dask_runner.dask_task_runner(...).
    """
    slots = int(options.get("gpu_slots", 1))
    if task_runner is not None:
        runnable = stylize_manifest.with_options(task_runner=task_runner)
    elif slots > 1:
        runnable = stylize_manifest.with_options(task_runner=ThreadPoolTaskRunner(max_workers=slots))
    else:
        runnable = stylize_manifest
    return report_of(runnable(manifest_uri, return_state=True, **options))


def report_of(state: State) -> tuple[State, dict[str, Any]]:
    """A finished flow's state and the report it returned; re-raises what it failed with."""
    report = state.result(raise_on_failure=False)
    if isinstance(report, BaseException):
        raise report
    return state, report

