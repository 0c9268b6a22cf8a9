"""Scale-out on Dask: prefect-dask's task runner on a local cluster, one GPU resource per worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("prefect_dask")

from distributed import Client, get_task_stream  # noqa: E402

from flows.dask_runner import GPU_RESOURCE, dask_task_runner, gpu_local_cluster  # noqa: E402
from flows.stylize_manifest import run_manifest  # noqa: E402
from tasks.options import RunOptions  # noqa: E402
from tests.flows.test_stylize_manifest import write_manifest  # noqa: E402


def test_two_dask_workers_run_a_4x3_manifest_each_pair_once_each_style_once(tmp_path: Path,
                                                                           prefect_server: None) -> None:
    manifest = write_manifest(tmp_path / "dask-4x3", contents=4, styles=3, engine="{size: 32, iterations: 2}")
    out = manifest.parent / "out"
    # Two "GPU" workers as `nst run --task-runner dask --workers 2` makes them, plus one worker
    # that declares no GPU: it must never be given engine work.
    with gpu_local_cluster(2) as cluster, Client(cluster.scheduler_address, set_as_default=False) as client:
        plain = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                  "--nthreads", "1", "--no-dashboard", "--no-nanny", "--name", "no-gpu"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(3, timeout=120)
            names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
            resources = {w["name"]: w["resources"] for w in client.scheduler_info()["workers"].values()}
            assert resources == {"gpu-0": {GPU_RESOURCE: 1}, "gpu-1": {GPU_RESOURCE: 1}, "no-gpu": {}}
            # distributed's default MALLOC_TRIM_THRESHOLD_ slows torch on CPU ~8x: kept out of our workers
            gpu_workers = [a for a, name in names.items() if name != "no-gpu"]
            environ = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")),
                                 workers=gpu_workers)
            assert {trim for trim, _ in environ.values()} == {None}
            assert {threads for _, threads in environ.values()} == {str(max(1, (os.cpu_count() or 1) // 2))}
            with get_task_stream(client=client) as stream:
                state, report = run_manifest(str(manifest), RunOptions(batch_size=2),
                                             task_runner=dask_task_runner(address=cluster.scheduler_address))
        finally:
            plain.terminate()
            plain.wait(timeout=30)

    assert state.is_completed(), state.message
    pairs = Counter((p["content"], p["style"]) for p in report["pairs"])
    assert len(pairs) == 12 and set(pairs.values()) == {1}
    assert report["counts"] == {"done": 12, "skipped": 0, "failed": 0}
    # Each style computed once for the whole cluster: 3 task runs, 3 entries in the shared store.
    assert report["style_targets"] == {"planned": 3, "computed": 3, "cached": 0, "failed": 0}
    assert len(list((manifest.parent / "cache").rglob("*.pt"))) == 3
    # 3 style tasks + 6 batches of 2, each run once, on the two GPU workers only (both used).
    workers = Counter(names[task["worker"]] for task in stream.data)
    assert sum(workers.values()) == 3 + 6
    assert set(workers) == {"gpu-0", "gpu-1"}
    # One run.json and one gallery with all 12 results.
    assert json.loads((out / "run.json").read_text())["counts"]["done"] == 12
    assert len(list((out / "results").glob("*.png"))) == 12
    gallery = (out / "index.html").read_text()
    assert gallery.count("data-pair=") == 12
    assert not (out / "shards").exists()
