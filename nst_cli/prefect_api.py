"""The Prefect API `nst run` reports to: the server PREFECT_API_URL names, or a temporary one.

Prefect's own temporary server outlives a parent that is killed (SIGKILL, OOM killer): it is a
plain child process, seen left running as an orphan. Ours is the same server (uvicorn serving
`prefect.server.api.server:create_app`, no UI, the same database under PREFECT_HOME) started
with the kernel's parent-death signal (Linux prctl PR_SET_PDEATHSIG), so it dies with `nst run`
however `nst run` ends; on a normal exit it is stopped like Prefect's.

A server that goes away mid-run is noticed by `ServerWatch` (our temporary server: its process
exited; a configured one: its health check failing for LOST_AFTER_SECONDS), so the run can end
in seconds instead of waiting out Prefect's retries (measured: 292 s, with a traceback, before).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from nst_cli.errors import fail

PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
HEALTH_TRIES = 3  # a configured PREFECT_API_URL is tried this many times before nst run gives up
# A configured server is lost once its health check has failed this long: about what Prefect's
# own retries give one request (5 retries, 2 + 4 + ... + 32 s), so a restart within it is ridden out.
LOST_AFTER_SECONDS = 60.0
HEALTH_EVERY_SECONDS = 5.0


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the server is still stopped on every normal exit
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_healthy(api_url: str) -> bool:
    """Whether a Prefect API (http://host:port/api) answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _answers(api_url: str) -> bool:
    """A few health checks a second apart: a server busy for a moment still counts."""
    for attempt in range(HEALTH_TRIES):
        if api_healthy(api_url):
            return True
        if attempt + 1 < HEALTH_TRIES:
            time.sleep(1)
    return False


def lost_server(exc: BaseException) -> str | None:
    """Why a run failed when the Prefect server stopped answering mid-run (its connection errors,
    after Prefect's own retries), or None for any other exception."""
    import httpx  # Prefect's HTTP client: present wherever a run could reach this

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the error may be wrapped by Prefect
        seen.add(id(current))
        if isinstance(current, httpx.TransportError):
            url = getattr(getattr(current, "request", None), "url", None) if _has_request(current) else None
            where = f" at {url.scheme}://{url.host}:{url.port}" if url is not None else ""
            return f"the Prefect server{where} stopped answering ({type(current).__name__}: {current})"
        current = current.__cause__ or current.__context__
    return None


def _has_request(exc: BaseException) -> bool:
    try:
        exc.request  # type: ignore[attr-defined]  # httpx raises RuntimeError when none was set
    except (RuntimeError, AttributeError):
        return False
    return True


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A temporary Prefect server that dies with this process; returns it and its API URL."""
    import prefect
    from prefect.settings import get_current_settings

    port = free_port()
    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
           "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + float(os.environ.get(STARTUP_TIMEOUT_ENV) or 120)
    while not api_healthy(api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"the temporary Prefect server did not start (exit {process.returncode}); "
                               f"its log: {log}")
        time.sleep(0.2)
    return process, api_url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServerWatch:
    """Whether the run's Prefect server is still there; `lost()` is cheap to call often."""

    def __init__(self, api_url: str, process: subprocess.Popen[bytes] | None = None) -> None:
        self.api_url = api_url
        self._process = process
        self._checked = self._answered = time.monotonic()
        self._reason: str | None = None

    def lost(self) -> str | None:
        """Why the server is gone, or None while it is (or may still be) there."""
        if self._reason is None:
            self._reason = self._process_exited() if self._process is not None else self._health_failing()
        return self._reason

    def _process_exited(self) -> str | None:
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return None
        return f"the temporary Prefect server at {self.api_url} exited (code {code})"

    def _health_failing(self) -> str | None:
        now = time.monotonic()
        if now - self._checked < HEALTH_EVERY_SECONDS:
            return None
        self._checked = now
        if api_healthy(self.api_url):
            self._answered = now
            return None
        if now - self._answered < LOST_AFTER_SECONDS:
            return None
        return f"the Prefect server at {self.api_url} has not answered its health check for {now - self._answered:.0f} s"


@contextlib.contextmanager
def prefect_api() -> Iterator[ServerWatch]:
    """Within the block Prefect talks to PREFECT_API_URL when set, else to a temporary server;
    the block gets the watch that says when that server is gone."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if not _answers(str(configured)):  # else Prefect retries for minutes, then a long traceback
            fail(f"PREFECT_API_URL={configured} does not answer ({configured}/health, {HEALTH_TRIES} tries): "
                 "start that server (prefect server start), fix the URL, or unset PREFECT_API_URL to run "
                 "with a temporary local server", code=1)
        yield ServerWatch(str(configured))
        return
    process, api_url = start_server(Path(PREFECT_HOME.value()) / "nst-temporary-server.log")
    watch = ServerWatch(api_url, process)
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                yield watch
            finally:
                if watch.lost() is None:  # a lost server gets nothing; trying costs 2 x 10 s
                    _send_pending_logs_and_events()
    finally:
        stop_server(process)


def _send_pending_logs_and_events() -> None:
    """Prefect batches logs and events in background workers: send them while the server is up
    (otherwise they go to a stopped server and print 'Error logging to API')."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=10)
