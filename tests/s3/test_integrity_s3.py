"""S3 on a real S3-compatible server: a corrupt local copy of s3:// weights is detected
(sha256 recorded at fetch), said by `nst validate`, and fetched again; a frozen output store
ends a run in bounded time."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from tasks.weights import local_weights, weights_problem


def test_a_corrupt_local_copy_of_s3_weights_is_fetched_again(s3_env, bucket, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NST_WEIGHTS_CACHE", str(tmp_path / "weights"))
    body = bytes(range(256)) * 64  # the fetch and its check do not read the shapes (the engine does)
    s3_env.client().put_object(Bucket=bucket, Key="vgg.pth", Body=body)
    uri = f"s3://{bucket}/vgg.pth"
    copy = Path(local_weights(uri))
    original = hashlib.sha256(body).hexdigest()
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == original
    assert (copy.parent / (copy.name + ".sha256")).read_text().strip() == original

    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the disk (or a hand) changed it
    copy.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert weights_problem(uri) is None  # nst validate: usable, and it says the copy was bad
    assert "is corrupt" in caplog.text and str(copy) in caplog.text
    copy.write_bytes(bytes(data))
    assert Path(local_weights(uri)) == copy and hashlib.sha256(copy.read_bytes()).hexdigest() == original


def test_an_oddly_named_object_in_a_glob_is_left_out_not_fatal(s3_env, bucket) -> None:
    import io

    from PIL import Image

    from tasks.manifest import load_manifest

    def png() -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (9, 9, 9)).save(buffer, "PNG")
        return buffer.getvalue()

    client = s3_env.client()
    for key in ("in/a.png", "in/b c.png", "in/d\u00e9j\u00e0 vu.png", "art/s.png", "out/results/a--s.png"):
        client.put_object(Bucket=bucket, Key=key, Body=png())
    client.put_object(Bucket=bucket, Key="m.yaml", Body=b"version: 1\nname: g\noutput: out\ncontents: ['**/*.png']\n"
                                                         b"styles: [art/s.png]\nengine: {weights: random}\n")
    manifest = load_manifest(f"s3://{bucket}/m.yaml")
    assert [c.id for c in manifest.contents] == ["s", "a"] or [c.id for c in manifest.contents] == ["a", "s"]
    assert len(manifest.notes) == 2 and all("left out" in str(n) for n in manifest.notes)


def test_a_frozen_output_store_ends_the_run_after_one_request(tmp_path: Path, prefect_server, s3_server, via_proxy,
                                                             bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every upload hangs (the store reads the request and never answers). The first result's
    upload times out after its retries; no other request is sent for 120 s, so the pairs not yet
    run fail at once instead of each waiting out a request's retries, and the run ends with
    the reason (before: 60 s x 5 attempts per request, per pair and per report)."""
    import time

    from flows.stylize_manifest import run_manifest
    from tasks.options import RunOptions
    from tasks.stores import s3
    from tests.s3.test_s3_flow import s3_manifest

    monkeypatch.setenv("NST_S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("NST_S3_MAX_ATTEMPTS", "2")
    s3._client.cache_clear()
    manifest = s3_manifest(tmp_path / "frozen", s3_server, bucket, contents=3, styles=2,
                           engine="size: 32, iterations: 2")
    via_proxy.arm("hang", method="PUT", path_contains="/gallery/results/", times=-1)
    started = time.monotonic()
    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
    assert time.monotonic() - started < 90
    assert state.is_failed() and report["counts"] == {"done": 0, "skipped": 0, "failed": 6}
    reasons = [p["reason"] for p in report["pairs"]]
    assert sum("Read timeout" in r for r in reasons) >= 1, reasons
    assert sum(r.startswith("not started: the output store did not answer") for r in reasons) >= 4, reasons
    assert "did not answer" in report["report_error"]
    hung = [seen for seen in via_proxy.seen if seen.method == "PUT" and seen.status == 0]
    assert 1 <= len(hung) <= 2  # one upload and its retry, nothing after


def test_a_dry_run_does_not_fetch_s3_weights(s3_env, bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run writes nothing, so it does not download s3:// weights to hash them: with no
    local copy its pairs plan as to do; once a run fetched them, it knows them by the recorded sha256."""
    from tasks.manifest import load_manifest
    from tasks.options import RunOptions
    from tasks.run_setup import prepare_run
    from tests.conftest import make_image

    cache = tmp_path / "weights"
    monkeypatch.setenv("NST_WEIGHTS_CACHE", str(cache))
    s3_env.client().put_object(Bucket=bucket, Key="vgg.pth", Body=bytes(range(256)) * 64)
    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text(f"version: 1\nname: d\ncontents: [c.png]\nstyles: [s.png]\ncache: cache\n"
                                     f"engine: {{size: 32, iterations: 1, weights: 's3://{bucket}/vgg.pth'}}\n")

    dry = prepare_run(load_manifest(str(tmp_path / "m.yaml")), RunOptions().resolved(), dry_run=True)
    assert len(dry.plan.todo) == 1 and dry.plan.todo[0].weights_id.startswith("not fetched: s3://")
    assert not cache.exists() and not (tmp_path / "cache").exists()

    real = prepare_run(load_manifest(str(tmp_path / "m.yaml")), RunOptions().resolved())  # fetches
    assert real.plan.todo[0].weights_id.startswith("sha256:") and any(cache.iterdir())
    again = prepare_run(load_manifest(str(tmp_path / "m.yaml")), RunOptions().resolved(), dry_run=True)
    assert again.plan.todo[0].weights_id == real.plan.todo[0].weights_id
