"""Prometheus metrics after real runs: `/metrics` of a real HTTP server (behind its bearer token), and the
`--metrics-port` listener of an in-process server, parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from mcp_scheduler.metrics import not_run_reason
from mcp_scheduler.principals import ADMIN, READ, RUN, WRITE
from tests._net import TEST_TOKEN, authorized, bearer
from tests.server._issuer import Issuer
from tests.server.conftest import WAIT, HttpServer, ServerFactory, hosted, hourly, http_server, structured
from tests.toolkits._http_server import LocalServer, serve_http

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture(scope="module")
def local() -> Iterator[LocalServer]:
    with serve_http() as server:
        yield server


def http_job(job_id: str, url: str, schedule_type: str = "once", schedule: str = "now", **extra: Any) -> dict[str, Any]:
    return {"schedule_type": schedule_type, "schedule": schedule, "agentool_name": "http", "job_id": job_id,
            "input_data": {"operation": "request", "method": "GET", "url": url}, **extra}


async def test_metrics_of_a_real_http_server_show_runs_failures_skipped_fires_and_paused_jobs(
    tmp_path: Path, local: LocalServer
) -> None:
    args = ("--transport", "http", "--metrics", "--auth-token", TEST_TOKEN, "--http-allow", "127.0.0.1")
    with http_server(tmp_path, *args) as server:
        metrics_url = f"{server.base}/metrics"
        async with httpx2.AsyncClient(timeout=WAIT) as http:
            refused = await http.get(metrics_url)
            assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]

            async with Client(authorized(f"{server.base}/mcp")) as client:
                for arguments in (
                    http_job("ok", f"{local.url}/echo"),
                    http_job("bad", f"{local.url}/status/500"),
                    # fires every second while its first run waits on /slow: the next fires are skipped
                    http_job("busy", f"{local.url}/slow", "interval", "1 second"),
                    hourly("idle"),
                ):
                    result = await client.call_tool("schedule_job", arguments)
                    assert not result.is_error, result
                assert not (await client.call_tool("pause_job", {"job_id": "idle"})).is_error

                found: Samples = {}

                async def scrape() -> Samples:
                    answer = await http.get(metrics_url, headers=bearer())
                    assert answer.status_code == 200
                    return samples(answer.text)

                async def until(check: Any, what: str) -> None:
                    nonlocal found
                    for _ in range(int(WAIT / 0.05)):
                        found = await scrape()
                        if check(found):
                            return
                        await asyncio.sleep(0.05)
                    raise AssertionError(f"{what} not in /metrics:\n" + "\n".join(map(str, sorted(found))))

                await until(lambda f: value(f, "mcp_scheduler_runs_total", job_id="ok", status="success") == 1
                            and value(f, "mcp_scheduler_runs_total", job_id="bad", status="error") == 1
                            and (value(f, "mcp_scheduler_fires_not_run_total", job_id="busy", status="skipped",
                                       reason="overlap") or 0) >= 1, "the runs and a skipped fire")
                local.release.set()  # the busy job's run ends
                await client.call_tool("cancel_job", {"job_id": "busy"})

        assert value(found, "mcp_scheduler_job_suspended", job_id="idle") == 1
        assert value(found, "mcp_scheduler_job_suspended", job_id="bad") == 0
        assert (value(found, "mcp_scheduler_job_last_successful_time_seconds", job_id="ok") or 0) > 0
        assert value(found, "mcp_scheduler_job_last_successful_time_seconds", job_id="bad") is None
        assert (value(found, "mcp_scheduler_job_last_schedule_time_seconds", job_id="bad") or 0) > 0
        assert (value(found, "mcp_scheduler_job_next_schedule_time_seconds", job_id="busy") or 0) > 0
        assert value(found, "mcp_scheduler_job_active_runs", job_id="busy") == 1
        assert value(found, "mcp_scheduler_job_info", job_id="busy", job_name="", kind="http",
                      schedule_type="interval") == 1
        assert (value(found, "mcp_scheduler_fire_lateness_seconds_count") or 0) >= 2
        assert (value(found, "mcp_scheduler_store_write_duration_seconds_count") or 0) >= 1
        assert value(found, "mcp_scheduler_is_runner") == 1
        assert value(found, "mcp_scheduler_metrics_jobs_dropped") == 0
        assert value(found, "mcp_scheduler_jobs", state="paused") == 1


async def test_beyond_the_job_cap_per_job_series_are_dropped_and_counted_on_the_metrics_port(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file, metrics_port=0, metrics_max_jobs=2)
    async with hosted(Client(server)) as client, httpx2.AsyncClient(timeout=WAIT) as http:
        assert server.metrics is not None and server.metrics.port
        for job_id in ("a", "b", "c"):
            await client.call_tool("schedule_job", hourly(job_id))
        for job_id in ("c", "a", "b"):
            record = structured(await client.call_tool("run_now", {"job_id": job_id}))
            assert record["status"] == "success", record
        answer = await http.get(f"http://127.0.0.1:{server.metrics.port}/metrics")
        assert answer.status_code == 200
        found = samples(answer.text)
    per_job = {labels for (name, labels) in found if name == "mcp_scheduler_job_suspended"}
    assert per_job == {(("job_id", "a"),), (("job_id", "b"),)}  # the first two jobs created
    assert value(found, "mcp_scheduler_metrics_jobs_dropped") == 1
    # the counters name the first two jobs that ran; the third is counted with the others
    assert value(found, "mcp_scheduler_runs_total", job_id="c", status="success") == 1
    assert value(found, "mcp_scheduler_runs_total", job_id="a", status="success") == 1
    assert value(found, "mcp_scheduler_runs_total", job_id="_other", status="success") == 1


async def test_a_metrics_port_in_use_is_refused_in_one_line(make_server: ServerFactory, db_file: str) -> None:
    import socket

    from mcp_scheduler.errors import SetupError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = make_server(db_file, metrics_port=taken.getsockname()[1])
        with pytest.raises(SetupError, match="--metrics-port"):
            async with server.use():
                pass


@pytest.mark.parametrize(("note", "reason"), [
    ("coalesced: a later run time replaced it (catchup: latest)", "coalesced"),
    ("due 40.0 s ago, beyond misfire_grace_time 30 s", "misfire_grace_time"),
    ("due 2 days ago, longer ago than its catch-up window (1 day): the machine was off", "catchup_window"),
    ("catchup: none", "catchup_policy"),
    ("a run was still in progress (overlap: skip)", "overlap"),
    ("max_instances (1) runs were still in progress", "max_instances"),
    ("the runner lease was lost before the run started; not run", "lease_lost"),
    ("the store could not be written when the run was to start (OSError: x); not run", "store_unwritable"),
    ("something new", "other"),
])
def test_the_reason_of_a_fire_that_did_not_run_is_read_from_its_note(note: str, reason: str) -> None:
    assert not_run_reason(note) == reason


# ---------------------------------------------------------------------------------------------- who may scrape

_NAMED = ("reader:read:reader-token-of-the-metrics-tests", "bot:admin:admin-token-of-the-metrics-tests")


def _scrape(server: HttpServer, token: str | None) -> httpx2.Response:
    return httpx2.get(f"{server.base}/metrics", headers=bearer(token) if token else {}, timeout=WAIT)


def test_metrics_take_the_endpoints_tokens_and_admin_while_per_job_series_name_every_principals_jobs(
    tmp_path: Path, issuer: Issuer
) -> None:
    args = ("--transport", "http", "--metrics", "--oauth-issuer", issuer.url,
            *(arg for token in _NAMED for arg in ("--auth-token", token)))
    with http_server(tmp_path, *args) as server:
        audience = f"{server.base}/mcp"
        assert _scrape(server, None).status_code == 401
        assert _scrape(server, issuer.mint([ADMIN], "http://127.0.0.1:1/mcp")).status_code == 401  # not for it
        for reader in (issuer.mint([READ, WRITE, RUN], audience), _NAMED[0].rsplit(":", 1)[1]):
            refused = _scrape(server, reader)
            assert refused.status_code == 403, refused.text
            challenge = refused.headers["www-authenticate"]
            assert challenge.startswith(f'Bearer error="insufficient_scope", scope="{ADMIN}"'), challenge
            assert "--metrics-max-jobs 0" in refused.text
        for admin in (issuer.mint([ADMIN], audience, subject="prometheus"), _NAMED[1].rsplit(":", 1)[1]):
            answer = _scrape(server, admin)
            assert answer.status_code == 200 and value(samples(answer.text), "mcp_scheduler_is_runner") == 1


async def test_without_per_job_series_a_read_token_may_scrape(tmp_path: Path, issuer: Issuer) -> None:
    args = ("--transport", "http", "--metrics", "--metrics-max-jobs", "0", "--oauth-issuer", issuer.url,
            *(arg for token in _NAMED for arg in ("--auth-token", token)))
    with http_server(tmp_path, *args) as server:
        audience = f"{server.base}/mcp"
        async with Client(authorized(audience, _NAMED[1].rsplit(":", 1)[1])) as client:
            structured(await client.call_tool("schedule_job", hourly("secret-name")))
            assert structured(await client.call_tool("run_now", {"job_id": "secret-name"}))["status"] == "success"
        refused = _scrape(server, issuer.mint([WRITE], audience))
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"].startswith(f'Bearer error="insufficient_scope", scope="{READ}"')
        for reader in (issuer.mint([READ], audience), _NAMED[0].rsplit(":", 1)[1]):
            answer = _scrape(server, reader)
            assert answer.status_code == 200, answer.text
            found = samples(answer.text)
            assert value(found, "mcp_scheduler_runs_total", job_id="_other", status="success") == 1
            assert "secret-name" not in answer.text  # no series names a job
