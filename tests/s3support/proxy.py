"""A small fault-injecting HTTP proxy for S3 tests: sits between boto3 and SeaweedFS on 127.0.0.1.

Requests are forwarded unchanged (the Host header too, so SigV4 signatures still verify). A
test arms faults: answer the next N matching requests with 503 SlowDown or 500, reset the
connection after reading part of an upload's body, or hang (read the request, never answer: a
frozen store). Every request is recorded.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 120
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te", "upgrade"}
ERROR_BODIES = {
    503: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
         b"<Message>Please reduce your request rate.</Message></Error>",
    500: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
         b"<Message>We encountered an internal error. Please try again.</Message></Error>",
}


@dataclass
class Fault:
    action: str  # "503" | "500" | "reset" | "hang"
    method: str = "PUT"
    path_contains: str = ""
    times: int = 1  # how many matching requests get it; -1: all of them
    hits: int = 0


@dataclass
class Seen:
    method: str
    path: str
    status: int  # 0 for a reset connection


@dataclass
class FaultProxy:
    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def arm(self, action: str, method: str = "PUT", path_contains: str = "", times: int = 1) -> Fault:
        fault = Fault(action, method, path_contains, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def close(self) -> None:
        self._closed.set()
        self.server.shutdown()
        self.server.server_close()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path_contains in path and (fault.times < 0 or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, status))

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        method, path = request.command, request.path
        fault = self._take_fault(method, path)
        if fault is not None and fault.action == "reset":
            # Mid-upload crash: half the body is read, then the socket dies with an RST.
            length = int(request.headers.get("Content-Length") or 0)
            request.rfile.read(length // 2)
            self._record(method, path, 0)
            request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close_connection = True
            request.connection.close()
            return
        body = _read_body(request)
        if fault is not None and fault.action == "hang":
            self._record(method, path, 0)
            self._closed.wait(HANG_SECONDS)  # the client's read timeout ends it first
            request.close_connection = True
            return
        if fault is not None:
            status = int(fault.action)
            self._record(method, path, status)
            _reply(request, status, [("Content-Type", "application/xml")], ERROR_BODIES[status])
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            upstream.request(method, path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except OSError:
            self._record(method, path, 502)
            _reply(request, 502, [("Content-Type", "text/plain")], b"upstream unreachable")
            return
        finally:
            upstream.close()
        self._record(method, path, response.status)
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        length = response.getheader("Content-Length") if method == "HEAD" else None
        _reply(request, response.status, kept, b"" if method == "HEAD" else data, head_length=length)


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while request.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _reply(request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes,
           head_length: str | None = None) -> None:
    request.send_response(status)
    for key, value in headers:
        request.send_header(key, value)
    request.send_header("Content-Length", head_length if head_length is not None else str(len(body)))
    request.end_headers()
    if body:
        request.wfile.write(body)
