"""The scope challenge of the streamable HTTP transport (MCP authorization, "Scope Challenge Handling"): a request
whose access token lacks a scope it needs is answered `403 Forbidden` with `WWW-Authenticate: Bearer
error="insufficient_scope", scope="<every scope the request needs>", resource_metadata="<RFC 9728 metadata URL>",
error_description="..."`, so that a client can ask the authorization server for those scopes (step-up) and retry.

`StepUp` sits in front of the MCP endpoint, after the bearer token is verified. It reads the body of a POST once,
asks `RequestScopes` what the JSON-RPC request needs (the answer the tool path refuses by: one source) and hands
the same bytes on to the server when the token holds it all. The 403's body is a JSON-RPC error with the words of
the tool path's refusal, so that a client that does not step up still reads why.

A call about a stored job (`run_now`, `update_job`, `resume_job`, `backfill_job` with a `job_id`) needs the scope
of that job's kind: `RequestScopes` reads it as the token's principal sees the job (the service's job read), so a
job of another principal adds nothing here (the server answers it "not found") and the 403 names the same scope the
tool path refuses by.

Left to the server as they are: a token with `scheduler:admin` (its body is not even read), a batch (a JSON
array), a notification or response, a body that is not JSON or is larger than the transport takes. Clients without
HTTP (stdio, in process) keep the tool error: the tool path refuses by the same answer, whatever this layer did.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp_types import INVALID_REQUEST

from ..errors import MissingScopeError
from ..principals import acting_as
from . import _sdk
from .auth import principal_of_token
from .tooling import Need, missing

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..principals import Principal
    from .scope_checks import RequestScopes

__all__ = ["StepUp", "insufficient_scope", "install_step_up"]

_UNQUOTABLE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')
"""What an RFC 6750 challenge's values may not hold (`"`, `\\`, controls, non-ASCII)."""


def insufficient_scope(scopes: str, description: str, resource_metadata: str | None) -> str:
    """The `WWW-Authenticate` value of a 403 for want of `scopes` (space-separated)."""
    parts = ['error="insufficient_scope"', f'scope="{_UNQUOTABLE.sub("", scopes)}"']
    if resource_metadata is not None:
        parts.append(f'resource_metadata="{_UNQUOTABLE.sub("", resource_metadata)}"')
    parts.append(f'error_description="{_UNQUOTABLE.sub("", description)[:300]}"')
    return "Bearer " + ", ".join(parts)


def install_step_up(app: Any, path: str, scopes: RequestScopes) -> None:
    """Answer requests to the endpoint at `path` of the streamable HTTP `app` (built with a token verifier) 403
    when their token lacks what `scopes` says they need."""
    _sdk.wrap_authenticated_endpoint(app, path, lambda endpoint, metadata: StepUp(endpoint, scopes, metadata))


class StepUp:
    """ASGI layer: 403 with the scope challenge for a JSON-RPC request whose token lacks a scope it needs; every
    other request reaches `app` with its body as sent."""

    def __init__(self, app: ASGIApp, scopes: RequestScopes, resource_metadata: str | None,
                 max_body: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> None:
        self.app = app
        self.scopes = scopes
        self.resource_metadata = resource_metadata
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or scope.get("method") != "POST" or not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)  # a missing or refused token: RequireAuthMiddleware's 401
            return
        principal = principal_of_token(user.access_token, None)
        if principal.admin:
            await self.app(scope, receive, send)
            return
        body, complete, pending = await _read(receive, self.max_body)
        replayed: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]
        if pending is not None:
            replayed.append(pending)

        async def replay() -> Message:
            return replayed.pop(0) if replayed else await receive()

        refusal = await self._refusal(body, principal) if complete else None
        if refusal is None:
            await self.app(scope, replay, send)
        else:
            await refusal(scope, replay, send)

    async def _refusal(self, body: bytes, principal: Principal) -> ASGIApp | None:
        """The 403 of a request `principal` may not make, None for any other body."""
        from starlette.responses import JSONResponse

        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return None
        request_id = request.get("id")
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return None  # a notification (no id), or an id the server refuses anyway
        with acting_as(principal):  # the stored job a call names: as this principal may see it
            needs = await self.scopes.needs(request["method"], request.get("params"))
        lacking = missing(principal, needs)
        if not lacking:
            return None
        return JSONResponse(
            _error(request_id, needs, lacking[0]), status_code=403,
            headers={"WWW-Authenticate": insufficient_scope(_scopes(needs), _description(needs, lacking),
                                                            self.resource_metadata),
                     "Cache-Control": "no-store"},
        )


def _scopes(needs: list[Need]) -> str:
    """Every scope the request needs (the spec: all of them, in one challenge), each once."""
    return " ".join(dict.fromkeys(scope for scope, _ in needs))


def _description(needs: list[Need], lacking: list[Need]) -> str:
    what = needs[0][1]
    return f"{what} needs {_scopes(needs)}; the access token lacks {_scopes(lacking)}"


def _error(request_id: str | int, needs: list[Need], first: Need) -> dict[str, Any]:
    """The JSON-RPC error of the 403: the tool path's words, and OAuth's error in its data."""
    message = str(MissingScopeError(*first))
    data = {"error": "insufficient_scope", "scope": _scopes(needs)}
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": INVALID_REQUEST, "message": message, "data": data}}


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool, Message | None]:
    """The request's body as far as read: (bytes, whether it is whole, a message that ended it early such as
    `http.disconnect`). Reading stops past `limit` bytes (the transport refuses such a body itself)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body), False, message
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), True, None
        if len(body) > limit:
            return bytes(body), False, None
