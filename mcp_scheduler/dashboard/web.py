"""The dashboard in a browser: the page at `/` beside `/mcp` on the HTTP transports, and the small JSON API it reads.

- `GET /` the page (no data in it; a strict Content-Security-Policy);
- `GET /api/schedule` the `ScheduleView`; `GET /api/runs/{job_id}/{run_id}` one run whole (result, error with its
  traceback, timings);
- `GET /api/audit` the latest entries of the audit log whole, newest first (`?limit=N`, at most 100; `?job_id=`);
- `POST /api/jobs/{job_id}/{pause|resume|run|cancel}`;
- `GET /api/events` a stream of server-sent events, one per change of a job or run (the page re-reads the view).

The API takes the server's credential (a bearer token: a static one or, with OAuth, the issuer's; checked by the
same verifier as `/mcp`) in the `Authorization` header only, and acts as its principal, with its scopes (read for
the view, runs and audit log, write for pause, resume and cancel, run for run now) and only on its jobs and audit
entries: the page gets it from its URL's fragment (which no request carries), keeps it in memory and sends it with
each request. No cookie means no cross-site request can carry it (CSRF), and a page elsewhere cannot read the
answers (no CORS headers; a foreign `Origin` is refused). Every route checks `Host` and `Origin` as `/mcp` does
(DNS rebinding, `server/hosts.py`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentool_bridge import AgenToolError
from agentool_bridge.errors import clip

from ..errors import JobNotFoundError, SchedulerError
from ..events import JobEvent, RunEvent, SchedulerEvent
from ..models import SchedulerInput
from ..owners import sees_owners
from ..principals import LOCAL, READ, RUN, WRITE, Principal, acting, acting_as
from ..server.auth import principal_of_token
from .page import content_security_policy, page_html
from .view import read_schedule

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from starlette.applications import Starlette

    from ..runtime import SchedulerRuntime

__all__ = ["ACTIONS", "AUDIT_LIMIT", "HEARTBEAT", "add_dashboard"]

logger = logging.getLogger(__name__)

ACTIONS = ("pause", "resume", "run", "cancel")
HEARTBEAT = 15.0
"""Seconds between keep-alive comments on the event stream (proxies close streams that stay silent)."""

AUDIT_LIMIT = 100
"""Most entries `GET /api/audit` answers (`scheduler://audit` pages through them all)."""

_EVENT_BUFFER = 100

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[Request], Awaitable[Response]]


def add_dashboard(
    app: Starlette, runtime: SchedulerRuntime, verifier: TokenVerifier | None, security: TransportSecuritySettings
) -> None:
    """Add the page and its API to the HTTP server's `app`, under the tokens `verifier` accepts (the MCP endpoint's;
    None: no auth, as on `/mcp`) and `security`'s Host and Origin checks."""
    guard = _Guard(TransportSecurityMiddleware(security), verifier)
    api = _Api(runtime)
    app.router.routes.extend(
        [
            Route("/", guard.page(api.page), methods=["GET"]),
            Route("/api/schedule", guard.api(api.schedule, READ), methods=["GET"]),
            Route("/api/runs/{job_id}/{run_id}", guard.api(api.run, READ), methods=["GET"]),
            Route("/api/audit", guard.api(api.audit, READ), methods=["GET"]),
            Route("/api/jobs/{job_id}/{action}", guard.api(api.act, _action_scope, post=True), methods=["POST"]),
            Route("/api/events", guard.api(api.events, READ), methods=["GET"]),
        ]
    )


def _action_scope(request: Request) -> str:
    return RUN if request.path_params.get("action") == "run" else WRITE


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


class _Guard:
    """Host and Origin first (every route), then the bearer token (the API)."""

    def __init__(self, transport: TransportSecurityMiddleware, verifier: TokenVerifier | None) -> None:
        self._transport = transport
        self._verifier = verifier

    def page(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            refused = await self._transport.validate_request(request)
            return refused if refused is not None else await handler(request)

        return guarded

    def api(self, handler: Handler, scope: str | Callable[[Request], str], *, post: bool = False) -> Handler:
        async def guarded(request: Request) -> Response:
            refused = await self._transport.validate_request(request, is_post=post)
            if refused is not None:
                return refused
            principal: Principal = LOCAL
            if self._verifier is not None:
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                access = await self._verifier.verify_token(token.strip()) if scheme.lower() == "bearer" else None
                if access is None:
                    response = _error(
                        401,
                        "The dashboard's API needs the server's bearer token: open the URL that "
                        "`mcp-scheduler dashboard` prints, or give the token `mcp-scheduler token` prints.",
                    )
                    response.headers["WWW-Authenticate"] = "Bearer"
                    return response
                principal = principal_of_token(access, "dashboard")
            needed = scope if isinstance(scope, str) else scope(request)
            if not principal.has(needed):
                return _error(403, f"Forbidden: this needs the scope {needed!r}, which the token does not hold.")
            with acting_as(principal):
                return await handler(request)

        return guarded


def _json(value: Any) -> JSONResponse:
    return JSONResponse(value, headers={"Cache-Control": "no-store"})


class _Api:
    def __init__(self, runtime: SchedulerRuntime) -> None:
        self._runtime = runtime

    async def page(self, request: Request) -> Response:
        return HTMLResponse(
            page_html(), headers={**_PAGE_HEADERS, "Content-Security-Policy": content_security_policy()}
        )

    async def schedule(self, request: Request) -> Response:
        return await self._answer(self._schedule)

    async def _schedule(self) -> Any:
        return (await read_schedule(self._runtime)).model_dump(mode="json")

    async def run(self, request: Request) -> Response:
        job_id, run_id = request.path_params["job_id"], request.path_params["run_id"]

        async def whole() -> Any:
            runs = await self._runtime.service.get_history(job_id, None, 10, run_id=run_id)
            found = [record for record in runs if record.run_id == run_id]  # the id whole, not a prefix
            return found[0].model_dump(mode="json") if found else None

        answer = await self._answer(whole)
        if answer.body == b"null":
            return _error(404, f"Job {clip(job_id)} has no run {clip(run_id)}.")
        return answer

    async def audit(self, request: Request) -> Response:
        given = request.query_params.get("limit", "20")
        if not given.isdigit() or not 1 <= int(given) <= AUDIT_LIMIT:
            return _error(400, f"limit must be a whole number from 1 to {AUDIT_LIMIT}, not {clip(given)!r}.")
        job_id = request.query_params.get("job_id") or None

        async def latest() -> Any:
            entries = await self._runtime.service.audit.read(job_id=job_id, limit=int(given), newest=True)
            return {"entries": [entry.model_dump(mode="json") for entry in entries], "count": len(entries)}

        return await self._answer(latest)

    async def act(self, request: Request) -> Response:
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        if action not in ACTIONS:
            return _error(404, f"Unknown action {action!r}: one of {', '.join(ACTIONS)}.")
        service = self._runtime.service

        async def change() -> Any:
            if action == "run":
                record = await service.run_now(SchedulerInput(operation="run_now", job_id=job_id))
                return {
                    "job_id": job_id,
                    "run_id": record.run_id,
                    "status": record.status,
                    "message": f"{record.status} in {_ms(record.duration_ms)}",
                }
            if action == "pause":
                info = await service.pause(job_id)
            elif action == "resume":
                info = await service.resume(job_id)
            else:
                info = await service.cancel(job_id)
            state = "cancelled" if action == "cancel" else info.state
            return {"job_id": job_id, "state": state, "message": state}

        return await self._answer(change)

    async def _answer(self, work: Callable[[], Awaitable[Any]]) -> Response:
        """`work`'s value as JSON; the errors the project raises on purpose with their message (404 for an unknown
        job), anything else as an internal error (logged)."""
        try:
            return _json(await work())
        except JobNotFoundError as exc:
            return _error(404, str(exc))
        except (SchedulerError, AgenToolError, ValidationError) as exc:
            return _error(409 if isinstance(exc, SchedulerError) else 400, str(exc))
        except Exception:
            logger.exception("Internal error in the dashboard's API")
            return _error(500, "Internal error: the server log has the details.")

    async def events(self, request: Request) -> Response:
        principal, service = acting(), self._runtime.service
        send, receive = anyio.create_memory_object_stream[SchedulerEvent](_EVENT_BUFFER)

        def listen(event: SchedulerEvent) -> None:
            # Only the changes of jobs the caller may see (an admin: every job), as the MCP notifications.
            if isinstance(event, JobEvent | RunEvent) and sees_owners(
                principal, (event.owner if isinstance(event, JobEvent) else service.job_owner(event.job_id),)
            ):
                try:
                    send.send_nowait(event)
                except anyio.WouldBlock:  # a reader that fell behind re-reads the whole view anyway
                    pass

        unsubscribe = self._runtime.events.subscribe(listen)

        async def stream() -> AsyncIterator[str]:
            try:
                yield ": the scheduler's changes, one event each\n\n"
                async with receive:
                    while True:
                        with anyio.move_on_after(HEARTBEAT) as idle:
                            event = await receive.receive()
                        yield ": keep-alive\n\n" if idle.cancelled_caught else _sse(event)
            finally:
                unsubscribe()
                send.close()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )


def _sse(event: SchedulerEvent) -> str:
    if isinstance(event, RunEvent):
        data = {
            "kind": event.kind,
            "job_id": event.job_id,
            "run_id": event.record.run_id,
            "status": event.record.status,
        }
        return f"event: run\ndata: {json.dumps(data)}\n\n"
    assert isinstance(event, JobEvent)
    return f"event: job\ndata: {json.dumps({'kind': event.kind, 'job_id': event.job_id})}\n\n"


def _ms(duration: float | None) -> str:
    if duration is None or not math.isfinite(duration):
        return "-"
    return f"{duration:.0f} ms" if duration < 1000 else f"{duration / 1000:.1f} s"
