"""S3Storage and s3:// weights against a real SeaweedFS server, with faults injected by a proxy."""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tasks.stores.s3 import S3ConfigError, S3Settings
from tasks.stores import StorageError, open_storage, read_uri
from tasks.stores.s3 import S3Storage
from tests.s3support.seaweed import SECRET_KEY


def test_write_read_list_exists_and_metadata(s3_env, bucket):
    storage = open_storage(f"s3://{bucket}/runs/one")
    assert isinstance(storage, S3Storage)
    storage.write("results/a--b.png", b"\x89PNG fake", content_type="image/png",
                  metadata={"fingerprint": "f" * 64, "content": "a", "style": "b"})
    storage.write("results/a--b.json", b"{}", content_type="application/json")
    storage.write("index.html", b"<html>", content_type="text/html")

    assert storage.read("results/a--b.png") == b"\x89PNG fake"
    assert storage.exists("results/a--b.png") and not storage.exists("results/missing.png")
    assert storage.list("results") == ["results/a--b.json", "results/a--b.png"]
    assert storage.list() == ["index.html", "results/a--b.json", "results/a--b.png"]
    head = s3_env.client().head_object(Bucket=bucket, Key="runs/one/results/a--b.png", ChecksumMode="ENABLED")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"fingerprint": "f" * 64, "content": "a", "style": "b"}
    # The upload carried a SHA-256 checksum that the server checked and kept.
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"\x89PNG fake").digest()).decode()
    assert read_uri(f"s3://{bucket}/runs/one/index.html") == b"<html>"


def test_presigned_url_opens_a_private_object(s3_env, bucket):
    storage = open_storage(f"s3://{bucket}/p")
    storage.write("thumbs/x.jpg", b"jpeg bytes", content_type="image/jpeg")
    url = storage.url("thumbs/x.jpg")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=86400" in url  # SigV4, default one day
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"jpeg bytes"
        assert response.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(url.split("?")[0], timeout=10)
    assert unsigned.value.code == 403
    assert SECRET_KEY not in url


def test_presign_expiry_is_configurable(s3_env, bucket, monkeypatch):
    monkeypatch.setenv("NST_S3_PRESIGN_SECONDS", "600")
    assert "X-Amz-Expires=600" in open_storage(f"s3://{bucket}").url("k")
    monkeypatch.setenv("NST_S3_PRESIGN_SECONDS", "99999999")
    with pytest.raises(S3ConfigError, match="NST_S3_PRESIGN_SECONDS='99999999' must be between 1 and 604800"):
        open_storage(f"s3://{bucket}")


def test_large_upload_goes_multipart_and_arrives_whole(s3_env, bucket, monkeypatch):
    monkeypatch.setenv("NST_S3_MULTIPART_MB", "5")
    data = os.urandom(11 * 1024 * 1024)
    storage = open_storage(f"s3://{bucket}")
    storage.write("big.bin", data, content_type="application/octet-stream", metadata={"content": "big"})
    head = s3_env.client().head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-2")  # two 8 MiB-or-less parts: a multipart upload
    assert head["Metadata"] == {"content": "big"} and head["ContentLength"] == len(data)
    assert hashlib.sha256(storage.read("big.bin")).digest() == hashlib.sha256(data).digest()


def test_missing_object_and_bad_keys_give_clear_errors(s3_env, bucket):
    storage = open_storage(f"s3://{bucket}/pre")
    with pytest.raises(StorageError, match=rf"cannot read s3://{bucket}/pre/nothing.png: NoSuchKey"):
        storage.read("nothing.png")
    with pytest.raises(StorageError, match="escapes the storage root"):
        storage.write("../other/x", b"")
    with pytest.raises(StorageError, match="cannot read s3://no-such-bucket-here/x.jpg: NoSuchBucket"):
        read_uri("s3://no-such-bucket-here/x.jpg")


def test_endpoint_down_fails_fast_with_a_clear_reason(s3_env, bucket, monkeypatch):
    from tasks.stores import s3
    from tests.s3support.seaweed import free_ports

    monkeypatch.setenv("NST_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    s3._client.cache_clear()
    with pytest.raises(StorageError) as failure:
        open_storage(f"s3://{bucket}").write("x.png", b"data", content_type="image/png")
    message = str(failure.value)
    assert message.startswith(f"cannot write s3://{bucket}/x.png: EndpointConnectionError")
    assert "Could not connect to the endpoint URL" in message and SECRET_KEY not in message


def test_503_slowdown_is_retried_then_succeeds(via_proxy, bucket):
    via_proxy.arm("503", "PUT", "/results/", times=2)
    storage = open_storage(f"s3://{bucket}")
    storage.write("results/p.png", b"png!", content_type="image/png")
    puts = [seen.status for seen in via_proxy.seen if seen.method == "PUT" and "/results/" in seen.path]
    assert puts == [503, 503, 200]
    assert storage.read("results/p.png") == b"png!"


def test_500_until_attempts_run_out_fails_naming_the_reason(via_proxy, bucket):
    via_proxy.arm("500", "PUT", "/results/", times=-1)
    with pytest.raises(StorageError, match=r"cannot write .*: InternalError: .* \(after 3 attempts\)"):
        open_storage(f"s3://{bucket}").write("results/p.png", b"png!")
    assert [s.status for s in via_proxy.seen if s.method == "PUT"] == [500, 500, 500]  # NST_S3_MAX_ATTEMPTS=3
    via_proxy.clear()
    assert not open_storage(f"s3://{bucket}").exists("results/p.png")  # nothing half-written


def test_connection_reset_mid_upload_is_retried(via_proxy, bucket):
    via_proxy.arm("reset", "PUT", "/results/", times=1)
    data = os.urandom(200_000)
    storage = open_storage(f"s3://{bucket}")
    storage.write("results/r.png", data, content_type="image/png")
    assert [s.status for s in via_proxy.seen if s.method == "PUT"] == [0, 200]
    assert storage.read("results/r.png") == data


def test_settings_are_checked():
    assert S3Settings.from_env({}).max_attempts == 5
    with pytest.raises(S3ConfigError, match="NST_S3_MAX_ATTEMPTS='lots' is not a int"):
        S3Settings.from_env({"NST_S3_MAX_ATTEMPTS": "lots"})
    with pytest.raises(S3ConfigError, match="NST_S3_ADDRESSING_STYLE='sideways'"):
        S3Settings.from_env({"NST_S3_ADDRESSING_STYLE": "sideways"})


def test_s3_weights_are_fetched_once_and_known_by_their_bytes(s3_env, bucket, weights_file, tmp_path, monkeypatch):
    from nst_engine.vgg import weights_identity
    from tasks.weights import local_weights

    monkeypatch.setenv("NST_WEIGHTS_CACHE", str(tmp_path / "weights"))
    s3_env.client().upload_file(str(weights_file), bucket, "models/vgg19.pth")
    uri = f"s3://{bucket}/models/vgg19.pth"
    local = Path(local_weights(uri))
    assert local.read_bytes() == weights_file.read_bytes()
    assert weights_identity(str(local)) == weights_identity(str(weights_file))  # same bytes, same fingerprint
    stamp = local.stat().st_mtime_ns
    assert local_weights(uri) == str(local) and local.stat().st_mtime_ns == stamp  # not fetched again
    with pytest.raises(StorageError, match=rf"cannot fetch weights s3://{bucket}/models/none.pth: 404"):
        local_weights(f"s3://{bucket}/models/none.pth")


def test_boto3_standard_endpoint_variable_is_honoured(monkeypatch):
    from tasks.stores import s3

    monkeypatch.delenv("NST_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s3._client.cache_clear()
    try:
        assert s3.s3_client().meta.endpoint_url == "http://127.0.0.1:9"
    finally:
        s3._client.cache_clear()
