"""Which Host and Origin headers the HTTP transports accept, and `--allowed-host` parsing (in process)."""

from __future__ import annotations

import pytest
from mcp.server.transport_security import TransportSecurityMiddleware

from mcp_scheduler.cli import parse_settings
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
