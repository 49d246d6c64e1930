"""Where an HTTP or SSE server listens: its sockets, bound before the scheduler opens, and URLs that reach it.

The sockets are bound first, so that a port in use, an address that is not this machine's or a port
that needs privileges ends the start in one line naming `--port` or `--host`, before the scheduler
takes the runner lease and before any "listening" line; uvicorn then serves on these same sockets,
and only then listens (asyncio's `create_server` does), so connections are refused until the server
can answer them. They are bound as asyncio binds a host and port (every address the host resolves to,
`SO_REUSEADDR`, IPv6 sockets IPv6-only). Two servers that start at the same moment can both bind (no
socket listens yet); the second then finds the port taken when it starts listening, told by
`port_in_use` in the same words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
from collections.abc import Sequence

from ..errors import PortInUseError, SetupError
from ..local_addresses import LocalAddresses
from ..presence import ServingProcess, serving_processes

__all__ = ["bind_listeners", "port_in_use", "reachable_urls"]

_WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def _endpoints(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
        raise SetupError(
            f"Cannot listen on --host {host}: it is no address of this machine and no name that resolves to one "
            f"({reason}). Give 127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface), or one of its "
            "addresses."
        ) from None
    endpoints: list[tuple[int, tuple[object, ...]]] = []
    for family, _type, _proto, _name, address in infos:
        if (family, address) not in endpoints:
            endpoints.append((family, tuple(address)))
    return endpoints


def bind_listeners(host: str, port: int, *, database: str | None = None) -> list[socket.socket]:
    """Sockets bound to `host:port` (not listening yet), or `SetupError` (`PortInUseError` for a port in use)
    saying what to do.

    `database`: the server's SQLite database, whose registered servers are named when one of them holds
    the port.
    """
    sockets: list[socket.socket] = []
    try:
        for family, address in _endpoints(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            if os.name == "posix" and sys.platform != "cygwin":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise _bind_error(exc, host, port, database) from None
            sock.setblocking(False)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_error(exc: OSError, host: str, port: int, database: str | None) -> SetupError:
    where = f"{host}:{port}" if ":" not in host else f"[{host.strip('[]')}]:{port}"
    if exc.errno == errno.EADDRINUSE:
        return port_in_use(host, port, database)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SetupError(
            f"Cannot listen on {where}: permission denied (ports below 1024 need privileges): pass --port 1024 or "
            "above, such as --port 8765."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return SetupError(
            f"Cannot listen on {where}: {host} is not an address of this machine. Give --host 127.0.0.1 (this "
            "machine only), 0.0.0.0 or :: (every interface), or one of its addresses."
        )
    return SetupError(f"Cannot listen on {where}: {exc.strerror or exc}.")


def port_in_use(host: str, port: int, database: str | None = None) -> PortInUseError:
    """The error for `port` in use on `host`: who holds it if it is a server of `database`, and a free port."""
    holder = _holder(port, database)
    free = _free_port(host, port)
    other = f"--port {free} (free now)" if free is not None else "another --port"
    return PortInUseError(
        f"Port {port} is already in use on {host} ({holder}): stop that process, or start this server with {other}.",
        port=port,
    )


def _holder(port: int, database: str | None) -> str:
    """Which registered mcp-scheduler of `database` listens on `port`, in words ("another program" if none)."""
    processes: Sequence[ServingProcess] = ()
    if database and not database.startswith(("postgresql://", "postgres://")):
        with contextlib.suppress(OSError):
            processes = serving_processes(database)
    for process in processes:
        if process.address and process.address.rsplit(":", 1)[-1] == str(port):
            return (f"by mcp-scheduler pid {process.pid}, which serves this same database over {process.transport} "
                    f"since {process.since}: clients can connect to it as it is")
    return "by another program, or by an mcp-scheduler of another database"


def _free_port(host: str, port: int) -> int | None:
    """A port above `port` that nothing listens on now on `host` (None if none of the next 100 is free)."""
    for candidate in range(port + 1, min(port + 101, 65536)):
        try:
            for sock in bind_listeners(host, candidate):
                sock.close()
        except (SetupError, OSError):
            continue
        return candidate
    return None


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def reachable_urls(host: str, port: int, path: str, local: LocalAddresses | None = None) -> list[str]:
    """URLs clients can use for a server on `host:port` serving `path` (`/mcp`, `/sse`), this machine's first.

    On a wildcard address, the loopback URL, then this machine's names and the addresses it listens on
    (`local`), leaving out loopback and link-local ones (a URL cannot carry an IPv6 zone); else the one URL.
    """
    bare = host.strip().strip("[]")
    if host.strip() not in _WILDCARDS:
        return [f"http://{_url_host(bare)}:{port}{path}"]
    ipv6 = ":" in bare
    urls = [f"http://{'[::1]' if ipv6 else '127.0.0.1'}:{port}{path}"]
    if local is None:
        return urls
    urls += [f"http://{name}:{port}{path}" for name in local.names]
    for address in local.addresses:
        if address.is_loopback or address.is_link_local or (address.version == 6) != ipv6:
            continue
        urls.append(f"http://{_url_host(str(address))}:{port}{path}")
    return urls
