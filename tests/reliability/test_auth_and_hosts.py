"""Auth and DNS-rebinding attempts against real `mcp-scheduler --transport http` processes.

Servers on 127.0.0.1, on another loopback address (127.0.0.2) and on 0.0.0.0, each with a bearer
token. Every attempt without the right token is refused with 401 and changes nothing; a request
with the right token but an evil `Host` is refused with 421 and an evil `Origin` with 403, on
every address; `--allowed-host` (and `MCP_SCHEDULER_ALLOWED_HOST`) adds names; a server on 0.0.0.0
accepts the right token sent to 127.0.0.1, and to the machine's own name and addresses, as the README's
replicas recipe needs. The attempts are counted in the `auth` figure.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests._net import INITIALIZE, MCP_HEADERS, free_port, stop, wait_until_listening
from tests.reliability._figures import Figures

TOKEN = "s3cret-Token_42"
ALLOWED_WITH_PORT = "proxy.example:8443"
ALLOWED_ANY_PORT = "lan.example"

attempts: Counter[str] = Counter()


@dataclass
class Server:
    """A running server subprocess and where to reach it."""

    name: str
    address: str  # where the test connects
    port: int
    database: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/mcp"


@contextlib.contextmanager
def running(tmp: Path, name: str, listen: str, connect: str, *extra: str, env: dict[str, str] | None = None
            ) -> Iterator[Server]:
    port = free_port()
    database = tmp / f"{name}.db"
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--host", listen, "--port", str(port),
             "--db", str(database), "--timezone", "UTC", "--auth-token", TOKEN, *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})},
        )
    try:
        wait_until_listening(process, port, log=str(log_path), host=connect)
        yield Server(name, connect, port, database, log_path)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp = tmp_path_factory.mktemp("auth")
    with (
        running(tmp, "loopback", "127.0.0.1", "127.0.0.1") as first,
        running(tmp, "other-loopback", "127.0.0.2", "127.0.0.2", "--allowed-host", ALLOWED_WITH_PORT,
                env={"MCP_SCHEDULER_ALLOWED_HOST": "ignored.example"}) as second,
        running(tmp, "env-allowed", "127.0.0.2", "127.0.0.2",
                env={"MCP_SCHEDULER_ALLOWED_HOST": f"{ALLOWED_ANY_PORT}, {ALLOWED_WITH_PORT}"}) as third,
        running(tmp, "wildcard", "0.0.0.0", "127.0.0.1") as wildcard,
    ):
        yield {s.name: s for s in (first, second, third, wildcard)}


@pytest.fixture
def record(figures: Figures) -> Iterator[Counter[str]]:
    yield attempts
    figures.add("auth", attempts=attempts["attempts"], unauthenticated_accepted=attempts["unauthenticated_accepted"],
                evil_host_or_origin_accepted=attempts["evil_accepted"], servers=4)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tool_call(job_id: str) -> dict[str, Any]:
    arguments = {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
                 "input_data": {"operation": "log", "level": "INFO", "message": "x"}, "job_id": job_id}
    params = {"name": "schedule_job", "arguments": arguments,
              "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}


async def send(server: Server, method: str, headers: dict[str, str], body: Any = None) -> int | None:
    """The status code of one raw request (None if the server closed the connection instead of answering)."""
    async with httpx2.AsyncClient(timeout=10) as raw:
        try:
            response = await raw.request(method, server.url, json=body, headers=MCP_HEADERS | headers)
        except (httpx2.RemoteProtocolError, httpx2.ReadError):
            return None
    return response.status_code


# (Values with trailing white space are left out: HTTP clients refuse to send them and servers strip it.)
BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Bearer " + TOKEN.upper()},
    {"Authorization": "Bearer " + TOKEN.lower()},
    {"Authorization": "Bearer " + TOKEN.swapcase()},
    {"Authorization": "Bearer " + TOKEN[:-1]},
    {"Authorization": "Bearer " + TOKEN + "x"},
    {"Authorization": "Bearer  " + TOKEN},
    {"Authorization": "Bearer\t" + TOKEN},
    {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},
    {"Authorization": "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()},
    {"Authorization": "Token " + TOKEN},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer " + base64.b64encode(TOKEN.encode()).decode()},
    {"Authorization": "Bearer " + "A" * 8_000},
    {"Authorization": "Bearer " + TOKEN * 500},
    {"X-Auth-Token": TOKEN},
    {"Cookie": f"token={TOKEN}"},
]


@pytest.mark.parametrize("name", ["loopback", "other-loopback", "wildcard"])
async def test_every_request_without_the_right_token_is_401_and_changes_nothing(
    servers: dict[str, Server], name: str, record: Counter[str]
) -> None:
    server = servers[name]
    statuses: list[tuple[int, str, int | None]] = []
    for index, headers in enumerate(BAD_AUTH):
        for method, body in (("POST", INITIALIZE), ("POST", tool_call(f"attack-{index}")), ("GET", None),
                             ("DELETE", None)):
            status = await send(server, method, headers, body)
            record["attempts"] += 1
            if status is not None and status < 400:
                record["unauthenticated_accepted"] += 1
            statuses.append((index, method, status))
    # A huge header is refused by the HTTP server itself, before auth: refused either way, never accepted.
    huge = await send(server, "POST", bearer(TOKEN + "A" * 1_000_000), INITIALIZE)
    record["attempts"] += 1
    record["unauthenticated_accepted"] += huge is not None and huge < 400

    assert [(BAD_AUTH[i], method, status) for i, method, status in statuses if status != 401] == []
    assert huge is None or huge >= 400
    async with (
        httpx2.AsyncClient(headers=bearer(TOKEN)) as authorised,
        Client(streamable_http_client(server.url, http_client=authorised)) as client,
    ):
        page = await client.call_tool("list_jobs", {"limit": 1000})
    assert not page.is_error and page.structured_content is not None
    assert [j["job_id"] for j in page.structured_content["jobs"] if j["job_id"].startswith("attack-")] == []


EVIL_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}", "localhost.evil.example",
              "{address}.nip.io:{port}", "[::2]:{port}"]
EVIL_ORIGINS = ["http://evil.example", "http://evil.example:{port}", "https://{address}.evil.example", "null",
                "http://127.0.0.1.evil.example:{port}", "file://"]


@pytest.mark.parametrize("name", ["loopback", "other-loopback", "env-allowed", "wildcard"])
async def test_an_evil_host_is_421_and_an_evil_origin_403_on_every_address(
    servers: dict[str, Server], name: str, record: Counter[str]
) -> None:
    server = servers[name]
    fill = {"port": server.port, "address": server.address}
    host_statuses, origin_statuses = [], []
    for pattern in EVIL_HOSTS:
        status = await send(server, "POST", bearer(TOKEN) | {"Host": pattern.format_map(fill)}, INITIALIZE)
        record["attempts"] += 1
        record["evil_accepted"] += status is not None and status < 400
        host_statuses.append((pattern, status))
    for pattern in EVIL_ORIGINS:
        status = await send(server, "POST", bearer(TOKEN) | {"Origin": pattern.format_map(fill)}, INITIALIZE)
        record["attempts"] += 1
        record["evil_accepted"] += status is not None and status < 400
        origin_statuses.append((pattern, status))

    assert [s for s in host_statuses if s[1] != 421] == []
    assert [s for s in origin_statuses if s[1] != 403] == []
    # and the right token, to the address itself, from a page of that address, is served
    own = {"Origin": f"http://{server.address}:{server.port}"}
    assert await send(server, "POST", bearer(TOKEN) | own, INITIALIZE) == 200


async def test_allowed_host_adds_a_host_with_its_port_or_with_any_port(
    servers: dict[str, Server], record: Counter[str]
) -> None:
    flag, env = servers["other-loopback"], servers["env-allowed"]

    async def status(server: Server, host: str, origin: str | None = None) -> int | None:
        record["attempts"] += 1
        headers = bearer(TOKEN) | {"Host": host} | ({"Origin": origin} if origin else {})
        return await send(server, "POST", headers, INITIALIZE)

    # --allowed-host proxy.example:8443: that port only (and the flag wins over the environment variable)
    assert await status(flag, ALLOWED_WITH_PORT, f"https://{ALLOWED_WITH_PORT}") == 200
    assert await status(flag, "proxy.example:8444") == 421
    assert await status(flag, "proxy.example") == 421
    assert await status(flag, f"{ALLOWED_ANY_PORT}:80") == 421
    assert await status(flag, "ignored.example:80") == 421
    assert await status(flag, ALLOWED_WITH_PORT, "https://evil.example") == 403
    # MCP_SCHEDULER_ALLOWED_HOST=lan.example, proxy.example:8443: lan.example on any port
    assert await status(env, ALLOWED_ANY_PORT) == 200
    assert await status(env, f"{ALLOWED_ANY_PORT}:9000", f"http://{ALLOWED_ANY_PORT}:9000") == 200
    assert await status(env, f"{ALLOWED_ANY_PORT}:9000", f"https://{ALLOWED_ANY_PORT}") == 200
    assert await status(env, ALLOWED_WITH_PORT) == 200
    assert await status(env, f"sub.{ALLOWED_ANY_PORT}:9000") == 421


async def test_a_wildcard_server_with_a_token_serves_a_real_client_on_127_0_0_1(
    servers: dict[str, Server], record: Counter[str]
) -> None:
    server = servers["wildcard"]
    record["attempts"] += 1
    async with (
        httpx2.AsyncClient(headers=bearer(TOKEN)) as authorised,
        Client(streamable_http_client(server.url, http_client=authorised)) as client,
    ):
        status = await client.call_tool("scheduler_status", {})
    assert not status.is_error
    for host in ("localhost", "[::1]"):
        record["attempts"] += 1
        assert await send(server, "POST", bearer(TOKEN) | {"Host": f"{host}:{server.port}"}, INITIALIZE) == 200


def udp_source_address() -> str | None:
    """The address this machine would send from to the outside (a UDP connect sends nothing), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address in ("0.0.0.0", "127.0.0.1") else address


async def test_a_wildcard_server_answers_the_machines_own_name_and_address_and_the_urls_it_logs(
    servers: dict[str, Server], record: Counter[str]
) -> None:
    """The replicas recipe (`--host 0.0.0.0 --auth-token T`, no --allowed-host) serves clients that reach the
    machine by its name or address; an evil name still gets 421."""
    server = servers["wildcard"]
    name = socket.gethostname()

    async def status(host: str, connect: str = "127.0.0.1") -> int | None:
        record["attempts"] += 1
        to = Server(server.name, connect, server.port, server.database, server.log)
        return await send(to, "POST", bearer(TOKEN) | {"Host": host}, INITIALIZE)

    assert await status(f"{name}:{server.port}") == 200
    assert await status(f"{name}.evil.example:{server.port}") == 421
    assert await status(f"evil.example:{server.port}") == 421
    address = udp_source_address()
    if address is not None:  # connect to the machine's own address for real, with a real MCP client
        assert await status(f"{address}:{server.port}", connect=address) == 200
        async with (
            httpx2.AsyncClient(headers=bearer(TOKEN)) as authorised,
            Client(streamable_http_client(f"http://{address}:{server.port}/mcp", http_client=authorised)) as client,
        ):
            assert not (await client.call_tool("scheduler_status", {})).is_error

    listening = [line for line in server.log.read_text().splitlines() if "listening on" in line]
    assert len(listening) == 1, listening
    urls = re.findall(r"http://\S+?/mcp", listening[0])
    assert urls and urls[0] == f"http://127.0.0.1:{server.port}/mcp", listening[0]
    assert f"http://{name.lower()}:{server.port}/mcp" in urls
    if address is not None:
        assert f"http://{address}:{server.port}/mcp" in urls
    assert "0.0.0.0:" not in " ".join(urls)
    for url in urls:  # every URL the log prints is answered (reached on 127.0.0.1, its Host as the URL says)
        host = url.removeprefix("http://").split("/")[0]
        assert await status(host) == 200, url
