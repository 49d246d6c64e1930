"""`mcp-scheduler serve` (also `mcp-scheduler` with no command): the MCP server over stdio, streamable HTTP or SSE.

A stdio server first looks for the store's background runner (`frontend.py`) and, when it runs with the same
settings, only pipes its client to it; otherwise the scheduler opens in this process. HTTP and SSE bind their
sockets before the scheduler opens and get their bearer tokens from `access.py`.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._argparse import Commands
from ..settings import Settings
from . import options
from .access import check_exposure, local_url, log_access, url_path, with_http_auth
from .console import EXIT_FAILED, EXIT_OK, configure_logging, describe_error
from .options import add_command

if TYPE_CHECKING:
    import asyncio
    import signal
    from collections.abc import Iterator

    from ..frontend import Frontend
    from ..local_addresses import LocalAddresses
    from ..server import SchedulerServer

__all__ = ["add_commands", "run_serve", "serve"]


logger = logging.getLogger("mcp_scheduler")


def add_commands(commands: Commands) -> None:
    """`serve`, with the flags of the server (the scheduler's, the transports', the background runner's)."""
    add_command(
        commands, "serve", run_serve,
        summary="run the MCP server (the default command): stdio, or --transport http / sse",
        description="Run the MCP server over stdio (for a client that starts it), or streamable HTTP or SSE "
        "(--transport). `mcp-scheduler` without a command does the same.",
        flags=(options.db, options.timezone, options.log_level, options.http, options.token_file, options.scheduler,
               options.no_background_runner, options.runner_idle_exit, options.metrics),
    )


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until the client leaves or a signal arrives; 1 when the start fails (told in one line)."""
    frontend = None
    if settings.events_urls or settings.events_secret_env:  # refused here, before a runner is started with them
        from ..errors import SetupError

        try:
            settings.outbound_events(os.environ)
        except SetupError as exc:
            sys.stderr.write(f"mcp-scheduler: {exc}\n")
            return EXIT_FAILED
    if settings.background_runner and settings.database:
        from ..frontend import Frontend, pipe

        frontend = Frontend(settings, os.environ)
        if settings.transport == "stdio":
            found = frontend.connect()
            if found is not None:  # the store's runner serves this client: nothing else to load
                connection, runner = found
                frontend.say(f"Serving through the background runner of {settings.database} (pid {runner.pid}, "
                             f"log {runner.log_file})")
                return pipe(connection, runner, stop_wait=settings.close_timeout + 1)
    import gc

    # No garbage collection while the server starts: its imports and tool schemas allocate so many objects that
    # the collector would scan them about 250 times; serve() freezes what is left once the scheduler is open.
    gc.disable()
    try:
        return _start_and_serve(settings, frontend)
    finally:
        gc.enable()


def _start_and_serve(settings: Settings, frontend: Frontend | None) -> int:
    import asyncio
    import sqlite3

    configure_logging(settings, quiet=False)
    from agentool_bridge.errors import AgenToolError

    from ..errors import SchedulerError

    try:
        check_exposure(settings)
        if frontend is not None:
            if settings.transport != "stdio":
                frontend.ensure_runner()  # jobs outlive this server; it serves as a standby
            for note in frontend.notes:
                logger.info("%s", note)
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except (SchedulerError, AgenToolError, ValueError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"mcp-scheduler: {describe_error(exc, settings)}\n")
        return EXIT_FAILED
    return EXIT_OK


async def serve(settings: Settings) -> None:
    """Run the server on the configured transport until stdin closes (stdio) or SIGTERM / SIGINT arrives.

    On a signal the scheduler closes cleanly: runs in progress get `close_timeout` to finish and are
    recorded either way. A second signal exits at once (runs still in progress are found
    `interrupted` at the next start).
    """
    import asyncio
    import gc
    import signal

    from ..runtime import SchedulerRuntime
    from ..server import build_server

    settings, listeners = _listen(settings)  # a port in use ends the start here, before the scheduler opens
    try:
        settings = with_http_auth(settings)
        runtime = SchedulerRuntime(
            settings.service_config(), toolkits=settings.toolkits,
            discover_entry_points=settings.discover_entry_points, transport=settings.transport,
            toolkit_config=settings.toolkit_config(), address=_address(listeners),
            outbound_events=settings.outbound_events(os.environ),
        )
    except BaseException:
        _close(listeners)
        raise
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stopping.is_set():
            logger.warning("Received %s again: exiting without waiting for the runs in progress", sig.name)
            _exit_now(1)
        logger.info("Received %s: closing the scheduler (runs in progress get up to %s s)", sig.name,
                    runtime.config.close_timeout)
        stopping.set()

    handled = [sig for sig in (signal.SIGTERM, signal.SIGINT) if _add_signal_handler(loop, sig, on_signal)]
    abandoned = False
    try:
        mcp = build_server(runtime, settings)
        async with mcp.use():  # the scheduler lives for the whole process, whatever the transport
            # The jobs are loaded: from here on, full garbage collections need not rescan them (with many jobs
            # those scans would delay fires; 1,000 runs due at once finish about a quarter sooner).
            gc.freeze()
            gc.enable()  # disabled while the server started (run_serve)
            abandoned = await _serve_transport(mcp, settings, stopping, listeners)
    finally:
        _close(listeners)
        # Closing the toolkits' databases lets SQLite checkpoint its write-ahead log and remove the -wal and
        # -shm files instead of leaving them for the next start.
        await runtime.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
    if abandoned:
        # The stdio transport still waits in a thread for a line on stdin, which no cancellation can
        # interrupt; everything else is closed and written.
        logger.info("Scheduler closed; exiting")
        _exit_now(0)


def _listen(settings: Settings) -> tuple[Settings, list[socket.socket]]:
    """The HTTP/SSE listening sockets (none for stdio), and the settings with the port they got (for --port 0).

    Raises `SetupError` (`PortInUseError`) in one line naming --host or --port.
    """
    if settings.transport == "stdio":
        return settings, []
    from .listen import bind_listeners

    listeners = bind_listeners(settings.host, settings.port, database=settings.database)
    return replace(settings, port=int(listeners[0].getsockname()[1])), listeners


def _address(listeners: Sequence[socket.socket]) -> str | None:
    """`host:port` of the first listening socket ([v6]:port), for the presence file; None for stdio."""
    if not listeners:
        return None
    host, port = listeners[0].getsockname()[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _close(listeners: Sequence[socket.socket]) -> None:
    for sock in listeners:
        sock.close()


def _add_signal_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Any) -> bool:
    try:
        loop.add_signal_handler(sig, handler, sig)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return False
    return True


def _exit_now(code: int) -> None:
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


async def _serve_transport(
    mcp: SchedulerServer, settings: Settings, stopping: asyncio.Event, listeners: Sequence[socket.socket] = ()
) -> bool:
    """Serve until the transport ends or `stopping` is set; True if the transport was left running.

    HTTP and SSE serve on `listeners` (bound by `_listen`), or bind `settings.host:port` themselves.
    """
    import asyncio
    import contextlib

    if settings.transport == "stdio":
        from ..server import _sdk
        from ..server.answering import ANSWER_GRACE, Answering

        answering = Answering()
        transport = asyncio.ensure_future(_sdk.run_stdio(mcp, answering))
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({transport, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if transport.done():
            transport.result()  # stdin closed, or the transport failed
            return False
        # Stopped by a signal: the calls in flight are answered (their result, or cancelled after close_timeout)
        # and the answers written before the process ends the transport.
        await mcp.shut_down()
        if not await answering.settled(ANSWER_GRACE):
            logger.warning("%d call(s) in flight were not answered within %s s of the scheduler closing",
                           answering.owed, ANSWER_GRACE)
        return True
    import uvicorn

    from ..local_addresses import local_addresses
    from ..server.answering import ANSWER_GRACE
    from ..server.hosts import is_wildcard, transport_security

    local = local_addresses() if is_wildcard(settings.host) else None
    security = transport_security(settings, local)
    if settings.transport == "http":
        asgi = mcp.streamable_http_app(
            streamable_http_path=settings.path, transport_security=security, host=settings.host,
            stateless_http=settings.stateless_http,
        )
    else:
        asgi = mcp.sse_app(transport_security=security, host=settings.host)
    if mcp.metrics is not None:
        mcp.metrics.add_route(asgi)  # /metrics, behind the same bearer token
    from ..dashboard.web import add_dashboard

    add_dashboard(asgi, mcp.runtime, mcp.access, security)  # the page at / and its API, beside the MCP endpoint
    from ..server.webhooks import add_hooks

    add_hooks(asgi, mcp.runtime, security)  # POST /hooks/<name>: signed deliveries that run jobs
    if mcp.oauth is not None:
        mcp.oauth.install(asgi)
    if settings.transport == "http" and mcp.access is not None:
        from ..server.step_up import install_step_up

        install_step_up(asgi, settings.path, mcp.scopes)  # 403 with the scope challenge (step-up)
    auth = (f"OAuth access tokens of {settings.oauth_issuer}" + (" or a bearer token" if settings.auth_tokens else "")
            if settings.oauth_on else "bearer token required" if settings.auth_tokens else "no auth")
    _log_listening(settings, auth, local)
    log_access(settings)
    logger.info("Dashboard: %s in a browser (it asks for the token; `mcp-scheduler dashboard` opens it with the token)",
                local_url(replace(settings, transport="http", path="/")))
    logger.info("Accepted Host headers: %s (add more with --allowed-host)", ", ".join(security.allowed_hosts))
    # Once the scheduler is closed the calls in flight are answered: what is left are streams kept open by clients.
    config = uvicorn.Config(
        asgi, host=settings.host, port=settings.port, log_config=None, log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=ANSWER_GRACE,  # type: ignore[arg-type]
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # serve() handles the signals (uvicorn's own handlers would re-raise them when it stops,
            # killing the process before the scheduler is closed)
            yield

    server = Server(config)

    async def stop_when_asked() -> None:
        await stopping.wait()
        try:
            # While the server still listens: the calls in flight are answered (their result, or cancelled after
            # close_timeout), and a client's follow-up request (such as tools/list) still reaches it.
            await mcp.shut_down()
        finally:
            server.should_exit = True

    watcher = asyncio.ensure_future(stop_when_asked())
    if settings.open_dashboard != "no":
        from .dashboard import announce

        announce(settings)
    try:
        await _serve_on(server, settings, listeners)
    finally:
        watcher.cancel()
    return False


def _log_listening(settings: Settings, auth: str, local: LocalAddresses | None) -> None:
    """The "listening" line: the URL, or on a wildcard address the URLs of this machine that reach the server."""
    from .listen import reachable_urls

    if local is None:
        logger.info("mcp-scheduler listening on %s (%s); database %s", settings.url, auth, settings.database)
        return
    urls = reachable_urls(settings.host, settings.port, url_path(settings), local)
    every = "every IPv6 address" if ":" in settings.host else "every IPv4 address"
    logger.info("mcp-scheduler listening on %s port %s, %s of this machine (%s): %s; database %s",
                settings.host, settings.port, every, auth, ", ".join(urls), settings.database)



async def _serve_on(server: Any, settings: Settings, listeners: Sequence[socket.socket]) -> None:
    """uvicorn's `serve` on the bound sockets; a server of the same port that started at the same moment and
    listened first is told as a port in use (`PortInUseError`)."""
    import errno

    try:
        await server.serve(sockets=list(listeners) or None)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not listeners:
            raise
        from .listen import port_in_use

        raise port_in_use(settings.host, settings.port, settings.database) from None
