"""The manifest flow with every location on S3 (a real SeaweedFS server), faults included."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tasks.options import RunOptions
from flows.stylize_manifest import run_manifest
from tests.conftest import make_image
from tests.s3support.seaweed import SECRET_KEY, SeaweedServer


def s3_manifest(folder: Path, server: SeaweedServer, bucket: str, contents: int, styles: int,
                engine: str, weights: str = "random:7") -> Path:
    """Inputs uploaded to s3://bucket/in/, output and cache on S3 too; the manifest stays local."""
    client = server.client()
    for i in range(contents):
        client.put_object(Bucket=bucket, Key=f"in/photo{i}.png", Body=_png(make_image(48, 36, seed=i)))  # type: ignore[attr-defined]
    for j in range(styles):
        client.put_object(Bucket=bucket, Key=f"in/art{j}.png",  # type: ignore[attr-defined]
                          Body=_png(make_image(40, 40, seed=100 + j, kind="style")))
    lines = ["version: 1", f"name: {folder.name}", f"output: s3://{bucket}/gallery", f"cache: s3://{bucket}/cache",
             "contents:", *(f"  - {{id: photo{i}, uri: s3://{bucket}/in/photo{i}.png}}" for i in range(contents)),
             "styles:", *(f"  - {{id: art{j}, uri: s3://{bucket}/in/art{j}.png}}" for j in range(styles)),
             f"engine: {{{engine}, weights: '{weights}'}}"]
    folder.mkdir(parents=True)
    path = folder / "manifest.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def objects(server: SeaweedServer, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])  # type: ignore[attr-defined]
    return {item["Key"][len(prefix):]: item for item in listed}


def assert_intact(server: SeaweedServer, bucket: str, key: str) -> bytes:
    """The object's bytes hash to the SHA-256 the server stored when it accepted the upload."""
    head = server.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")  # type: ignore[attr-defined]
    body = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode(), key
    return body


def test_s3_manifest_end_to_end_with_503s_then_rerun_skips(tmp_path, prefect_server, s3_env, via_proxy, bucket,
                                                            weights_file, monkeypatch, caplog, capfd):
    monkeypatch.setenv("NST_WEIGHTS_CACHE", str(tmp_path / "weights-cache"))
    server, seaweed = via_proxy, s3_env  # the pipeline talks to the proxy; checks go straight to the server
    seaweed.client().upload_file(str(weights_file), bucket, "models/vgg19.pth")  # type: ignore[attr-defined]
    manifest = s3_manifest(tmp_path / "s3-gallery", seaweed, bucket, contents=2, styles=2,
                           engine="size: 32, iterations: 3", weights=f"s3://{bucket}/models/vgg19.pth")
    # SlowDown twice on one image and once on another's provenance: each needs a retry (3 attempts).
    server.arm("503", "PUT", "/gallery/results/photo0--art0.png", times=2)
    server.arm("503", "PUT", "/gallery/results/photo1--art1.json", times=1)

    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))

    assert state.is_completed(), state.message
    assert report["counts"] == {"done": 4, "skipped": 0, "failed": 0}
    assert report["style_targets"]["computed"] == 2
    assert sum(1 for s in server.seen if s.status == 503) == 3  # every injected fault was met and retried
    stored = objects(seaweed, bucket, "gallery/")
    pairs = [f"photo{c}--art{s}" for c in range(2) for s in range(2)]
    assert sorted(stored) == sorted([".nst-output", "index.html", "run.json"] + [f"results/{p}.png" for p in pairs]
                                    + [f"results/{p}.json" for p in pairs] + [f"thumbs/{p}.jpg" for p in pairs]
                                    + [f"thumbs/inputs/content/photo{c}.jpg" for c in range(2)]  # gallery headers
                                    + [f"thumbs/inputs/style/art{s}.jpg" for s in range(2)])
    client = seaweed.client()
    for pair in pairs:
        content, style = pair.split("--")
        for key, kind in ((f"results/{pair}.png", "image/png"), (f"thumbs/{pair}.jpg", "image/jpeg"),
                          (f"results/{pair}.json", "application/json")):
            head = client.head_object(Bucket=bucket, Key=f"gallery/{key}")  # type: ignore[attr-defined]
            assert head["ContentType"] == kind
            assert head["Metadata"]["content"] == content and head["Metadata"]["style"] == style
            assert len(head["Metadata"]["fingerprint"]) == 64
        provenance = json.loads(assert_intact(seaweed, bucket, f"gallery/results/{pair}.json"))
        assert provenance["weights"]["source"] == f"s3://{bucket}/models/vgg19.pth"
        assert provenance["fingerprint"] == head["Metadata"]["fingerprint"]
        assert_intact(seaweed, bucket, f"gallery/results/{pair}.png")
    assert len(objects(seaweed, bucket, "cache/style-targets/")) == 2
    head = client.head_object(Bucket=bucket, Key="gallery/index.html")  # type: ignore[attr-defined]
    assert head["ContentType"] == "text/html"
    gallery = client.get_object(Bucket=bucket, Key="gallery/index.html")["Body"].read().decode()  # type: ignore[attr-defined]
    assert 'src="thumbs/photo1--art0.jpg"' in gallery  # relative: works as a static website
    run_json = json.loads(client.get_object(Bucket=bucket, Key="gallery/run.json")["Body"].read())  # type: ignore[attr-defined]
    link = next(p["link"] for p in run_json["pairs"] if p["content"] == "photo0" and p["style"] == "art1")
    assert "X-Amz-Signature=" in link
    with urllib.request.urlopen(link, timeout=10) as response:
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"

    # Rerun: nothing is recomputed or uploaded again.
    before = {k: v["ETag"] for k, v in objects(seaweed, bucket, "gallery/results/").items()}
    server.clear()
    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
    assert report["counts"] == {"done": 0, "skipped": 4, "failed": 0}
    assert not [s for s in server.seen if s.method == "PUT" and "/results/" in s.path]
    assert {k: v["ETag"] for k, v in objects(seaweed, bucket, "gallery/results/").items()} == before

    everything = json.dumps(report) + json.dumps(run_json) + caplog.text + "".join(capfd.readouterr())
    assert SECRET_KEY not in everything


def test_server_killed_mid_run_then_rerun_finishes_with_nothing_lost(tmp_path, prefect_server, s3_env, bucket,
                                                                    caplog):
    server = s3_env
    manifest = s3_manifest(tmp_path / "s3-crash", server, bucket, contents=4, styles=2,
                           engine="size: 40, iterations: 25")
    killed = threading.Event()

    def kill_after_first_result() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(k.endswith(".json") for k in objects(server, bucket, "gallery/results/")):
                server.kill()
                killed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_after_first_result, daemon=True)
    watcher.start()
    try:
        state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
        watcher.join(timeout=5)
        assert killed.is_set(), "the run finished before the server could be killed"
        assert state.is_failed()
        counts = report["counts"]
        assert counts["failed"] >= 1 and counts["done"] >= 1 and counts["done"] + counts["failed"] == 8
        reasons = [p["reason"] for p in report["pairs"] if p["status"] == "failed"]
        assert all("EndpointConnectionError" in r or "Could not connect" in r for r in reasons), reasons
        assert "report_error" in report  # run.json could not be written: said, not raised
        done_before = {f"{p['content']}--{p['style']}" for p in report["pairs"] if p["status"] == "done"}
    finally:
        if not server.process:
            server.start()

    survivors = {k: v["ETag"] for k, v in objects(server, bucket, "gallery/results/").items()}
    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
    assert state.is_completed(), state.message
    assert report["counts"] == {"done": 8 - len(done_before), "skipped": len(done_before), "failed": 0}
    assert {f"{p['content']}--{p['style']}" for p in report["pairs"] if p["status"] == "skipped"} == done_before
    stored = objects(server, bucket, "gallery/results/")
    pairs = [f"photo{c}--art{s}" for c in range(4) for s in range(2)]
    assert sorted(stored) == sorted([f"{p}.png" for p in pairs] + [f"{p}.json" for p in pairs])  # each once
    for pair in done_before:  # finished results were not touched by the rerun
        assert stored[f"{pair}.png"]["ETag"] == survivors[f"{pair}.png"]
    for pair in pairs:
        image = assert_intact(server, bucket, f"gallery/results/{pair}.png")
        record = json.loads(assert_intact(server, bucket, f"gallery/results/{pair}.json"))
        assert record["pair"] == pair and image[:8] == b"\x89PNG\r\n\x1a\n"
    assert SECRET_KEY not in caplog.text + json.dumps(report)
