"""The httpx2 adapter (`toolkits/http/_httpx.py`): its compatibility check, and that httpx2 really sends through
the connection pool the adapter puts in, so that the address policy is checked when each connection is made."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from agentool_bridge import versions
from agentool_bridge.toolkits.http import AddressNotAllowedError, _httpx
from agentool_bridge.toolkits.http.addresses import AddressPolicy, policy_backend
from tests.toolkits._http_server import LocalServer, serve_http


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


async def get(policy: AddressPolicy, url: str) -> httpx2.Response:
    """GET `url` through the transport the adapter builds for `policy`."""
    transport = _httpx.policy_transport(httpx2.create_ssl_context(trust_env=False), policy_backend(policy))
    async with httpx2.AsyncClient(transport=transport, trust_env=False, timeout=10) as client:
        return await client.get(url)


def test_the_installed_httpx2_is_one_the_adapter_knows() -> None:
    _httpx.check_httpx()


@pytest.mark.parametrize("installed", ["3.0.0", "2.15.1"])
def test_an_httpx2_outside_the_supported_range_is_named_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, installed: str
) -> None:
    monkeypatch.setattr(versions, "version", lambda name: installed)
    with pytest.raises(RuntimeError, match=rf"httpx2 {installed} is installed.*>=2\.16,<3\.0.*pip install"):
        _httpx.check_httpx()


def test_a_transport_that_no_longer_sends_through_its_pool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    async def elsewhere(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200)

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", elsewhere)
    with pytest.raises(RuntimeError, match=r"AsyncHTTPTransport\.handle_async_request no longer use .*`_pool`"):
        _httpx.check_httpx()


async def test_a_host_name_that_resolves_to_a_refused_address_is_not_connected_to(server: LocalServer) -> None:
    exposed = AddressPolicy(exposed=True)  # loopback needs an --http-allow pattern
    before = len(server.received)

    with pytest.raises(AddressNotAllowedError, match="loopback"):
        await get(exposed, f"http://localhost:{server.port}/echo/refused")

    assert len(server.received) == before


async def test_the_same_request_goes_through_when_the_policy_allows_the_address(server: LocalServer) -> None:
    for policy in (AddressPolicy(), AddressPolicy(["localhost"], exposed=True)):
        response = await get(policy, f"http://localhost:{server.port}/echo/allowed")

        assert response.status_code == 200
        assert response.json()["path"] == "/echo/allowed"
