"""Running a manifest's tasks on a Dask cluster (prefect-dask): one Dask worker per GPU.

Each worker process owns one GPU (CUDA_VISIBLE_DEVICES) and declares one unit of the `GPU`
resource with a single thread; every task the flow submits asks for one unit, so the scheduler
hands a style target or a pair batch only to a worker whose GPU is free, on any machine.

`pip install 'nst-pipeline[dask]'` pulls prefect-dask (and distributed). Scripts that start a
LocalCluster need an `if __name__ == "__main__":` guard (workers are spawned processes).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Optional

import dask
from distributed import Nanny, Scheduler, SpecCluster
from prefect_dask import DaskTaskRunner

GPU_RESOURCE = "GPU"
log = logging.getLogger(__name__)

# distributed's Nanny exports MALLOC_TRIM_THRESHOLD_=65536 and one OpenMP/BLAS thread to every
# worker process (and into this process's environment). A fixed trim threshold also switches off
# glibc's adaptive mmap threshold, so torch's CPU tensors are mmap'd and faulted in afresh on every
# allocation: measured here, one 96 px pair went from 3.3 s to 24.8 s. Threads are set per worker.
NANNY_ENV_OFF = {f"distributed.nanny.pre-spawn-environ.{name}": None
                 for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


class GpuDaskTaskRunner(DaskTaskRunner):
    """prefect-dask's DaskTaskRunner whose every submission holds one unit of `GPU`.

    Every task this pipeline submits (style target, pair batch) is engine work. prefect-dask's
    submit takes no resources argument, but distributed merges the `dask.annotate` context into
    Client.submit's annotations, and prefect-dask calls Client.submit in this thread.
    """

    _checked_workers = False

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Optional[Iterable[Any]] = None,
               dependencies: Optional[dict[str, Any]] = None) -> Any:
        if not self._checked_workers:
            self._checked_workers = True
            _warn_without_gpu_workers(self.client)
        with dask.annotate(resources={GPU_RESOURCE: 1}):
            return super().submit(task, parameters, wait_for, dependencies)


def _warn_without_gpu_workers(client: Any) -> None:
    """Tasks wait forever on a cluster where no worker declares the GPU resource: say so."""
    workers = client.scheduler_info().get("workers", {})
    if not any(w.get("resources", {}).get(GPU_RESOURCE) for w in workers.values()):
        log.warning("no Dask worker declares the %s resource yet; tasks wait until one does. Start workers "
                    "with `dask worker SCHEDULER --nthreads 1 --resources %s=1` (one per GPU)",
                    GPU_RESOURCE, GPU_RESOURCE)


def gpu_local_cluster(n_workers: int, gpus: Optional[list[str]] = None,
                      threads_per_worker: Optional[int] = None) -> SpecCluster:
    """A local cluster of `n_workers` processes, each with one thread and GPU=1.

    On a machine with CUDA devices, worker i sees only device gpus[i % len(gpus)] (set before
    the worker process starts, so before CUDA initialises); default: every visible device. With
    no GPU, each worker's torch gets cpu_count / n_workers threads (`threads_per_worker`), so
    the workers share the cores instead of oversubscribing them.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers={n_workers}: need at least one Dask worker")
    if gpus is None:
        gpus = _visible_gpus()
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // n_workers)
    workers = {}
    for i in range(n_workers):
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        workers[f"gpu-{i}"] = {"cls": Nanny, "options": {
            "nthreads": 1, "resources": {GPU_RESOURCE: 1}, "env": env, "host": "127.0.0.1",
            "dashboard": False, "silence_logs": logging.WARNING}}
    if gpus and n_workers > len(gpus):
        log.warning("%d Dask workers share %d GPUs", n_workers, len(gpus))
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False, "port": 0}}
    with dask.config.set(NANNY_ENV_OFF):  # read when the nannies are made, inside this call
        return SpecCluster(scheduler=scheduler, workers=workers, name="nst-gpu-cluster")


def _visible_gpus() -> list[str]:
    """Device ids this process may hand out: $CUDA_VISIBLE_DEVICES, else every CUDA device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def dask_task_runner(address: Optional[str] = None, workers: Optional[int] = None) -> GpuDaskTaskRunner:
    """Connect to a running scheduler (`address`), or start a local GPU cluster of `workers`
    processes (default: one per visible GPU, at least one)."""
    if address and workers:
        raise ValueError("give either a Dask scheduler address or a number of local workers, not both")
    if address:
        return GpuDaskTaskRunner(address=address)
    count = workers or max(1, len(_visible_gpus()))  # default: one worker per GPU here
    return GpuDaskTaskRunner(cluster_class=gpu_local_cluster, cluster_kwargs={"n_workers": count})
