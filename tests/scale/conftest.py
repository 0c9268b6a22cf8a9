"""A real `prefect server start` (a subprocess other processes can reach) and Prefect workers.

The test harness's server (tests/conftest.py `prefect_server`) is enough for flows in this
process and their Dask workers; Prefect workers are separate programs and need a server at a
URL: the session's `prefect_server_process`, shared with the UI tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.prefect_process import Server

BIN = Path(sys.executable).parent


def prefect_env(api_url: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that talks to `api_url` (a worker, a parent CLI run)."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "5", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("PREFECT_PROFILES_PATH", None)
    return env


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started in its own session, with everything it started (its group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


@pytest.fixture(scope="session")
def prefect_api_server(prefect_server_process: Server) -> str:
    """The session's `prefect server start` (tests/prefect_process.py), by its API URL."""
    return prefect_server_process.api_url


@pytest.fixture
def prefect_api(prefect_api_server: str) -> Iterator[str]:
    """This test process talks to the subprocess server (flows run here, clients, run_deployment)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_api_server}):
        yield prefect_api_server
        _drain()


def _drain() -> None:
    """Send this process's buffered logs and events now, while the server is up: at exit they
    would retry against a stopped server for about a minute (what prefect_test_harness does too)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.instance().drain()
    except RuntimeError:  # never started
        pass
    EventsWorker.drain_all()


@pytest.fixture
def start_worker(prefect_api: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `prefect worker start --pool POOL --limit 1` processes; all stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, pool: str, gpu: str) -> subprocess.Popen[bytes]:
        home = tmp_path / f"home-{name}"
        home.mkdir()
        log = (tmp_path / f"{name}.log").open("wb")
        worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process",
                                   "--limit", "1", "--name", name],
                                  env=prefect_env(prefect_api, home, CUDA_VISIBLE_DEVICES=gpu),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        stop_group(worker)
