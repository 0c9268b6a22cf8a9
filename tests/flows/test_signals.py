"""Ctrl+C, SIGTERM and SIGKILL during `nst run`, in real processes: a prompt stop with a report
and an exit code, results written so far kept whole, and no Prefect server left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.flows.test_stylize_manifest import write_manifest

ROOT = Path(__file__).parents[2]
SLOW_ENGINE = "{size: 48, iterations: 150}"  # seconds per pair on 2 cores: time to interrupt


def _start_run(manifest: Path, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)  # a temporary server of its own
    return subprocess.Popen([sys.executable, "-m", "nst_cli", "run", str(manifest), "--batch-size", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _server_of(proc: subprocess.Popen[str]) -> psutil.Process:
    """The temporary Prefect server `nst run` started (a uvicorn child)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "prefect.server.api.server:create_app" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    raise AssertionError("no temporary server was started")


def _wait_for_first_result(out: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 600
    while not list((out / "results").glob("*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no pair finished"
        time.sleep(0.3)


def _run_past_first_result(folder: Path, home: Path) -> tuple[subprocess.Popen[str], psutil.Process, Path]:
    """`nst run` of 3 x 2 slow pairs with its own temporary server, once its first result is written."""
    manifest = write_manifest(folder, contents=3, styles=2, engine=SLOW_ENGINE)
    out = manifest.parent / "out"
    proc = _start_run(manifest, home)
    server = _server_of(proc)
    _wait_for_first_result(out, proc)
    return proc, server, out


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_within_seconds_with_a_report(tmp_path: Path, signum: int, code: int) -> None:
    proc, server, out = _run_past_first_result(tmp_path / "sig", tmp_path / "home")
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == code, stderr
    assert stopped_after < 30, f"took {stopped_after:.0f} s to stop"
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "rerun the same command" in stderr
    report = json.loads((out / "run.json").read_text())
    done = [p for p in report["pairs"] if p["status"] == "done"]
    stopped = [p for p in report["pairs"] if p["status"] == "failed"]
    assert done and stopped and len(done) + len(stopped) == 6
    assert all(signal.Signals(signum).name in p["reason"] for p in stopped)
    for pair in done:  # every result the report calls done is whole
        name = f"{pair['content']}--{pair['style']}"
        assert json.loads((out / "results" / f"{name}.json").read_text())["fingerprint"] == pair["fingerprint"]
    assert not [p for p in (out / "results").iterdir() if p.name.startswith(".")]  # no temp files left
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE


def test_a_killed_run_takes_its_temporary_server_with_it(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "kill", contents=1, styles=1, engine=SLOW_ENGINE)
    proc = _start_run(manifest, tmp_path / "home")
    server = _server_of(proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    gone, _ = psutil.wait_procs([server], timeout=20)
    assert gone, "the temporary Prefect server outlived the killed `nst run`"


def test_a_server_lost_mid_run_ends_in_seconds_with_a_report(tmp_path: Path) -> None:
    """The temporary server dies (SIGKILL) after the first result: the run ends within seconds
    instead of waiting out Prefect's retries (292 s before), with one line on why, and run.json
    and the gallery say which pairs were done and which a rerun will finish."""
    proc, server, out = _run_past_first_result(tmp_path / "lost", tmp_path / "home")
    killed = time.monotonic()
    server.kill()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert time.monotonic() - killed < 30
    assert "Traceback" not in stderr and "Error logging to API" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("nst run: error: the temporary Prefect server at http://")
    report = json.loads((out / "run.json").read_text())
    done = [p for p in report["pairs"] if p["status"] == "done"]
    unfinished = [p for p in report["pairs"] if p["status"] == "failed"]
    assert done and unfinished and len(done) + len(unfinished) == 6
    assert all(p["reason"].startswith("not finished: the temporary Prefect server") for p in unfinished)
    for pair in done:
        assert (out / "results" / f"{pair['content']}--{pair['style']}.png").is_file()
    assert "not finished" in (out / "index.html").read_text()
