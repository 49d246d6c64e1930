"""Which addresses the `http` and `notify` toolkits may connect to, and a network backend that enforces it.

Always refused: link-local addresses (169.254.0.0/16, fe80::/10), cloud metadata endpoints
(169.254.169.254, fd00:ec2::254, 100.100.100.200, `metadata.google.internal`, `metadata`),
unspecified, multicast, broadcast and reserved addresses, also in IPv4-mapped or NAT64 form. No
`--http-allow` pattern changes that. Private and loopback addresses (10/8, 172.16/12, 192.168/16,
100.64/10, fc00::/7, 127/8, ::1, and other non-global ranges) are refused when the server listens
beyond loopback (`ToolkitConfig.exposed`), unless an `--http-allow` pattern matches.

A job keeps the policy it was accepted under (`AddressRules`, stored with it): its runs obey both that
and the policy of the process that runs them (`AddressPolicy.under`), so a server that listens beyond
loopback cannot hand a loopback-only runner on the same store a job it would have refused itself.

The check runs where the connection is made (`PolicyBackend.connect_tcp`): the host name is resolved
once, every address is checked, and the connection goes to a checked address, so a name that
resolves differently a moment later (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ...errors import clip
from ..config import AddressRules
from ..errors import ToolkitError

if TYPE_CHECKING:
    from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

__all__ = [
    "AddressNotAllowedError",
    "AddressPolicy",
    "HostNotFoundError",
    "HttpRequestError",
    "PolicyBackend",
    "policy_backend",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT = 3.0
"""Seconds a host name lookup may take at schedule time."""

_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "metadata.goog", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: not global, yet not `is_private`


class AddressNotAllowedError(ToolkitError, PermissionError):
    """The address policy refuses the host or address a request would go to."""


class HttpRequestError(ToolkitError, ConnectionError):
    """A request got no response: DNS failure, connection failure, timeout, a broken response, too many redirects."""


class HostNotFoundError(HttpRequestError):
    """A host name does not resolve (no DNS record, or the lookup timed out)."""


@dataclass(frozen=True)
class _Pattern:
    """One `--http-allow` pattern: an address, a network, a host name or `*.suffix`; optionally a port."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None
    suffix: str | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address in self.network or _embedded(address) in self.network
        if self.name is not None:
            return host == self.name
        return self.suffix is not None and host.endswith("." + self.suffix)


def _split_port(text: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `v4/cidr:port` -> (host, port); a bare IPv6 address has no port."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("a '[' without its ']'")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']'")
        return host, _port(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port)
    return text, None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _parse_pattern(text: str) -> _Pattern:
    raw = text.strip()
    try:
        host, port = _split_port(raw)
        host = host.lower().rstrip(".")
        if not host:
            raise ValueError("no address or host name")
        if "/" in host:  # a network; its own error says what is wrong with it
            return _Pattern(raw, network=ipaddress.ip_network(host, strict=False), port=port)
        address = _address(host)
        if address is not None:
            return _Pattern(raw, network=ipaddress.ip_network(address), port=port)
        if host.startswith("*."):
            suffix = host[2:]
            _check_name(suffix)
            return _Pattern(raw, suffix=suffix, port=port)
        _check_name(host)
        return _Pattern(raw, name=host, port=port)
    except ValueError as exc:
        raise ValueError(
            f"--http-allow pattern {clip(text)} is not valid ({exc}): give an IP address (127.0.0.1, ::1), "
            "a network (10.0.0.0/8), a host name (nas.local) or *.suffix (*.internal.example), each "
            "optionally with :PORT ([::1]:8080 for IPv6)"
        ) from None


def _check_name(name: str) -> None:
    labels = name.split(".")
    if not all(label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise ValueError(f"{name!r} is not a host name")


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _never(address: IPAddress) -> str | None:
    """Why `address` is refused whatever the patterns say, or None."""
    address = _embedded(address)
    if address.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return None
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or (isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK):
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    return None


def _local(address: IPAddress) -> str | None:
    """'loopback' or 'private' for addresses that stay inside a machine or network, else None."""
    address = _embedded(address)
    if address.is_loopback:
        return "loopback"
    if address.is_private or not address.is_global or (isinstance(address, ipaddress.IPv4Address)
                                                       and address in _SHARED):
        return "private"
    return None


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """A URL host as compared with patterns: lower case, no brackets, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


@dataclass(frozen=True)
class _Rules:
    """One server's settings, parsed: whether it listens beyond loopback, and its `--http-allow` patterns."""

    exposed: bool
    patterns: tuple[_Pattern, ...]

    def permits(self, host: str, address: IPAddress, port: int) -> bool:
        """Whether these settings let a job reach `address` (one that is not always refused)."""
        return (not self.exposed or _local(address) is None
                or any(pattern.matches(host, address, port) for pattern in self.patterns))


def _lenient(patterns: Iterable[str]) -> tuple[_Pattern, ...]:
    """The patterns that parse; one that does not (stored by another version) allows nothing."""
    parsed: list[_Pattern] = []
    for text in patterns:
        try:
            parsed.append(_parse_pattern(text))
        except ValueError:
            continue
    return tuple(parsed)


class AddressPolicy:
    """The addresses `http` and webhooks may reach: built from `--http-allow` patterns and whether the
    server is exposed beyond loopback. Raises `ValueError` for a malformed pattern.

    `under(rules)` gives the policy of a run whose job was accepted under `rules` (another server's,
    or this one's at the time): an address is reachable only if both this server and those rules allow it.
    """

    def __init__(self, allow: Iterable[str] = (), *, exposed: bool = False) -> None:
        self._own = _Rules(exposed, tuple(_parse_pattern(text) for text in allow))
        self._accepted: _Rules | None = None

    @property
    def exposed(self) -> bool:
        """This server listens beyond loopback (private and loopback addresses need a pattern)."""
        return self._own.exposed

    @property
    def patterns(self) -> tuple[_Pattern, ...]:
        """This server's `--http-allow` patterns, parsed."""
        return self._own.patterns

    @property
    def rules(self) -> AddressRules:
        """This server's settings, as a job accepted here stores them."""
        return AddressRules(self._own.exposed, tuple(p.text for p in self._own.patterns))

    def under(self, accepted: AddressRules | None) -> AddressPolicy:
        """This policy and the one a job was accepted under, both applied (None: this policy alone).

        A stored pattern that does not parse is left out: it allows nothing.
        """
        if accepted is None or not accepted.exposed:
            return self  # a job accepted on loopback adds no limit beyond those every policy has
        combined = copy.copy(self)
        combined._accepted = _Rules(True, _lenient(accepted.http_allow))
        return combined

    def check_name(self, host: str) -> None:
        """Refuse cloud metadata host names before anything is resolved."""
        if normalize_host(host) in _METADATA_NAMES:
            raise AddressNotAllowedError(
                f"Refusing to connect to {clip(host)}: it is a cloud metadata host name, which jobs may "
                "never reach (no --http-allow pattern changes that)."
            )

    def allowed(self, host: str, addresses: Sequence[IPAddress], port: int) -> list[IPAddress]:
        """The addresses of `host` that may be connected to; raise `AddressNotAllowedError` if none may.

        One address that is never allowed (link-local, metadata, ...) refuses the whole host.
        """
        name = normalize_host(host)
        self.check_name(name)
        for address in addresses:
            reason = _never(address)
            if reason is not None:
                via = "" if _address(name) == address else f" (the address of {clip(host)})"
                raise AddressNotAllowedError(
                    f"Refusing to connect to {address}{via}: it is {reason}, which jobs may never reach "
                    "(no --http-allow pattern changes that)."
                )
        own, accepted = self._own, self._accepted
        if not own.exposed and accepted is None:
            return list(addresses)
        permitted = [a for a in addresses if own.permits(name, a, port)
                     and (accepted is None or accepted.permits(name, a, port))]
        if permitted:
            return permitted
        address = addresses[0]
        via = "" if _address(name) == address else f" (the address of {clip(host)})"
        if own.permits(name, address, port):
            raise AddressNotAllowedError(
                f"Refusing to connect to {address}{via} port {port}: it is a {_local(address)} address, and the "
                "server that accepted this job (scheduled or last updated it) listens beyond loopback without an "
                "--http-allow pattern that matches it; a job keeps the address policy it was accepted under, "
                "whichever server runs it. Update the job (update_job) through a server that allows the "
                f"address: one on loopback or stdio, or one started with --http-allow {address}."
            )
        raise AddressNotAllowedError(
            f"Refusing to connect to {address}{via} port {port}: it is a {_local(address)} address and this "
            f"server listens beyond loopback. Start the server with --http-allow {address} (or a network, "
            "host name or *.suffix pattern, optionally with :PORT) to allow it."
        )

    async def resolve(self, host: str, port: int, within: float = RESOLVE_TIMEOUT) -> list[IPAddress]:
        """The addresses `host` may be reached at on `port`: resolved (all of them) and checked."""
        name = normalize_host(host)
        self.check_name(name)
        literal = _address(name)
        if literal is not None:
            return self.allowed(name, [literal], port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(within):  # not wait_for: on 3.11 it can swallow the run's cancel
                infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except TimeoutError:
            raise HostNotFoundError(
                f"Looking up host {clip(host)} took longer than {within:g} s: check the URL's host name "
                "and this machine's DNS."
            ) from None
        except UnicodeError:
            raise HostNotFoundError(f"{clip(host)} is not a valid host name: check the URL.") from None
        except OSError as exc:
            raise HostNotFoundError(
                f"Host {clip(host)} does not resolve ({exc.strerror or exc}): check the URL's host name."
            ) from None
        found: list[IPAddress] = []
        for info in infos:
            address = _address(str(info[4][0]))
            if address is not None and address not in found:
                found.append(address)
        if not found:
            raise HostNotFoundError(f"Host {clip(host)} has no IP address: check the URL's host name.")
        return self.allowed(name, found, port)


class PolicyBackend:
    """An httpcore2 network backend that connects only to addresses `policy` allows (checked at connect time)."""

    def __init__(self, policy: AddressPolicy, inner: AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's backend interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port, timeout or RESOLVE_TIMEOUT)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except Exception as exc:  # try the next checked address, as a resolver-driven connect would
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's backend interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise AddressNotAllowedError("Jobs may not connect to Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def policy_backend(policy: AddressPolicy) -> AsyncNetworkBackend:
    """A `PolicyBackend` over httpcore2's default backend (imports httpcore2)."""
    import httpcore2

    return cast("AsyncNetworkBackend", PolicyBackend(policy, httpcore2.AnyIOBackend()))
