"""Faults: hostile cache files and bad local copies end in bounded time
with a clear reason."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from tasks.plan_index import MAX_INDEX_BYTES, PlanIndex, index_key
from tasks.stores import StorageError
from tasks.stores.local import LocalStorage


def test_a_gzip_bomb_plan_index_is_ignored_not_inflated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = index_key("/some/output")
    bomb = gzip.compress(b"[" + b" " * (MAX_INDEX_BYTES + 10) + b"]", compresslevel=9)
    assert len(bomb) < MAX_INDEX_BYTES // 500
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(bomb)
    index = PlanIndex.open(str(tmp_path), "/some/output")
    assert index.inputs == {} and "inflates past 64 MiB" in caplog.text


def test_a_fifo_in_place_of_a_cache_entry_is_refused_at_once(tmp_path: Path) -> None:
    from tasks.style_cache import StyleCache

    storage = LocalStorage(tmp_path)
    (tmp_path / "style-targets" / "ab").mkdir(parents=True)
    os.mkfifo(tmp_path / "style-targets" / "ab" / "abcd.pt")
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(StyleCache(storage).get("abcd")), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive() and result == [None]  # missing, so recomputed; never a hang
    with pytest.raises(StorageError, match="not a regular file"):
        storage.read("style-targets/ab/abcd.pt")


def test_a_stop_that_hangs_ends_after_the_grace_period(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    script = ("import time\nfrom nst_cli.interrupts import run_beside_signal_handlers, stop_on_signals\n"
              "with stop_on_signals('run'):\n    print('ready', flush=True)\n"
              "    run_beside_signal_handlers(lambda: time.sleep(120))  # a request that never returns\n")
    env = {**os.environ, "NST_STOP_GRACE_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[2])
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and time.monotonic() - started < 10
    assert "did not stop within 1 s" in err and "Traceback" not in err


def test_an_unreachable_prefect_api_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from nst_cli.prefect_api import free_port
    from tests.conftest import make_image

    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: u\ncontents: [c.png]\nstyles: [s.png]\ncache: cache\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    url = f"http://127.0.0.1:{free_port()}/api"
    done = subprocess.run([sys.executable, "-m", "nst_cli", "run", str(tmp_path / "m.yaml"), "--quiet"],
                          env={**os.environ, "PREFECT_API_URL": url}, capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"nst run: error: PREFECT_API_URL={url} does not answer")
    assert not (tmp_path / "out" / "u" / "results").exists()


def test_a_prefect_server_lost_mid_run_is_one_line(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from nst_cli import manifest_commands
    from nst_cli.main import main

    def lost(_args: object) -> int:
        request = httpx.Request("POST", "http://127.0.0.1:4599/api/task_runs/")
        try:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        except httpx.ConnectError as exc:
            raise RuntimeError("Failed to set task state") from exc  # as Prefect wraps it

    monkeypatch.setattr(manifest_commands, "cmd_run", lost)
    assert main(["run", "m.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nst run: error: the Prefect server at http://127.0.0.1:4599 stopped answering (ConnectError")
