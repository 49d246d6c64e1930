"""DNS-rebinding protection for the HTTP transports: which `Host` and `Origin` headers are accepted.

A web page can point a name it controls at 127.0.0.1 (DNS rebinding) and reach a server on the
user's machine; its requests then carry the attacker's name in `Host` (and its page in `Origin`).
The server answers only requests addressed to a name it is meant to be reached by (421 otherwise)
and coming from no page or a page of such a name (403 otherwise), on every address it listens on:

- the address it listens on;
- on a loopback address (127.0.0.0/8, ::1, localhost) and on a wildcard address (0.0.0.0, ::),
  also the loopback names `127.0.0.1`, `localhost` and `[::1]` (the MCP SDK's own defaults);
- on a wildcard address, also this machine's own names and addresses, as clients elsewhere on the
  network reach it: its host name, its fully qualified name and every address of its interfaces
  (`local_addresses.py`, read at start); a name the attacker controls is none of these;
- every `--allowed-host HOST[:PORT]` (without a port: any port).

The checks are the MCP SDK's (`TransportSecurityMiddleware`), given these lists.
"""

from __future__ import annotations

from mcp.server.transport_security import TransportSecuritySettings

from ..local_addresses import LocalAddresses, local_addresses
from ..settings import AllowedHost, Settings, is_loopback, parse_allowed_host

__all__ = ["LOOPBACK_NAMES", "is_wildcard", "transport_security"]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names every loopback or wildcard listener answers to (the SDK's defaults for 127.0.0.1)."""

_WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_wildcard(host: str) -> bool:
    """True for the addresses that listen on every interface: 0.0.0.0, :: (and an empty host)."""
    return host.strip() in _WILDCARDS


def transport_security(settings: Settings, local: LocalAddresses | None = None) -> TransportSecuritySettings:
    """The Host and Origin checks for an HTTP or SSE server with these settings (always on).

    `local`: this machine's names and addresses, accepted on a wildcard address (default: read now).
    """
    allowed: list[AllowedHost] = []
    wildcard = is_wildcard(settings.host)
    if wildcard or is_loopback(settings.host):
        allowed += [AllowedHost(name) for name in LOOPBACK_NAMES]
    if wildcard:
        own = local if local is not None else local_addresses()
        allowed += [AllowedHost(value) for value in own.host_values()]
    else:
        allowed.append(AllowedHost(_bracketed(settings.host.strip()).lower()))
    allowed += [parse_allowed_host(value) for value in settings.allowed_hosts]
    hosts: list[str] = []
    origins: list[str] = []
    for entry in allowed:
        hosts += [p for p in entry.host_patterns() if p not in hosts]
        origins += [p for p in entry.origin_patterns() if p not in origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)
