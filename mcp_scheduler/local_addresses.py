"""This machine's own names and addresses: what a client elsewhere on the network puts in `Host`.

A server listening on a wildcard address (`0.0.0.0`, `::`) is reached by the machine's host name, its
fully qualified name or one of its interfaces' addresses; those are accepted as `Host` (and `Origin`)
besides the loopback names, and the log prints URLs made of them. The interfaces' addresses come from
the C library's `getifaddrs` (Linux, macOS, the BSDs; through ctypes, no extra dependency), plus what
the host names resolve to (the only source on Windows). They are read once, when the server starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import sys
from dataclasses import dataclass

__all__ = ["LocalAddresses", "interface_addresses", "local_addresses"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class LocalAddresses:
    """This machine's host names (lower case) and the addresses of its interfaces (loopback included)."""

    names: tuple[str, ...] = ()
    addresses: tuple[IPAddress, ...] = ()

    def host_values(self) -> list[str]:
        """The names and addresses as they appear in a `Host` header (IPv6 in brackets, no zone)."""
        values = list(self.names)
        values += [f"[{a}]" if a.version == 6 else str(a) for a in self.addresses]
        return values


class _SockAddr(ctypes.Structure):
    _fields_ = [("sa_data", ctypes.c_ubyte * 2)]  # only the family is read here; the rest by length


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_SockAddr)),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_dstaddr", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _family(pointer: int) -> int:
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return ctypes.c_uint8.from_address(pointer + 1).value  # BSD: sa_len, then an 8-bit sa_family
    return ctypes.c_ushort.from_address(pointer).value


def interface_addresses() -> list[IPAddress]:
    """The IPv4 and IPv6 addresses of this machine's interfaces, from `getifaddrs` ([] where it is missing)."""
    if sys.platform == "win32":
        return []
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        getifaddrs, freeifaddrs = libc.getifaddrs, libc.freeifaddrs
    except (OSError, AttributeError):
        return []
    head = ctypes.POINTER(_IfAddrs)()
    if getifaddrs(ctypes.byref(head)) != 0:
        return []
    found: list[IPAddress] = []
    try:
        entry = head
        while entry:
            address = ctypes.cast(entry.contents.ifa_addr, ctypes.c_void_p).value
            if address:
                family = _family(address)
                if family == socket.AF_INET:  # sockaddr_in: the address at offset 4
                    found.append(ipaddress.IPv4Address(ctypes.string_at(address + 4, 4)))
                elif family == socket.AF_INET6:  # sockaddr_in6: the address at offset 8
                    found.append(ipaddress.IPv6Address(ctypes.string_at(address + 8, 16)))
            entry = entry.contents.ifa_next
    finally:
        freeifaddrs(head)
    return found


def _resolved(name: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return found


def local_addresses() -> LocalAddresses:
    """This machine's host name, its fully qualified name and its addresses (interfaces, and what the names
    resolve to), each once, in that order."""
    names: list[str] = []
    for name in (socket.gethostname(), socket.getfqdn()):
        name = name.strip().lower().rstrip(".")
        if name and name not in names and name != "localhost":
            names.append(name)
    addresses: list[IPAddress] = []
    for address in interface_addresses() + [a for name in names for a in _resolved(name)]:
        if address not in addresses:
            addresses.append(address)
    return LocalAddresses(tuple(names), tuple(addresses))
