"""Where Prometheus reads the metrics: `/metrics` beside `/mcp` on the HTTP transports (a token the MCP endpoint's
verifier accepts: static or, with OAuth, the issuer's), and `--metrics-port` on 127.0.0.1 for a process without HTTP
(a stdio server, the background runner).

A scrape on HTTP needs `scheduler:admin` while there are per-job series (they name every principal's jobs), and
`scheduler:read` with `--metrics-max-jobs 0` (counts only); a token without it gets 403 with the scope challenge."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import SetupError
from ..principals import ADMIN, READ
from ..server.auth import principal_of_token
from ..server.step_up import insufficient_scope
from .collector import SchedulerMetrics

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from starlette.requests import Request
    from starlette.responses import Response

    from ..runtime import SchedulerRuntime

__all__ = ["METRICS_PATH", "MetricsEndpoint"]

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


class MetricsEndpoint:
    """The metrics of a runtime and where they are served: `add_route()` to an HTTP app, `port` for a listener of its
    own (opened by `open()`, closed by `close()`, which also start and stop following the runtime)."""

    def __init__(self, runtime: SchedulerRuntime, *, max_jobs: int, port: int | None = None,
                 verifier: TokenVerifier | None = None) -> None:
        self.metrics = SchedulerMetrics(runtime, max_jobs=max_jobs)
        self.port = port
        self.scope = ADMIN if max_jobs > 0 else READ
        """What a token needs to scrape `/metrics`: per-job series name the jobs of every principal."""
        self._verifier = verifier
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def exposition(self) -> bytes:
        """The series in Prometheus' text format."""
        return generate_latest(self.metrics.registry)

    async def _answer(self, request: Request, verifier: TokenVerifier | None) -> Response:
        from starlette.responses import Response

        if verifier is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            access = await verifier.verify_token(token.strip()) if scheme.lower() == "bearer" and token else None
            if access is None:
                return Response("Send 'Authorization: Bearer <token>', a token the MCP endpoint accepts.\n",
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="mcp-scheduler metrics"'},
                                media_type="text/plain")
            if not principal_of_token(access, "metrics").has(self.scope):
                why = (f"/metrics needs the scope {self.scope}"
                       + (" (its per-job series name every principal's jobs; --metrics-max-jobs 0 leaves them out)"
                          if self.scope == ADMIN else ""))
                return Response(f"Forbidden: {why}.\n", status_code=403, media_type="text/plain",
                                headers={"WWW-Authenticate": insufficient_scope(self.scope, why, None)})
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

    def add_route(self, app: Any) -> None:
        """Add `/metrics` to the Starlette `app` of an HTTP or SSE server, behind its verifier if it has one."""
        from starlette.routing import Route

        async def metrics(request: Request) -> Response:
            return await self._answer(request, self._verifier)

        app.router.routes.append(Route(METRICS_PATH, metrics, methods=["GET"]))

    async def open(self) -> None:
        """Follow the runtime; with a port, listen on 127.0.0.1:port (`SetupError` if it is taken)."""
        self.metrics.start()
        if self.port is None or self._task is not None:
            return
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        async def metrics(request: Request) -> Response:
            return await self._answer(request, None)

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
        except OSError as exc:
            sock.close()
            self.metrics.stop()
            raise SetupError(f"--metrics-port {self.port}: cannot listen on 127.0.0.1:{self.port} ({exc.strerror}); "
                             "choose another port") from None
        self.port = int(sock.getsockname()[1])
        app = Starlette(routes=[Route(METRICS_PATH, metrics, methods=["GET"])])
        config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
        self._server = server = _quiet_server(config)
        self._task = asyncio.ensure_future(server.serve(sockets=[sock]))
        logger.info("Metrics on http://127.0.0.1:%s%s", self.port, METRICS_PATH)

    async def close(self) -> None:
        """Stop following the runtime and stop listening."""
        self.metrics.stop()
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
        elif not task.cancelled():
            task.result()  # its error, as awaiting it told before


def _quiet_server(config: Any) -> Any:
    """uvicorn's server without its signal handlers (the process's own handle SIGTERM and SIGINT)."""
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)

