"""S3 weights on a real S3-compatible server: a corrupt local copy of s3:// weights is
detected (sha256 recorded at fetch), said by `nst validate`, and fetched again."""

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
