"""One manifest over many machines: a parent flow fans shards out to Prefect workers.

Each GPU machine runs `prefect worker start --pool POOL --limit 1` (one worker per GPU, with its
own CUDA_VISIBLE_DEVICES) polling one process work pool that serves the shard deployment
(deployments/shards.py). This parent:

1. plans the whole manifest and computes the style targets it lacks into the shared persistent
   cache, once for the whole cluster (a forward pass per style: cheap next to the pairs), so
   shards starting together do not each compute the same style;
2. creates one deployment run per shard ("i/n", tasks/shards.py), which lands on whichever
   worker is free; each shard writes its results straight to the output store and its report to
   shards/<i>-of-<n>.json;
3. waits for every shard (with a timeout, since a run whose worker was killed stays "Running"),
   merges the shard reports into run.json and writes the one gallery.

Rerunning after a worker died redoes only the missing pairs: the sharding is deterministic and
every shard skips pairs whose result already holds the same fingerprint.
"""

# No `from __future__ import annotations`: Prefect validates flow parameters with pydantic from
# these annotations, and a served run failed to resolve RunOptions from a string annotation.
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.states import Cancelled, State
from prefect.task_runners import ThreadPoolTaskRunner

from flows.names import SHARD_DEPLOYMENT, SHARDED_FLOW_NAME
from flows.run_steps import compute_styles, finish, open_run
from flows.stylize_manifest import report_of
from tasks.layout import SKIPPED, PairOutcome
from tasks.options import RunOptions
from tasks.plan import build_plan
from tasks.run_finish import run_stats
from tasks.run_setup import PreparedRun, handed_over
from tasks.shards import shard_report_key, shard_selector
from tasks.stores import absolute, read_json

_SUMMED = ("computed", "failed_styles", "task_runs")  # per-shard figures the merged report adds up


@dataclass
class ShardRun:
    """One shard's deployment run as the parent tracks it while waiting."""

    shard: str
    flow_run_id: UUID
    state: str = "SCHEDULED"
    started: float | None = None  # when this parent first saw it running (monotonic)
    final: bool = False
    gave_up: str = ""  # why the parent stopped waiting, when it did


@flow(name=SHARDED_FLOW_NAME, task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=False)
def stylize_manifest_sharded(manifest_uri: str, shards: int, options: RunOptions = RunOptions(),
                             deployment: str = SHARD_DEPLOYMENT, precompute_styles: bool = True,
                             shard_timeout: float = 6 * 3600, poll_interval: float = 5.0) -> State:
    """Stylize a manifest as `shards` deployment runs of `deployment`, then merge them.

    `shard_timeout`: seconds a shard may stay running, or the whole run may go without any shard
    starting or finishing, before the parent stops waiting and reports those shards' pairs as
    not finished (rerun to finish them). `precompute_styles=False` leaves the style targets to
    the shards: no torch needed here, but shards that start together may each compute a style
    (the cache keeps one entry: whole-entry writes of identical content).
    """
    logger = get_run_logger()
    if shards < 1:
        raise ValueError(f"shards={shards}: need at least one shard")
    manifest_uri = absolute(manifest_uri, ".")  # workers do not start in this folder
    run = open_run(manifest_uri, options, f" [{shards} shards]")
    plan = run.plan
    logger.info("whole plan: %s", plan.summary())
    styles = compute_styles(plan, run, options, only_missing=True) if precompute_styles else None
    for key, error in (styles.failed.items() if styles else ()):  # the shards that need it retry it
        logger.warning("style target %s failed in the parent: %s", key, error)

    # Every shard writes to the store this parent resolved, whatever the manifest says.
    shard_options = options.replace(output=run.storage.uri)
    runs = []
    for index in range(1, shards + 1):
        shard = f"{index}/{shards}"
        parameters = {"manifest_uri": manifest_uri, "options": shard_options.replace(shard=shard).to_parameters()}
        flow_run = run_deployment(deployment, parameters=parameters, timeout=0, tags=["nst", "nst-shard"])
        runs.append(ShardRun(shard, flow_run.id))
        logger.info("shard %s: flow run %s", shard, flow_run.id)
    _wait_for(runs, shard_timeout, poll_interval, logger)

    outcomes, shard_stats = _merge(runs, run, options)
    computed = styles.computed if styles else 0
    style_targets = {"planned": len(plan.style_jobs),
                     "computed": computed + sum(s.get("computed", 0) for s in shard_stats),
                     "cached": len(plan.cached_styles),
                     "failed": sum(s.get("failed_styles", 0) for s in shard_stats)}
    task_runs = ((len(plan.style_jobs) - len(plan.cached_styles) if styles else 0)
                 + sum(s.get("task_runs", 0) for s in shard_stats))
    stats = {**run_stats(run, style_targets, task_runs),
             "shards": [{k: v for k, v in s.items() if k not in _SUMMED} for s in shard_stats]}
    unfinished = [r.shard for r in runs if r.gave_up]
    why = f"shards not finished: {', '.join(unfinished)} (rerun to finish them)" if unfinished else ""
    return finish(run, outcomes, stats, unfinished=why)


def _wait_for(runs: list[ShardRun], timeout: float, poll_interval: float, logger: Any) -> None:
    """Poll the shard runs until each is final or given up (see `shard_timeout`)."""
    last_progress = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            pending = {r.flow_run_id: r for r in runs if not r.final and not r.gave_up}
            if not pending:
                return
            now = time.monotonic()
            for record in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))):
                run, state = pending[record.id], record.state
                if state is None:
                    continue
                if state.type.value != run.state:
                    last_progress = now
                    run.state = state.type.value
                if state.is_final():
                    run.final = True
                elif state.is_running() and run.started is None:
                    run.started = now
            for run in pending.values():
                if run.final:
                    logger.info("shard %s: %s", run.shard, run.state)
                elif run.started is not None and now - run.started > timeout:
                    run.gave_up = f"still {run.state} after {timeout:g} s (was its worker stopped?)"
                elif run.started is None and now - last_progress > timeout:
                    run.gave_up = f"still {run.state}: no shard started or finished for {timeout:g} s (no free worker?)"
                    _cancel(client, run)
                if run.gave_up:
                    logger.error("shard %s (flow run %s) %s", run.shard, run.flow_run_id, run.gave_up)
            time.sleep(poll_interval)


def _cancel(client: Any, run: ShardRun) -> None:
    """A shard that never started is cancelled, so it does not start after this report."""
    try:
        client.set_flow_run_state(run.flow_run_id, Cancelled(message="the sharded parent stopped waiting"))
    except Exception as exc:  # noqa: BLE001 - it may have started meanwhile; the rerun copes either way
        run.gave_up += f"; could not cancel it: {exc}"


def _merge(runs: list[ShardRun], run: PreparedRun, options: RunOptions) -> tuple[list[PairOutcome], list[dict[str, Any]]]:
    """Every pair's outcome, from the shard reports; pairs of shards that did not report are
    looked up in the output (done = same fingerprint there) or reported as not finished."""
    manifest, storage = run.manifest, run.storage
    outcomes: dict[tuple[str, str], PairOutcome] = {}
    stats: list[dict[str, Any]] = []
    all_pairs = [(p.content, p.style) for p in manifest.pairs]
    for shard_run in runs:
        report = read_json(storage, shard_report_key(shard_run.shard))
        ours = isinstance(report, dict) and report.get("shard", {}).get("flow_run") == str(shard_run.flow_run_id)
        entry: dict[str, Any] = {"shard": shard_run.shard, "flow_run": str(shard_run.flow_run_id),
                                 "state": shard_run.state}
        if shard_run.final and ours:
            assert isinstance(report, dict)
            for pair in report["pairs"]:
                outcome = PairOutcome.from_dict(pair)
                outcomes[(outcome.content, outcome.style)] = outcome
            entry.update({k: v for k, v in report["shard"].items() if k not in ("shard", "flow_run")})
            entry.update(pairs=len(report["pairs"]), computed=report["style_targets"]["computed"],
                         failed_styles=report["style_targets"]["failed"], task_runs=report["task_runs"])
        else:  # crashed, killed, timed out or cancelled: see what it left in the output
            why = shard_run.gave_up or f"ended {shard_run.state} without a report"
            entry["reason"] = why
            plan = build_plan(manifest, storage, options.replace(force=False),
                              select=shard_selector(all_pairs, shard_run.shard))
            for job in plan.todo:
                outcomes[(job.content, job.style)] = job.failed(
                    f"shard {shard_run.shard} did not finish: {why}; rerun to finish it")
            for job in plan.skipped:
                outcomes[(job.content, job.style)] = PairOutcome(
                    job.content, job.style, SKIPPED,
                    f"found done in the output (shard {shard_run.shard} did not report)",
                    fingerprint=job.fingerprint, link=storage.url(job.image_key))
            for outcome in plan.failed:
                outcomes[(outcome.content, outcome.style)] = outcome
            entry["pairs"] = len(plan.todo) + len(plan.skipped) + len(plan.failed)
        stats.append(entry)
    order = {pair: i for i, pair in enumerate(all_pairs)}
    return sorted(outcomes.values(), key=lambda o: order.get((o.content, o.style), len(order))), stats


def run_sharded(manifest_uri: str, shards: int, options: RunOptions = RunOptions(), *,
                prepared: PreparedRun | None = None, **parent: Any) -> tuple[State, dict[str, Any]]:
    """Run the parent flow here and return its final state and merged report. `parent`: the
    parent's own settings (deployment, shard_timeout, poll_interval, precompute_styles).
    `prepared`: the whole run as prepare_run set it up in this process (see run_manifest)."""
    if prepared is not None:
        manifest_uri, options = prepared.manifest_uri, prepared.options
    with handed_over(prepared):
        return report_of(stylize_manifest_sharded(manifest_uri, shards, options.resolved(), return_state=True,
                                                  **parent))
