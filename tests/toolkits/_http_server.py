"""A real HTTP server on 127.0.0.1 (or another loopback address) for the `http` and `notify` tests: JSON,
text, big and slow bodies, redirects, any status, an echo endpoint that records what it received,
`/say`, which answers with the text, status, reason phrase and X-Note header it is given (what a hostile
server might say), and `/reflect/<status>`, which answers with the X-Reflect header it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class LocalServer:
    """The running server: its base URL, the requests `/echo` received, and the event that ends `/slow`."""

    url: str
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    redirected: list[str] = field(default_factory=list)  # the Location of every redirect served
    release: threading.Event = field(default_factory=threading.Event)

    def received_at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = parts.path
        state = self.server.state
        if path.startswith("/echo") or path.startswith("/hook"):
            record = {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
            }
            state.received.append(record)
            self._json(200, record)
        elif path == "/json":
            self._json(200, {"hello": "world", "n": 1})
        elif path == "/text":
            self._send(200, "café crème".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif path == "/big":
            size = int(query.get("n", "100000"))
            self._send(200, b"x" * size, query.get("type", "text/plain"))
        elif path == "/slow":
            state.release.wait(10)
            self._json(200, {"slow": True})
        elif path == "/redirect":
            state.redirected.append(query["to"])
            self._send(int(query.get("code", "302")), b"", "text/plain", {"Location": query["to"]})
        elif path == "/loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        elif path == "/say":  # answers with the text and status it is given: what an untrusted server says
            self._send(int(query.get("status", "200")), query.get("text", "").encode(), "text/plain; charset=utf-8",
                       {"X-Note": query["note"]} if "note" in query else None, query.get("reason"))
        elif path.startswith("/reflect/"):  # a server that quotes what it was sent (a token it refuses, say)
            code = int(path.rsplit("/", 1)[1])
            reflected = self.headers.get("X-Reflect", "")
            self._send(code, f"{query.get('prefix', '')}{reflected}{query.get('suffix', '')}".encode(), "text/plain")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, f"status {code} body with details".encode(), "text/plain")
        else:
            self._send(404, b"no such endpoint", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that gave up (a timeout test)
        pass


@contextmanager
def serve_http(host: str = "127.0.0.1") -> Iterator[LocalServer]:
    """Serve on `host` (a free port) in a thread until the block ends; Linux routes all of 127.0.0.0/8 to
    loopback, so 127.0.0.2 is a second local address."""
    server = _Server((host, 0), _Handler)
    port = server.server_address[1]
    server.state = LocalServer(url=f"http://{host}:{port}", port=port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
