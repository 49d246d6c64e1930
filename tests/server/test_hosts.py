"""Which Host and Origin headers the HTTP transports accept, and `--allowed-host` parsing (in process)."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

import pytest
from mcp.server.transport_security import TransportSecurityMiddleware

from mcp_scheduler.cli import parse_settings
from mcp_scheduler.cli.listen import reachable_urls
from mcp_scheduler.local_addresses import LocalAddresses, local_addresses
from mcp_scheduler.server.hosts import transport_security
from mcp_scheduler.settings import AllowedHost, Settings, parse_allowed_host


def checks(host: str, *allowed: str) -> TransportSecurityMiddleware:
    return TransportSecurityMiddleware(transport_security(Settings(transport="http", host=host, allowed_hosts=allowed)))


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.2", "127.1.2.3", "localhost", "::1", "0.0.0.0", "::"])
def test_every_loopback_and_wildcard_listener_refuses_evil_hosts_and_accepts_loopback_names(listen: str) -> None:
    middleware = checks(listen)
    assert middleware.settings.enable_dns_rebinding_protection
    for evil in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example:80", "[::2]:8765", ""):
        assert not middleware._validate_host(evil), evil
    for evil in ("http://evil.example", "https://evil.example:8765", "null", "http://localhost.evil.example:1"):
        assert not middleware._validate_origin(evil), evil
    for good in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"):
        assert middleware._validate_host(good), good
        assert middleware._validate_origin(f"http://{good}"), good


def test_a_listener_accepts_its_own_address() -> None:
    assert checks("127.0.0.2")._validate_host("127.0.0.2:9000")
    assert checks("10.1.2.3")._validate_host("10.1.2.3:9000")
    assert not checks("10.1.2.3")._validate_host("127.0.0.1:9000")
    assert checks("fe80::1")._validate_host("[fe80::1]:9000")


def test_allowed_hosts_add_a_name_with_its_port_or_with_any_port() -> None:
    middleware = checks("127.0.0.1", "proxy.example:8443", "lan.example")
    assert middleware._validate_host("proxy.example:8443")
    assert not middleware._validate_host("proxy.example:8444")
    assert middleware._validate_origin("https://proxy.example:8443")
    assert middleware._validate_host("lan.example") and middleware._validate_host("lan.example:1")
    assert middleware._validate_origin("https://lan.example")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", AllowedHost("example.com")),
        ("Example.COM:8765", AllowedHost("example.com", 8765)),
        ("10.0.0.5:80", AllowedHost("10.0.0.5", 80)),
        ("[fe80::1]:8765", AllowedHost("[fe80::1]", 8765)),
        ("[::1]", AllowedHost("[::1]")),
        ("::1", AllowedHost("[::1]")),
    ],
)
def test_allowed_host_values_are_parsed(value: str, expected: AllowedHost) -> None:
    assert parse_allowed_host(value) == expected


@pytest.mark.parametrize("value", ["", " ", "http://example.com", "example.com/mcp", "example.com:", "example.com:0",
                                   "example.com:99999", "example.com:port", "[::1", "[::1]x", "[zz]:80", "*",
                                   "a b", "user@example.com", "exa\nmple.com"])
def test_malformed_allowed_hosts_are_refused_with_the_expected_form(value: str) -> None:
    with pytest.raises(ValueError, match="give HOST or HOST:PORT"):
        parse_allowed_host(value)


def test_allowed_host_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_ALLOWED_HOST", "a.example, b.example:1")
    assert parse_settings([])[1].allowed_hosts == ("a.example", "b.example:1")
    assert parse_settings(["--allowed-host", "c.example"])[1].allowed_hosts == ("c.example",)
    with pytest.raises(SystemExit):
        parse_settings(["--allowed-host", "http://c.example"])
    assert "give HOST or HOST:PORT" in capsys.readouterr().err
    monkeypatch.setenv("MCP_SCHEDULER_ALLOWED_HOST", "bad/host")
    with pytest.raises(SystemExit):
        parse_settings([])
    assert "MCP_SCHEDULER_ALLOWED_HOST" in capsys.readouterr().err


OWN = LocalAddresses(("box", "box.lan.example"), (IPv4Address("127.0.0.1"), IPv4Address("10.1.2.3"),
                                                   IPv6Address("::1"), IPv6Address("fd00::2"), IPv6Address("fe80::1")))


@pytest.mark.parametrize("listen", ["0.0.0.0", "::"])
def test_a_wildcard_listener_accepts_the_machines_own_names_and_addresses_and_no_other_name(listen: str) -> None:
    middleware = TransportSecurityMiddleware(transport_security(Settings(transport="http", host=listen), OWN))
    for good in ("box:8765", "box.lan.example:8765", "box.lan.example", "10.1.2.3:8765", "[fd00::2]:8765",
                 "[fe80::1]:8765", "127.0.0.1:8765", "localhost:8765"):
        assert middleware._validate_host(good), good
    for good in ("http://box.lan.example:8765", "https://10.1.2.3:8765", "http://[fd00::2]:8765"):
        assert middleware._validate_origin(good), good
    for evil in ("evil.example:8765", "box.evil.example:8765", "box.lan.example.evil.example:8765", "10.1.2.4:8765",
                 "10.1.2.3.nip.io:8765", "[fd00::3]:8765", "0.0.0.0:8765", "lan.example:8765"):
        assert not middleware._validate_host(evil), evil
    for evil in ("http://evil.example", "http://box.evil.example:8765", "null"):
        assert not middleware._validate_origin(evil), evil


def test_a_listener_on_one_address_does_not_accept_the_machines_other_names() -> None:
    middleware = TransportSecurityMiddleware(transport_security(Settings(transport="http", host="127.0.0.1"), OWN))
    assert middleware._validate_host("127.0.0.1:8765")
    assert not middleware._validate_host("box:8765")
    assert not middleware._validate_host("10.1.2.3:8765")


def udp_source_address() -> str | None:
    """The address this machine would send from to the outside (a UDP connect sends nothing), if it has one."""
    for target in (("192.0.2.1", 9), ("198.51.100.1", 9)):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(target)
            except OSError:
                continue
            address = str(sock.getsockname()[0])
            if address != "0.0.0.0":
                return address
    return None


def test_the_machines_own_host_name_and_addresses_are_found() -> None:
    own = local_addresses()
    assert socket.gethostname().lower() in own.names
    assert IPv4Address("127.0.0.1") in own.addresses
    source = udp_source_address()
    if source is not None:
        assert IPv4Address(source) in own.addresses
    assert "localhost" not in own.names


def test_the_urls_of_a_wildcard_listener_are_the_loopback_one_then_the_machines_names_and_addresses() -> None:
    assert reachable_urls("0.0.0.0", 8765, "/mcp", OWN) == [
        "http://127.0.0.1:8765/mcp", "http://box:8765/mcp", "http://box.lan.example:8765/mcp",
        "http://10.1.2.3:8765/mcp",
    ]
    assert reachable_urls("::", 9000, "/sse", OWN) == [
        "http://[::1]:9000/sse", "http://box:9000/sse", "http://box.lan.example:9000/sse", "http://[fd00::2]:9000/sse",
    ]
    assert reachable_urls("0.0.0.0", 8765, "/mcp") == ["http://127.0.0.1:8765/mcp"]
    assert reachable_urls("10.1.2.3", 8765, "/mcp", OWN) == ["http://10.1.2.3:8765/mcp"]
    assert reachable_urls("fd00::2", 8765, "/mcp", OWN) == ["http://[fd00::2]:8765/mcp"]
