"""The `http` AgenTool against a real HTTP server on 127.0.0.1, alone and through a scheduler runtime."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.http import (
    AddressNotAllowedError,
    HostNotFoundError,
    HttpRequestError,
    HttpStatusError,
    HttpToolkit,
)
from mcp_scheduler import InvalidJobInputError, JobExecutionError, SchedulerInput, ServiceConfig
from mcp_scheduler.cli import parse_settings
from mcp_scheduler.runtime import SchedulerRuntime
from tests.toolkits._http_server import LocalServer, serve_http

SECRET = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


def use_http(injector: AgenToolInjector, **config: Any) -> None:
    injector.register(HttpToolkit(ToolkitConfig(**config)).agentool())


async def request(injector: AgenToolInjector, url: str, **fields: Any) -> dict[str, Any]:
    output = await injector.run("http", {"operation": "request", "url": url, **fields})
    assert output.operation == "request"
    data: dict[str, Any] = output.data
    return data


# ---------------------------------------------------------------- responses


async def test_a_json_response_is_parsed(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/json")

    assert data["status"] == 200
    assert data["reason"] == "OK"
    assert data["body"]["content"] == {"hello": "world", "n": 1}
    assert data["headers"]["content"] == {"content-length": "26", "content-type": "application/json", "etag": '"v1"'}
    assert data["truncated"] is False
    assert data["bytes"] == 26
    assert data["url"] == f"{server.url}/json"
    assert isinstance(data["elapsed_ms"], int)


async def test_the_summary_is_the_status_with_its_standard_phrase_and_the_time(
    injector: AgenToolInjector, server: LocalServer
) -> None:
    use_http(injector)

    ok = await injector.run("http", {"operation": "request", "url": f"{server.url}/json"})
    teapot = await injector.run("http", {"operation": "request", "url": f"{server.url}/status/418",
                                         "expect_status": [418]})

    assert re.fullmatch(r"200 OK in \d+ ms", ok.summary), ok.summary
    assert re.fullmatch(r"418 I'm a Teapot in \d+ ms", teapot.summary), teapot.summary


async def test_a_text_response_is_decoded_with_its_charset(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/text", response_headers=["Content-Type"])

    assert data["body"]["content"] == "café crème"
    assert data["headers"]["content"] == {"content-type": "text/plain; charset=iso-8859-1"}


async def test_query_headers_and_json_body_reach_the_server(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(
        injector, f"{server.url}/echo/json", method="post", query={"q": "a b", "n": 2},
        headers={"X-Custom": "yes"}, json={"name": "nightly", "items": [1, 2]},
    )

    seen = data["body"]["content"]
    assert seen["method"] == "POST"
    assert seen["query"] == {"q": "a b", "n": "2"}
    assert seen["headers"]["x-custom"] == "yes"
    assert seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == {"name": "nightly", "items": [1, 2]}


async def test_a_text_body_is_sent_as_utf8_text(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/echo/text", method="PUT", text="héllo")

    assert data["body"]["content"]["body"] == "héllo"
    assert data["body"]["content"]["headers"]["content-type"] == "text/plain; charset=utf-8"


async def test_the_body_is_cut_at_the_cap_and_marked_truncated(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(
        injector, f"{server.url}/big?n=300000&type=application/json", max_response_bytes=1000
    )

    assert data["truncated"] is True
    assert data["bytes"] == 1000
    assert data["body"]["content"] == "x" * 1000  # cut JSON is returned as text, not parsed


async def test_a_slow_response_times_out(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    with pytest.raises(HttpRequestError, match=r"timed out after 0\.3 s"):
        await request(injector, f"{server.url}/slow", timeout=0.3)


async def test_an_unexpected_status_is_an_error(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    with pytest.raises(HttpStatusError, match=r"GET http://127\.0\.0\.1:\d+/status/503 returned 503 Service "
                       r"Unavailable \(expected 2xx\); untrusted response text from http://127\.0\.0\.1:\d+: "
                       r'"status 503 body with details"') as caught:
        await request(injector, f"{server.url}/status/503?token=hidden")

    assert caught.value.status == 503
    assert "hidden" not in str(caught.value)


async def test_expect_status_makes_other_codes_success(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/status/404", expect_status=[200, 404])
    assert data["status"] == 404

    with pytest.raises(HttpStatusError, match="expected 404"):
        await request(injector, f"{server.url}/json", expect_status=[404])


async def test_connection_refused_is_a_request_error(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    with pytest.raises(HttpRequestError, match="could not connect"):
        await request(injector, "http://127.0.0.1:1/")


# ---------------------------------------------------------------- redirects


async def test_redirects_are_followed_and_the_final_url_reported(
    injector: AgenToolInjector, server: LocalServer
) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/redirect?to=/json")

    assert data["body"]["content"] == {"hello": "world", "n": 1}
    assert data["url"] == f"{server.url}/json"


async def test_a_redirect_is_returned_when_not_followed(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    data = await request(injector, f"{server.url}/redirect?to=/json", follow_redirects=False, expect_status=[302])

    assert data["status"] == 302
    assert data["headers"]["content"]["location"] == "/json"


async def test_a_redirect_loop_stops_after_five_hops(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    with pytest.raises(HttpRequestError, match="redirected more than 5 times"):
        await request(injector, f"{server.url}/loop")


async def test_a_redirect_to_a_metadata_address_is_refused(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector, http_allow=("169.254.0.0/16",))

    with pytest.raises(AddressNotAllowedError, match="169.254.169.254: it is a cloud metadata address"):
        await request(injector, f"{server.url}/redirect?to=http://169.254.169.254/latest/meta-data/")


async def test_a_redirect_to_another_origin_leaves_the_callers_secret_headers_behind(
    injector: AgenToolInjector, server: LocalServer
) -> None:
    use_http(injector)
    elsewhere = f"http://localhost:{server.port}/echo/moved"

    data = await request(
        injector, f"{server.url}/redirect?to={elsewhere}", headers={"X-Api-Key": SECRET, "Accept": "text/plain"}
    )

    assert data["body"]["content"]["path"] == "/echo/moved"
    assert "x-api-key" not in data["body"]["content"]["headers"]
    assert data["body"]["content"]["headers"]["accept"] == "text/plain"


# ---------------------------------------------------------------- the address policy


REFUSED_ALWAYS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.10.1/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://[::ffff:169.254.169.254]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
]
ALLOW_EVERYTHING = (
    "0.0.0.0/0", "::/0", "169.254.0.0/16", "fe80::/10", "metadata.google.internal", "metadata", "100.64.0.0/10",
)


@pytest.mark.parametrize("exposed", [False, True])
@pytest.mark.parametrize("url", REFUSED_ALWAYS)
async def test_link_local_metadata_and_unspecified_addresses_are_refused_even_when_allowed_by_pattern(
    injector: AgenToolInjector, url: str, exposed: bool
) -> None:
    use_http(injector, http_allow=ALLOW_EVERYTHING, exposed=exposed)

    with pytest.raises(AddressNotAllowedError, match="no --http-allow pattern changes that"):
        await injector.check("http", {"operation": "request", "url": url})
    with pytest.raises(AddressNotAllowedError, match="no --http-allow pattern changes that"):
        await request(injector, url)


async def test_loopback_is_refused_when_exposed_and_the_message_names_the_flag(
    injector: AgenToolInjector, server: LocalServer
) -> None:
    use_http(injector, exposed=True)

    with pytest.raises(AddressNotAllowedError, match=r"127\.0\.0\.1 port \d+: it is a loopback address.*"
                       r"--http-allow 127\.0\.0\.1"):
        await injector.check("http", {"operation": "request", "url": f"{server.url}/json"})
    # At run time too, also for a name: the check is made where the connection is made.
    with pytest.raises(AddressNotAllowedError, match=r"the address of 'localhost'"):
        await request(injector, f"http://localhost:{server.port}/json")


async def test_private_addresses_are_refused_when_exposed(injector: AgenToolInjector) -> None:
    use_http(injector, exposed=True, http_allow=("192.168.0.0/16",))

    for url in ("http://10.1.2.3/", "http://172.16.0.1/", "http://100.64.0.1/", "http://[fd12::1]/"):
        with pytest.raises(AddressNotAllowedError, match="private address"):
            await injector.check("http", {"operation": "request", "url": url})
    await injector.check("http", {"operation": "request", "url": "http://192.168.1.10/"})


@pytest.mark.parametrize("pattern", ["127.0.0.1", "127.0.0.0/8", "localhost", "PORT"])
async def test_loopback_is_allowed_when_exposed_by_a_matching_http_allow_pattern(
    injector: AgenToolInjector, server: LocalServer, pattern: str
) -> None:
    pattern = f"127.0.0.1:{server.port}" if pattern == "PORT" else pattern
    use_http(injector, exposed=True, http_allow=(pattern,))
    host = "localhost" if pattern == "localhost" else "127.0.0.1"

    await injector.check("http", {"operation": "request", "url": f"http://{host}:{server.port}/json"})
    data = await request(injector, f"http://{host}:{server.port}/json")

    assert data["status"] == 200


async def test_an_allow_pattern_with_another_port_does_not_match(
    injector: AgenToolInjector, server: LocalServer
) -> None:
    use_http(injector, exposed=True, http_allow=(f"127.0.0.1:{server.port + 1}", "*.example.internal"))

    with pytest.raises(AddressNotAllowedError, match="loopback"):
        await request(injector, f"{server.url}/json")


def test_a_malformed_allow_pattern_is_refused_when_the_toolkit_is_built() -> None:
    with pytest.raises(ValueError, match=r"--http-allow pattern '10\.0\.0\.0/33' is not valid"):
        HttpToolkit(ToolkitConfig(http_allow=("10.0.0.0/33",)))
    with pytest.raises(ValueError, match="not a number from 1 to 65535"):
        HttpToolkit(ToolkitConfig(http_allow=("nas.local:99999",)))


async def test_a_name_that_does_not_resolve_is_a_warning_at_schedule_time_and_an_error_when_sent(
    injector: AgenToolInjector,
) -> None:
    use_http(injector)
    data = {"operation": "request", "url": "https://no-such-host.invalid/"}  # .invalid never resolves (RFC 6761)

    (warning,) = await injector.check("http", data)

    assert "'no-such-host.invalid' does not resolve" in warning and "Accepted anyway" in warning
    with pytest.raises(HostNotFoundError, match="'no-such-host.invalid' does not resolve"):
        await injector.run("http", data)


async def test_a_name_that_resolves_gives_no_warning(injector: AgenToolInjector, server: LocalServer) -> None:
    use_http(injector)

    assert await injector.check("http", {"operation": "request", "url": f"{server.url}/json"}) == []


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "ftp://example.com/file"}, "must start with http:// or https://"),
        ({"url": "example.com/path"}, "must start with http:// or https://"),
        ({"url": "http:///path"}, "url has no host"),
        ({"url": "http://example.com:99999/"}, "malformed"),
        ({"url": "http://example.com/a b"}, "spaces or control characters"),
        ({"url": "http://x.example/", "headers": {"X-Token": f"{SECRET}\r\nX-Evil: 1"}}, "CR, LF or NUL"),
        ({"url": "http://x.example/", "headers": {"X-Token": "naïve ☃"}}, "only Latin-1"),
        ({"url": "http://x.example/", "headers": {"Bad Name": "v"}}, "header name 'Bad Name' is not valid"),
        ({"url": "http://x.example/", "headers": {"Content-Length": "3"}}, "set by the HTTP client"),
        ({"url": "http://x.example/", "method": "POST", "json": {}, "text": "t"}, "either json or text"),
        ({"url": "http://x.example/", "text": "t"}, "a GET request has no body"),
        ({"url": "http://x.example/", "method": "TRACE"}, "method"),
        ({"url": "http://x.example/", "timeout": 301}, "timeout"),
        ({"url": "http://x.example/", "max_response_bytes": 10_000_001}, "max_response_bytes"),
    ],
)
def test_malformed_input_is_refused_without_echoing_header_values(
    injector: AgenToolInjector, fields: dict[str, Any], problem: str
) -> None:
    use_http(injector)

    with pytest.raises(AgenToolInputError, match=problem) as caught:
        injector.validate("http", {"operation": "request", **fields})

    assert SECRET not in str(caught.value)


# ---------------------------------------------------------------- through the scheduler


@pytest.fixture
async def runtime(tmp_path: Path) -> Any:
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), environ={"API_TOKEN": SECRET}, secrets=("API_TOKEN",))
    async with SchedulerRuntime(config) as rt:
        yield rt


def schedule_request(job_id: str, url: str, **fields: Any) -> SchedulerInput:
    return SchedulerInput(
        operation="schedule", job_id=job_id, schedule_type="interval", schedule="1 hour", agentool_name="http",
        input_data={"operation": "request", "url": url, **fields},
    )


@pytest.mark.parametrize(
    ("url", "headers", "error"),
    [
        ("ftp://example.com/", None, InvalidJobInputError),
        ("http://example.com/", {"X-Bad": "a\nb"}, InvalidJobInputError),
        ("http://169.254.169.254/", None, AddressNotAllowedError),
    ],
)
async def test_schedule_time_refusals_leave_no_job(
    runtime: SchedulerRuntime, url: str, headers: dict[str, str] | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await runtime.service.schedule(schedule_request("refused", url, headers=headers))

    jobs, total = runtime.service.list_jobs()
    assert (jobs, total) == ([], 0)


async def test_a_job_to_a_host_that_does_not_resolve_is_kept_with_a_warning_in_the_answer(
    runtime: SchedulerRuntime,
) -> None:
    job = await runtime.service.schedule(schedule_request("offline", "http://no-such-host.invalid/ping"))

    (warning,) = job.warnings
    assert "'no-such-host.invalid' does not resolve" in warning and "its runs fail until the host resolves" in warning
    assert [j.job_id for j in runtime.service.list_jobs()[0]] == ["offline"]
    assert "warnings" not in (await runtime.service.get_job("offline"))[0].model_dump()


async def test_an_unexpected_status_is_recorded_as_a_run_error(runtime: SchedulerRuntime, server: LocalServer) -> None:
    with pytest.raises(JobExecutionError, match="returned 500 Internal Server Error"):
        await runtime.service.run_now(SchedulerInput(
            operation="run_now", job_id="status-check", agentool_name="http",
            input_data={"operation": "request", "url": f"{server.url}/status/500"},
        ))

    [run] = await runtime.service.get_history("status-check")
    assert run.status == "error"
    assert run.error is not None
    assert run.error.type == "HttpStatusError"


async def test_an_env_secret_header_reaches_the_server_but_not_the_run_history(
    runtime: SchedulerRuntime, server: LocalServer
) -> None:
    await runtime.service.schedule(
        schedule_request("with-secret", f"{server.url}/echo/secret", headers={"X-Api-Key": "!env:API_TOKEN"})
    )
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="with-secret"))

    [received] = server.received_at("/echo/secret")
    assert received["headers"]["x-api-key"] == SECRET  # the server got the value, echoed back in the body
    [run] = await runtime.service.get_history("with-secret")
    assert run.status == "success"
    recorded = json.dumps(run.result)
    assert SECRET not in recorded
    assert run.result["data"]["body"]["content"]["headers"]["x-api-key"] == "!env:API_TOKEN"


def test_http_allow_reaches_the_toolkit_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_SCHEDULER_HTTP_ALLOW", raising=False)
    _, settings = parse_settings(
        ["--http-allow", "127.0.0.1", "--http-allow", "*.lan:8080", "--transport", "http", "--host", "0.0.0.0",
         "--allow-unauthenticated"]
    )

    config = settings.toolkit_config()

    assert config.http_allow == ("127.0.0.1", "*.lan:8080")
    assert config.exposed is True
    assert parse_settings([])[1].toolkit_config().exposed is False


async def test_the_runtime_gives_its_toolkit_config_to_http(tmp_path: Path, server: LocalServer) -> None:
    exposed = ToolkitConfig(exposed=True)
    allowed = ToolkitConfig(exposed=True, http_allow=("127.0.0.1",))
    data = {"operation": "request", "url": f"{server.url}/json"}
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "a.sqlite")), toolkit_config=exposed) as rt:
        with pytest.raises(AddressNotAllowedError):
            await rt.service.check_job_input("http", data)
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "b.sqlite")), toolkit_config=allowed) as rt:
        await rt.service.check_job_input("http", data)
