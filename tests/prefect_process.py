"""A real `prefect server start` in a subprocess, reachable by other processes (workers, `nst`),
with the UI; plus small process helpers the UI and scale-out tests share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import pytest

from nst_cli.prefect_api import api_healthy, free_port  # the same checks `nst run` uses

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT = 240  # a fresh database migrates in ~30 s here; more when the cores are busy


@dataclass(frozen=True)
class Server:
    url: str  # the UI, e.g. http://127.0.0.1:43123
    api_url: str  # url + /api
    log: Path


def start_process(args: list[str], log: Path, env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.Popen[bytes]:
    """Start a command in its own process group (so it and its children can be stopped together)."""
    handle: IO[bytes] = log.open("wb")
    try:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        handle.close()  # the child holds its own copy


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM the process group (what a service manager would send), SIGKILL if it hangs."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return int(proc.returncode)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5,
             log: Path | None = None) -> Any:
    """Poll until condition() is truthy and return it; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f} s" + (f"\nlog {log}:\n{tail(log)}" if log else ""))
        time.sleep(interval)


def serve_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`prefect server start` on a free port with its own PREFECT_HOME (database), stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                # The UI asks the server where the API is; without this it answers port 4200
                # whatever --port says (Prefect 3.9.0), and every page stays empty.
                "PREFECT_UI_API_URL": f"{url}/api",
                # Links the server writes itself (automation notifications) need it: unset, they are "None".
                "PREFECT_UI_URL": url})
    log = home / "server.log"
    proc = start_process([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                          "--port", str(port)], log, env)
    try:
        wait_for(lambda: proc.poll() is not None or api_healthy(f"{url}/api"), SERVER_START_TIMEOUT,
                 "prefect server start: /api/health", log=log)
        if proc.poll() is not None:
            pytest.fail(f"prefect server start exited with {proc.returncode}:\n{tail(log)}")
        yield Server(url=url, api_url=f"{url}/api", log=log)
    finally:
        stop_process(proc)
