"""A real OAuth authorization server for the tests, on 127.0.0.1: its RFC 8414 metadata, a JWKS of real RSA and
EC keys, token introspection (RFC 7662), and access tokens it signs."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests._net import MCP_HEADERS, bearer

MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
          "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}}
"""The `_meta` of a raw request of the 2026-07-28 era (no session)."""
CLIENT_ID = "scheduler-resource"
CLIENT_SECRET = "introspection-secret-of-the-tests"


class Issuer:
    """An authorization server on 127.0.0.1 (a thread of the test process) until `close()`."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.published = {"rsa-1"}
        """The kids the JWKS shows (a key can sign before it is published, as in a rotation)."""
        self.active: dict[str, dict[str, Any]] = {}
        """Introspection answers by token."""
        self.fetches: dict[str, int] = {}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, document: Any) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                issuer.fetches[self.path] = issuer.fetches.get(self.path, 0) + 1
                if self.path == "/.well-known/oauth-authorization-server":
                    self._answer(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks",
                                       "introspection_endpoint": f"{issuer.url}/introspect"})
                elif self.path == "/jwks":
                    self._answer(200, {"keys": [issuer.jwk(kid) for kid in sorted(issuer.published)]})
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.path != "/introspect" or self.headers.get("Authorization") != f"Basic {expected}":
                    self._answer(401, {"error": "invalid_client"})
                    return
                token = form.get("token", [""])[0]
                self._answer(200, issuer.active.get(token, {"active": False}))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def add_key(self, kid: str, *, publish: bool = True) -> None:
        """A new EC key (P-256), in the JWKS if `publish`."""
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        if publish:
            self.published.add(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}

    def mint(self, scopes: str | list[str], audience: str, *, kid: str = "rsa-1", subject: str = "alice",
             expires_in: float = 300, issuer: str | None = None, signer: Any = None, **claims: Any) -> str:
        """An access token signed with key `kid` (or `signer`, a key the JWKS does not hold)."""
        key = signer or self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        now = int(time.time())
        payload = {"iss": issuer or self.url, "aud": audience, "sub": subject, "iat": now, "exp": now + expires_in,
                   "jti": uuid.uuid4().hex, "client_id": "test-client",
                   "scope": scopes if isinstance(scopes, str) else " ".join(scopes), **claims}
        return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def modern_request(token: str | None, method: str, params: dict[str, Any], request_id: int = 1
                   ) -> tuple[dict[str, str], dict[str, Any]]:
    """The headers and body of one JSON-RPC request of the 2026-07-28 era (no session), sent with `token`."""
    name = params.get("name", params.get("uri"))
    headers = (MCP_HEADERS | {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
               | ({"Mcp-Name": name} if name else {}) | (bearer(token) if token else {}))
    return headers, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": MODERN}}


def answer_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer of `response` (a JSON body, or the answer among its server-sent events)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return next(m for m in map(json.loads, filter(None, data)) if "id" in m)
    found: dict[str, Any] = response.json()
    return found
