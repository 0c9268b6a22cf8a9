"""Speed-up of 2 Dask workers over 1 on the same manifest (flows/dask_runner.py).

    .venv/bin/python -m benchmarks.scale_out               # ~5 min on 2 cores
    .venv/bin/python -m benchmarks.scale_out --quick       # smoke check
    .venv/bin/python -m benchmarks.scale_out --threads-per-worker 1   # 1 core per worker, both sizes

The same 6 pairs (3 demo photos x 2 styles, random weights) run through `stylize_manifest` with
its tasks on a local Dask cluster of 1, then 2 workers (`nst run --task-runner dask --workers N`
makes the same cluster), each run from an empty output and style cache. "cold" counts from
starting the cluster (worker processes import torch, start Prefect's task engine, build VGG);
"warm" is a second run on the same cluster. With no GPU each worker's torch gets
cpu_count / N threads, so both sizes use the whole CPU; the default single-process run
(threads runner) is timed too, for reference. Speed-up = wall(1 worker) / wall(2 workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from benchmarks.demo_manifest import CONTENTS, RESULTS, STYLES, manifest_text  # noqa: E402


def timed_run(path: Path, batch_size: int, runner: Any = None) -> float:
    from flows.stylize_manifest import run_manifest
    from tasks.options import RunOptions

    shutil.rmtree(path.parent / "out", ignore_errors=True)
    shutil.rmtree(path.parent / "cache", ignore_errors=True)
    start = time.perf_counter()
    state, report = run_manifest(str(path), RunOptions(batch_size=batch_size), task_runner=runner)
    elapsed = time.perf_counter() - start
    assert state.is_completed() and report["counts"]["done"] == len(CONTENTS) * len(STYLES), report["counts"]
    return elapsed


def on_cluster(path: Path, workers: int, batch_size: int, threads: int | None = None) -> tuple[float, float]:
    """(cold, warm) wall seconds on a fresh local cluster of `workers`.

    cold: from starting the cluster to the end of a first run, as `nst run --task-runner dask
    --workers N` costs (worker processes import torch, Prefect's task engine starts in each,
    each builds its VGG extractor); warm: the same run again on the same cluster, as on a
    long-lived cluster (`--dask-address`).
    """
    from distributed import Client

    from flows.dask_runner import GpuDaskTaskRunner, gpu_local_cluster

    start = time.perf_counter()
    with gpu_local_cluster(workers, threads_per_worker=threads) as cluster, Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=300)
        timed_run(path, batch_size, GpuDaskTaskRunner(address=cluster.scheduler_address))
        cold = time.perf_counter() - start
        warm = timed_run(path, batch_size, GpuDaskTaskRunner(address=cluster.scheduler_address))
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=1, help="pairs per task (1: 6 tasks to share out)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads-per-worker", type=int, default=None,
                        help="torch threads in each worker (default: cores / workers, the whole CPU either way)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.iterations = 32, 3
    folder = Path(tempfile.mkdtemp(prefix="nst-scale-out-"))
    rows: list[dict[str, Any]] = []
    try:
        warm = folder / "warm" / "m.yaml"  # starts the temporary Prefect server once
        warm.parent.mkdir()
        warm.write_text(manifest_text("warm-up", 32, 1))
        timed_run(warm, 1)
        path = folder / "run" / "m.yaml"
        path.parent.mkdir()
        path.write_text(manifest_text("scale-out", args.size, args.iterations))
        for repeat in range(args.repeats):
            one_cold, one = on_cluster(path, 1, args.batch_size, args.threads_per_worker)
            two_cold, two = on_cluster(path, 2, args.batch_size, args.threads_per_worker)
            default = timed_run(path, args.batch_size)
            rows.append({"repeat": repeat + 1, "one_worker_s": one, "two_workers_s": two, "speedup": one / two,
                         "one_worker_cold_s": one_cold, "two_workers_cold_s": two_cold,
                         "cold_speedup": one_cold / two_cold, "threads_runner_s": default, "load": os.getloadavg()})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    pairs = len(CONTENTS) * len(STYLES)
    lines = [f"{pairs} pairs ({len(CONTENTS)} x {len(STYLES)}), {args.size} px, {args.iterations} iterations, "
             f"batch size {args.batch_size}, {os.cpu_count()} CPU cores, no GPU, torch threads per worker: "
             f"{args.threads_per_worker or 'cores / workers'}", "",
             "| repeat | 1 worker, warm s | 2 workers, warm s | speed-up warm | 1 worker, cold s | "
             "2 workers, cold s | speed-up cold | threads runner s | load avg 1/5/15 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['repeat']} | {row['one_worker_s']:.1f} | {row['two_workers_s']:.1f} | "
                     f"{row['speedup']:.2f}x | {row['one_worker_cold_s']:.1f} | {row['two_workers_cold_s']:.1f} | "
                     f"{row['cold_speedup']:.2f}x | {row['threads_runner_s']:.1f} | "
                     f"{' / '.join(f'{x:.1f}' for x in row['load'])} |")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale_out.md").write_text(table)
    (RESULTS / "scale_out.json").write_text(json.dumps({"rows": rows, "size": args.size,
                                                        "iterations": args.iterations}, indent=2))


if __name__ == "__main__":  # Dask workers are spawned processes: they must not rerun this
    main()
