"""`POST /hooks/<name>` on the HTTP transports: signed deliveries that run a job (`scheduler/hooks.py`).

The route takes no bearer token: the hook's secret signs each delivery (Standard Webhooks). It checks `Host` and
`Origin` as `/mcp` does, caps the body at `BODY_LIMIT` bytes, and answers 202 with the run's id, 401 for a missing or
bad signature or a timestamp outside the tolerance, 404 for a hook that is unknown or whose job is gone, paused or
completed (alike), 409 for a replayed `webhook-id`, 413 for a body too large, 400 for one that is not JSON, and 429
over the hook's rate. Nothing runs and no run is recorded unless the answer is 202.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentool_bridge.standard_webhooks import WebhookSignatureError

from ..errors import InvalidArgumentError, JobNotFoundError, QuotaExceededError, WebhookReplayError
from ..scheduler.hooks import BODY_LIMIT, RATE

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..runtime import SchedulerRuntime

__all__ = ["HOOKS_PATH", "add_hooks"]

logger = logging.getLogger(__name__)

HOOKS_PATH = "/hooks/"


def add_hooks(app: Starlette, runtime: SchedulerRuntime, security: TransportSecuritySettings) -> None:
    """Add `POST /hooks/{name}` to the HTTP server's `app`, under `security`'s Host and Origin checks."""
    transport = TransportSecurityMiddleware(security)

    async def deliver(request: Request) -> Response:
        refused = await transport.validate_request(request, is_post=True)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > BODY_LIMIT:
                return _answer(413, {"error": f"The body is larger than {BODY_LIMIT:,} bytes."})
        try:
            run_id = await runtime.service.hooks.deliver(name, request.headers, bytes(body))
        except JobNotFoundError:
            return _answer(404, {"error": "No such hook."})
        except WebhookSignatureError as exc:
            return _answer(401, {"error": str(exc)})
        except WebhookReplayError as exc:
            return _answer(409, {"error": str(exc)})
        except QuotaExceededError as exc:
            return _answer(429, {"error": str(exc)}, {"Retry-After": str(int(RATE[1]))})
        except InvalidArgumentError as exc:
            return _answer(400, {"error": str(exc)})
        except Exception:
            logger.exception("Internal error accepting a delivery to hook %r", name[:80])
            return _answer(500, {"error": "Internal error: the server log has the details."})
        return _answer(202, {"run_id": run_id, "hook": name})

    app.router.routes.append(Route(HOOKS_PATH + "{name}", deliver, methods=["POST"]))


def _answer(status: int, body: dict[str, str], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})
