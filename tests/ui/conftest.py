"""A real `prefect server start` for the session, deployments run by real workers, a real browser.

These tests talk to their own server (not the in-process test harness the flow tests use):
subprocesses get PREFECT_API_URL, and in-process calls go through `api_client()`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import pytest

from tests.flows.test_stylize_manifest import write_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
SERVER_START_TIMEOUT = 240  # a fresh database migrates in ~30 s here; more when the cores are busy
RUN_TIMEOUT = 300
WORK_POOL = "nst-ui-tests"
GPU_LIMIT = "nst-gpu-ui-tests"


@dataclass(frozen=True)
class Server:
    url: str  # the UI, e.g. http://127.0.0.1:43123
    api_url: str  # url + /api
    log: Path


@dataclass(frozen=True)
class DeployedRun:
    """A manifest deployed with `nst deploy` and run once by a `prefect worker` process."""

    deployment_name: str  # "stylize-manifest/<name>"
    manifest: Path
    output: Path
    flow_run: Any  # prefect.client.schemas.objects.FlowRun, final state
    worker_log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prefect_ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`prefect server start` on a free port with its own PREFECT_HOME (database), stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                # The UI asks the server where the API is; without this it answers port 4200
                # whatever --port says (Prefect 3.9.0), and every page stays empty.
                "PREFECT_UI_API_URL": f"{url}/api"})
    log = home / "server.log"
    proc = start_process([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                          "--port", str(port)], log, env)
    try:
        wait_for(lambda: proc.poll() is not None or _healthy(url), SERVER_START_TIMEOUT,
                 "prefect server start: /api/health", log=log)
        if proc.poll() is not None:
            pytest.fail(f"prefect server start exited with {proc.returncode}:\n{tail(log)}")
        yield Server(url=url, api_url=f"{url}/api", log=log)
    finally:
        stop_process(proc)


def _nst(*args: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *args]


def run_nst(server: Server, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_nst(*args), cwd=REPO_ROOT, env=client_env(server), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def deployed_run(prefect_ui_server: Server, tmp_path_factory: pytest.TempPathFactory) -> DeployedRun:
    """`nst deploy` of a 3 x 2 manifest with one corrupt photo, run once by a process worker.

    Shared by the deployment and browser tests: one flow run is enough to look at, and each
    run costs a subprocess that imports torch.
    """
    folder = tmp_path_factory.mktemp("deployed") / "ui-gallery"
    manifest = write_manifest(folder, contents=3, styles=2)
    photo = folder / "images" / "photo1.png"
    photo.write_bytes(photo.read_bytes()[:200])  # truncated: its two pairs fail, the rest go on

    deployed = run_nst(prefect_ui_server, "deploy", str(manifest), "--pool", WORK_POOL, "--cron", "0 3 * * *",
                       "--gpu-limit", GPU_LIMIT, "--batch-size", "1")
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
                       flow_run=flow_run, worker_log=log)


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


@pytest.fixture(scope="session")
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
