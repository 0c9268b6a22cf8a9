"""The end of a run, as plain functions: each result's link, run.json (or a shard's report) and
the gallery. The flows call `write_results` from their last step; a run with nothing to compute
calls `finish_without_engine` and never starts Prefect."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from tasks.gallery import GalleryPage, gallery_html, settings_shown, write_input_thumbnails
from tasks.layout import DONE, FAILED, GALLERY_KEY, REPORT_KEY, PairOutcome, image_key
from tasks.output_guard import claim_output
from tasks.plan import finished_since_planning
from tasks.report import earlier_outcomes, run_report
from tasks.run_setup import PreparedRun
from tasks.stores import Storage, StorageError, read_json, write_json

log = logging.getLogger(__name__)


def add_links(outcomes: Sequence[PairOutcome], storage: Storage) -> None:
    """Each result's link: a file URI locally, a presigned URL on S3 (NST_S3_PRESIGN_SECONDS)."""
    for outcome in outcomes:
        if outcome.status != FAILED:
            outcome.link = storage.url(image_key(outcome.content, outcome.style))


def write_results(run: PreparedRun, outcomes: list[PairOutcome], stats: dict[str, Any], *,
                  report_key: str = REPORT_KEY, gallery: bool = True) -> dict[str, Any]:
    """Links, the report under `report_key` and (`gallery`) the gallery; returns the report.

    run.json and the gallery describe the whole output: pairs this run did not touch (--only)
    keep what the previous report said of them. A shard's report is its own pairs only. A store
    that went away is logged and noted in the report (`report_error`), not raised: the report
    still reaches the caller and the UI.
    """
    add_links(outcomes, run.storage)
    earlier = earlier_outcomes(read_json(run.storage, report_key), outcomes,
                               [(p.content, p.style) for p in run.manifest.pairs]) if gallery else []
    report = run_report(run.manifest.name, outcomes, stats, earlier)
    made = {f"{kind}:{ident}" for o in outcomes if o.status == DONE
            for kind, ident in (("content", o.content), ("style", o.style))}
    try:
        write_json(run.storage, report_key, report)
        if gallery:
            _write_gallery(run, report, made)
    except StorageError as exc:
        log.error("could not write the run report and gallery: %s", exc)
        report["report_error"] = str(exc)
    return report


def _write_gallery(run: PreparedRun, report: dict[str, Any], refresh_thumbnails: set[str]) -> None:
    manifest = run.manifest
    page = GalleryPage(manifest.name, [c.id for c in manifest.contents], [s.id for s in manifest.styles],
                       report["pairs"], finished=report["finished"], counts=report["counts"],
                       settings=settings_shown(manifest.engine),
                       input_thumbs=write_input_thumbnails(manifest, run.storage, refresh_thumbnails),
                       warning=run.weights_warning)
    run.storage.write(GALLERY_KEY, gallery_html(page).encode(), content_type="text/html")


def run_stats(run: PreparedRun, style_targets: dict[str, int], task_runs: int | None) -> dict[str, Any]:
    """The figures every run report carries beside its pairs."""
    return {"style_targets": style_targets, "task_runs": task_runs, "output": run.storage.uri,
            "cache": run.cache_uri}


def finish_without_engine(run: PreparedRun) -> dict[str, Any]:
    """The whole run when nothing needs computing (PreparedRun.nothing_to_compute): the report
    and gallery of the pairs decided at planning, written as the flow would write them."""
    claim_output(run.storage, run.manifest.name)
    nothing = {"planned": 0, "computed": 0, "cached": 0, "failed": 0}
    return write_results(run, run.plan.decided(), run_stats(run, nothing, 0))


def finish_after_lost_run(run: PreparedRun, reason: str) -> dict[str, Any]:
    """run.json and the gallery of a run whose flow could not finish (its Prefect server went
    away): the pairs decided at planning, the pairs whose results reached the output since (done),
    and the rest failed with `reason`, to be finished by a rerun."""
    finished = {job.name for job in finished_since_planning(run.plan, run.storage)}
    outcomes = run.plan.decided()
    for job in run.plan.todo:
        if job.name in finished:
            outcomes.append(PairOutcome(job.content, job.style, DONE, fingerprint=job.fingerprint))
        else:
            outcomes.append(job.failed(f"not finished: {reason}; rerun to finish it"))
    cache = run.cache
    uncached = [job for job in run.plan.style_jobs if job.key not in run.plan.cached_styles]
    computed = sum(1 for job in uncached if cache.has(job.key))
    styles = {"planned": len(run.plan.style_jobs), "computed": computed, "cached": len(run.plan.cached_styles),
              "failed": 0}  # a style that failed is told only by its pairs' reasons
    return write_results(run, outcomes, run_stats(run, styles, None))  # its task runs were never counted
