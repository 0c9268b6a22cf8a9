"""The flow: manifest -> plan -> style targets -> pair batches -> run.json + gallery."""

# No `from __future__ import annotations` here: a served run (`nst serve`, flow.serve) validates
# the parameters against the flow's annotations, and Prefect 3.9 then failed to resolve the string
# "RunOptions" ("Stylize_ManifestModel is not fully defined", tests/ui serve test); real classes resolve.
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from flows.names import FLOW_NAME
from flows.run_steps import compute_styles, finish, open_run, run_batches, start_progress
from tasks.layout import REPORT_KEY
from tasks.options import RunOptions
from tasks.plan import record_results
from tasks.progress import plan_in_words
from tasks.report import PairsFailed
from tasks.run_finish import run_stats
from tasks.run_setup import PreparedRun, handed_over
from tasks.shards import runner_identity, shard_report_key
from tasks.stores import absolute


# One worker thread per GPU slot (1 by default). Measured on 2 CPU cores: with 2 threads a
# pair's engine time rose from ~8 s to 12-15 s (two OpenMP thread teams contend for the cores);
# with 1 it matches a direct engine call (benchmarks/pipeline_overhead.py).
@flow(name=FLOW_NAME, task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=False)
def stylize_manifest(manifest_uri: str, options: RunOptions = RunOptions()) -> State:
    """Stylize every pair of a manifest. Returns Completed, or Failed naming how many pairs failed.

    `options.shard` ("i/n") runs only that shard's pairs and writes shards/<i>-of-<n>.json
    instead of run.json and the gallery (flows/sharded.py merges the shards).
    """
    shard = options.shard
    run = open_run(manifest_uri, options, f" [{shard}]" if shard else "")
    plan = run.plan
    get_run_logger().info("plan: %s", plan_in_words(plan))
    label = f"{run.manifest.name}-shard-{shard.replace('/', '-of-')}" if shard else run.manifest.name
    progress = start_progress(plan, run.manifest.name, label)

    styles = compute_styles(plan, run, options)
    done, task_runs = run_batches(plan, run, options, styles, progress)
    record_results(plan, run.storage, done)  # so the next run's plan need not read their provenance

    stats = run_stats(run, styles.to_dict(), len(plan.style_jobs) + task_runs)
    if shard:  # which machine and GPU ran this shard, for the merged report
        stats["shard"] = {"shard": shard, "flow_run": str(flow_run.id), **runner_identity()}
    # A sharded run's one gallery is written by its parent.
    return finish(run, plan.decided() + done, stats, label=label,
                  report_key=shard_report_key(shard) if shard else REPORT_KEY, gallery=not shard)


def run_manifest(manifest_uri: str, options: RunOptions = RunOptions(), *, task_runner: Any = None,
                 prepared: PreparedRun | None = None) -> tuple[State, dict[str, Any]]:
    """Run the flow here and return its final state and run report (raises on a bad manifest).

    `task_runner` replaces the flow's own, e.g. flows.dask_runner.dask_task_runner(...).
    `prepared`: the run as prepare_run set it up in this process (`nst run`); the flow starts
    from it instead of reading and planning the manifest again.
    """
    if prepared is not None:
        manifest_uri, options = prepared.manifest_uri, prepared.options
    options = options.resolved()
    if task_runner is None and options.gpu_slots > 1:
        task_runner = ThreadPoolTaskRunner(max_workers=options.gpu_slots)
    runnable = stylize_manifest.with_options(task_runner=task_runner) if task_runner else stylize_manifest
    with handed_over(prepared):
        return report_of(runnable(absolute(manifest_uri, "."), options, return_state=True))


def report_of(state: State) -> tuple[State, dict[str, Any]]:
    """A finished flow's state and its run report; re-raises what it failed with otherwise."""
    report = state.result(raise_on_failure=False)
    if isinstance(report, PairsFailed):  # some pairs failed: the run did its job, the report says which
        return state, report.report
    if isinstance(report, BaseException):
        raise report
    return state, report
