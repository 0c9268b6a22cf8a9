"""A real `prefect server start` for the session, deployments run by real workers, a real browser.

These tests talk to their own server (not the in-process test harness the flow tests use):
subprocesses get PREFECT_API_URL, and in-process calls go through `api_client()`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.flows.test_stylize_manifest import write_manifest
from tests.prefect_process import Server, free_port, start_process, stop_process, tail, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
RUN_TIMEOUT = 300
WORK_POOL = "nst-ui-tests"
GPU_LIMIT = "nst-gpu-ui-tests"


@dataclass
class WebhookReceiver:
    """A plain HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    url: str
    received: list[dict[str, Any]]


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                received.append({"path": self.path, **json.loads(body)})
            except ValueError:
                received.append({"path": self.path, "raw": body.decode(errors="replace")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/nst-alert", received)
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class DeployedRun:
    """A manifest deployed with `nst deploy` and run once by a `prefect worker` process."""

    deployment_name: str  # "stylize-manifest/<name>"
    manifest: Path
    output: Path
    flow_run: Any  # prefect.client.schemas.objects.FlowRun, final state
    worker_log: Path
    webhook: WebhookReceiver  # where its failure alert goes (--notify-webhook)


def client_env(server: Server) -> dict[str, str]:
    """Environment for `nst`, `prefect worker` and the flow runs they start."""
    env = dict(os.environ)
    env.update({"PREFECT_API_URL": server.api_url, "PYTHONUNBUFFERED": "1",
                "PREFECT_WORKER_QUERY_SECONDS": "2",  # default 10 s: a triggered run waits less
                "PREFECT_RUNNER_POLL_FREQUENCY": "2"})
    return env


@contextlib.contextmanager
def api_client(server: Server) -> Iterator[Any]:
    """A sync Prefect client for this server, whatever server the rest of the session uses."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        with get_client(sync_client=True) as client:
            yield client


def run_deployment_on(server: Server, name: str, log: Path, **parameters: Any) -> Any:
    """Trigger a deployment and wait for its flow run to end; return the flow run."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        # _sync: playwright's sync API keeps an event loop running in this thread, and Prefect
        # would otherwise hand back the async variant's coroutine.
        flow_run = run_deployment(name, parameters=parameters or None, timeout=RUN_TIMEOUT, poll_interval=1,
                                  as_subflow=False, _sync=True)
    if not flow_run.state or not flow_run.state.is_final():
        pytest.fail(f"{name}: flow run {flow_run.id} still {flow_run.state} after {RUN_TIMEOUT} s\n"
                    f"log {log}:\n{tail(log)}")
    return flow_run


def wait_for_last_log(server: Server, flow_run_id: Any, log: Path, timeout: float = 60) -> None:
    """Wait for the run's own "Finished in state" log line, its process's last act.

    A run's state is final in the API a moment before its process has shipped its last logs;
    stopping the worker (or `nst serve`) then would kill the process and lose them.
    """
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    def finished() -> bool:
        with api_client(server) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
        return any(entry.message.startswith("Finished in state") and entry.task_run_id is None for entry in logs)

    wait_for(finished, timeout, f"flow run {flow_run_id}: its last log line", log=log)


@pytest.fixture(scope="session")
def prefect_ui_server(prefect_server_process: Server) -> Server:
    return prefect_server_process


def _nst(*args: str) -> list[str]:
    return [sys.executable, "-m", "nst_cli", *args]


def run_nst(server: Server, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_nst(*args), cwd=REPO_ROOT, env=client_env(server), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def deployed_run(prefect_ui_server: Server, tmp_path_factory: pytest.TempPathFactory,
                 webhook_receiver: WebhookReceiver) -> DeployedRun:
    """`nst deploy` of a 3 x 2 manifest with one corrupt photo, run once by a process worker,
    with a failure alert to a local webhook receiver.

    Shared by the deployment and browser tests: one flow run is enough to look at, and each
    run costs a subprocess that imports torch.
    """
    folder = tmp_path_factory.mktemp("deployed") / "ui-gallery"
    manifest = write_manifest(folder, contents=3, styles=2)
    photo = folder / "images" / "photo1.png"
    photo.write_bytes(photo.read_bytes()[:200])  # truncated: its two pairs fail, the rest go on

    deployed = run_nst(prefect_ui_server, "deploy", str(manifest), "--pool", WORK_POOL, "--cron", "0 3 * * *",
                       "--gpu-limit", GPU_LIMIT, "--batch-size", "1", "--notify-webhook", webhook_receiver.url)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "stylize-manifest/ui-gallery" in deployed.stdout

    log = folder.parent / "worker.log"
    worker = start_process([sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL],
                           log, client_env(prefect_ui_server))
    try:
        flow_run = run_deployment_on(prefect_ui_server, "stylize-manifest/ui-gallery", log)
        wait_for_last_log(prefect_ui_server, flow_run.id, log)
    finally:
        stop_process(worker)
    return DeployedRun(deployment_name="stylize-manifest/ui-gallery", manifest=manifest, output=folder / "out",
                       flow_run=flow_run, worker_log=log, webhook=webhook_receiver)


# --- the browser ---------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _require_browser() -> None:
    """Skip where a developer has no chromium; in CI (env CI set) its absence is a failure."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(f"browser tests need chromium: {missing}")


# Module scope: playwright's sync API keeps an event loop running in this thread while it is
# open, and Prefect's sync calls then hand back coroutines; later tests must not inherit it.
@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    """Headless Debian chromium driven by playwright, with a fresh profile (user data dir)."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nst-chromium-") as profile, sync_playwright() as playwright:
        # launch_persistent_context is playwright's way of passing --user-data-dir.
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)  # the UI renders slowly on 2 busy cores
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    page = browser_context.new_page()
    try:
        yield page
    finally:
        page.close()
