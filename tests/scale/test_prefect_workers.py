"""Scale-out on Prefect workers: a sharded manifest over two `prefect worker start` processes on
one process work pool, against a real `prefect server start`; then a worker killed mid-run and a
rerun of the parent that finishes only what is missing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

from deployments.shards import deploy_shard_flow
from tasks.options import RunOptions
from tasks.shards import assign_shards
from tests.flows.test_stylize_manifest import write_manifest
from tests.scale.conftest import prefect_env, stop_group

ROOT = Path(__file__).parents[2]
POOL = "nst-test-gpus"
PAIRS = [(f"photo{c}", f"art{s}") for c in range(4) for s in range(3)]


def _wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _online_workers(pool: str) -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {w.name for w in client.read_workers_for_work_pool(pool) if w.status and w.status.value == "ONLINE"}


def _parent(manifest: Path, api_url: str, home: Path, log: Path, shards: int = 2) -> subprocess.Popen[bytes]:
    """`nst run MANIFEST --shards N` in its own process group (so the test can stop it)."""
    home.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "nst_cli", "run", str(manifest), "--shards", str(shards),
                             "--batch-size", "1", "--shard-timeout", "300"],
                            cwd=ROOT, env=prefect_env(api_url, home), stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _finish(parent: subprocess.Popen[bytes], log: Path, timeout: float = 400) -> None:
    try:
        parent.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(parent)
        raise AssertionError(f"parent run did not end; log:\n{log.read_text()[-3000:]}") from None
    assert parent.returncode == 0, log.read_text()[-3000:]


def _done(out: Path) -> dict[tuple[str, str], str]:
    """Pairs whose provenance (written last) is there, with the provenance's digest."""
    found = {}
    for path in (out / "results").glob("*.json"):
        content, style = path.stem.split("--")
        found[(content, style)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _shard_pairs(count: int) -> dict[int, set[tuple[str, str]]]:
    shards: dict[int, set[tuple[str, str]]] = {}
    for pair, number in assign_shards(PAIRS, count).items():
        shards.setdefault(number, set()).add(pair)
    return shards


def _tails(folder: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(folder.glob("worker-*.log")))


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and every process under it (its flow run may sit in a session of its own)."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    os.killpg(process.pid, signal.SIGKILL)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout=30)
    psutil.wait_procs(children, timeout=30)


@pytest.mark.slow
def test_two_prefect_workers_share_a_sharded_manifest_and_a_rerun_finishes_a_killed_one(
        tmp_path: Path, prefect_api: str, start_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    deploy_shard_flow(POOL)
    worker_a = start_worker("worker-a", POOL, gpu="0")
    start_worker("worker-b", POOL, gpu="1")
    _wait_for(lambda: _online_workers(POOL) == {"worker-a", "worker-b"}, 120, "both workers online")
    # 1. A 4 x 3 manifest in 4 shards of 3 pairs: they spread over both workers (each runs one
    # at a time), the parent merges them. Four, not two: a worker that is slow to poll (its API
    # calls retried while SQLite is busy) could otherwise see the other finish both shards first.
    manifest = write_manifest(tmp_path / "sharded-4x3", contents=4, styles=3, engine="{size: 32, iterations: 10}")
    out = manifest.parent / "out"
    log = tmp_path / "parent-1.log"
    _finish(_parent(manifest, prefect_api, tmp_path / "home-parent", log, shards=4), log)
    assert "sharded-4x3: 12 done, 0 skipped, 0 failed; style targets computed: 3" in log.read_text(), \
        log.read_text()[-3000:]
    report = json.loads((out / "run.json").read_text())
    why = f"shards: {report['shards']}\nworker logs:\n{_tails(tmp_path)}"
    assert Counter((p["content"], p["style"]) for p in report["pairs"]) == Counter(PAIRS)  # each pair once
    assert report["counts"] == {"done": 12, "skipped": 0, "failed": 0}
    # The parent computed the 3 style targets into the shared cache; the shards computed none.
    assert report["style_targets"]["computed"] == 3
    assert len(list((manifest.parent / "cache").rglob("*.pt"))) == 3
    shards = {s["shard"]: s for s in report["shards"]}
    assert set(shards) == {f"{i}/4" for i in range(1, 5)}, why
    assert all(s["state"] == "COMPLETED" and s["pairs"] == 3 for s in shards.values()), why
    assert {s["cuda_visible_devices"] for s in shards.values()} == {"0", "1"}, why  # both workers took shards
    for number, pairs in _shard_pairs(4).items():
        shard_report = json.loads((out / "shards" / f"{number}-of-4.json").read_text())
        assert {(p["content"], p["style"]) for p in shard_report["pairs"]} == pairs
    gallery = (out / "index.html").read_text()
    assert gallery.count("data-pair=") == 12
    assert all(f'href="results/{c}--{s}.png"' in gallery for c, s in PAIRS)

    # 2. Two shards of slower pairs; worker A is killed once its shard has finished a pair.
    shard_of = assign_shards(PAIRS, 2)
    manifest = write_manifest(tmp_path / "sharded-kill", contents=4, styles=3, engine="{size: 48, iterations: 40}")
    out = manifest.parent / "out"
    log = tmp_path / "parent-2.log"
    parent = _parent(manifest, prefect_api, tmp_path / "home-parent", log)
    try:
        a_shard = _wait_for(lambda: _shard_run_by(worker_a), 240, "worker A to start a shard")
        a_pairs = {pair for pair, n in shard_of.items() if n == a_shard}
        _wait_for(lambda: set(_done(out)) & a_pairs, 240, "worker A to finish a pair")
        _kill_tree(worker_a)
    finally:
        stop_group(parent, signal.SIGKILL)  # the parent would wait for the killed shard
    b_shard = 3 - a_shard
    _wait_for(lambda: (out / "shards" / f"{b_shard}-of-2.json").exists(), 300, "worker B's shard to finish")
    before = _done(out)
    missing = set(PAIRS) - set(before)
    assert missing and missing <= a_pairs, "worker A was killed before or after its shard's pairs"

    log = tmp_path / "parent-3.log"
    _finish(_parent(manifest, prefect_api, tmp_path / "home-parent", log), log)
    report = json.loads((out / "run.json").read_text())
    assert Counter((p["content"], p["style"]) for p in report["pairs"]) == Counter(PAIRS)
    done = {(p["content"], p["style"]) for p in report["pairs"] if p["status"] == "done"}
    assert done == missing  # only the missing pairs were redone
    assert report["counts"] == {"done": len(missing), "skipped": 12 - len(missing), "failed": 0}
    assert report["style_targets"]["computed"] == 0
    after = _done(out)
    assert set(after) == set(PAIRS) and all(after[pair] == digest for pair, digest in before.items())
    assert all(s["state"] == "COMPLETED" and s["cuda_visible_devices"] == "1" for s in report["shards"])
    assert (out / "index.html").read_text().count("data-pair=") == 12


def _shard_run_by(worker: subprocess.Popen[bytes]) -> int | None:
    """The shard (1 or 2) of the flow run a worker process is running now, if any."""
    from prefect.client.orchestration import get_client

    try:
        children = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if run_id:
            with get_client(sync_client=True) as client:
                shard = client.read_flow_run(run_id).parameters.get("options", {}).get("shard")
            if shard:
                return int(shard.split("/")[0])
    return None


def test_the_parent_reports_shards_no_worker_took_and_what_they_left(tmp_path: Path, prefect_api: str) -> None:
    from prefect.client.orchestration import get_client

    from flows.sharded import run_sharded
    from flows.stylize_manifest import run_manifest

    deploy_shard_flow("nst-test-idle", name="nst-shard-idle")  # a pool no worker polls
    manifest = write_manifest(tmp_path / "sharded-idle", contents=4, styles=3, engine="{size: 32, iterations: 2}")
    state, _ = run_manifest(str(manifest), RunOptions(only=["photo0"]))  # 3 pairs already done, outside any shard
    assert state.is_completed(), state.message

    state, report = run_sharded(str(manifest), 2, deployment="stylize-manifest/nst-shard-idle",
                                shard_timeout=3, poll_interval=0.5, precompute_styles=False)
    assert state.is_failed() and "shards not finished: 1/2, 2/2" in state.message
    assert Counter((p["content"], p["style"]) for p in report["pairs"]) == Counter(PAIRS)
    statuses = {(p["content"], p["style"]): p for p in report["pairs"]}
    assert {pair for pair, p in statuses.items() if p["status"] == "skipped"} == {p for p in PAIRS if p[0] == "photo0"}
    failed = [p for p in statuses.values() if p["status"] == "failed"]
    assert len(failed) == 9 and all("did not finish" in p["reason"] and "no free worker" in p["reason"]
                                    and "rerun" in p["reason"] for p in failed)
    out = manifest.parent / "out"
    assert json.loads((out / "run.json").read_text())["counts"] == {"done": 0, "skipped": 3, "failed": 9}
    gallery = (out / "index.html").read_text()
    assert gallery.count("data-pair=") == 3 and gallery.count('class="failed"') == 9
    with get_client(sync_client=True) as client:  # cancelled, so they cannot start after the report
        states = {client.read_flow_run(s["flow_run"]).state.type.value for s in report["shards"]}
    assert states == {"CANCELLED"}
