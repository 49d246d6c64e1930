"""The dashboard's page and JSON API on the HTTP transport, as a browser's requests reach them: the page under a
strict Content-Security-Policy, the API behind the bearer token, Host and Origin checked as on /mcp (DNS rebinding,
CSRF), actions answered with what happened, and each change of a job or run on the event stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest

from tests.server.conftest import HttpServer

from ._browser import WAIT, McpThread
from .conftest import READER, TOKEN, WRITER

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOG = {"operation": "log", "level": "INFO", "message": "hi"}


@pytest.fixture(scope="module")
def web(http: HttpServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=http.base, timeout=WAIT) as client:
        yield client


def test_the_page_is_served_beside_mcp_under_a_policy_that_runs_only_its_own_inline_code(web: httpx2.Client) -> None:
    page = web.get("/")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"


def test_the_api_needs_the_token_and_the_right_host_and_origin(web: httpx2.Client, http: HttpServer) -> None:
    assert web.get("/api/schedule").status_code == 401
    assert web.get("/api/schedule", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert web.get("/api/schedule", headers=AUTH).status_code == 200
    assert web.get("/", headers={"Host": "attacker.example"}).status_code == 421  # DNS rebinding
    assert web.get("/api/schedule", headers={**AUTH, "Host": "attacker.example"}).status_code == 421
    foreign = web.post(
        "/api/jobs/x/pause",
        headers={**AUTH, "Origin": "http://attacker.example", "Content-Type": "application/json"},
        content="{}",
    )
    assert foreign.status_code == 403  # a page elsewhere cannot act, even with the token
    same_site = web.get("/api/schedule", headers={**AUTH, "Origin": http.base})
    assert same_site.status_code == 200 and "access-control-allow-origin" not in same_site.headers
    form = web.post("/api/jobs/x/pause", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 400  # no form post can reach an action


def test_actions_answer_what_happened_and_unknown_jobs_and_runs_are_404(web: httpx2.Client, mcp: McpThread) -> None:
    mcp.call(
        "schedule_job",
        {
            "job_id": "web-job",
            "schedule_type": "interval",
            "schedule": "1 hour",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )
    post = {**AUTH, "Content-Type": "application/json"}

    paused = web.post("/api/jobs/web-job/pause", headers=post, content="{}").json()
    ran = web.post("/api/jobs/web-job/run", headers=post, content="{}").json()
    run = web.get(f"/api/runs/web-job/{ran['run_id']}", headers=AUTH).json()
    missing = web.post("/api/jobs/ghost/pause", headers=post, content="{}")
    no_run = web.get("/api/runs/web-job/nope", headers=AUTH)

    assert paused["state"] == "paused" and ran["status"] == "success"
    assert run["run_id"] == ran["run_id"] and run["result"]["operation"] == "log" and run["finished_at"]
    assert missing.status_code == 404 and "list_jobs" in missing.json()["error"]
    assert no_run.status_code == 404 and "'nope'" in no_run.json()["error"]
    assert web.post("/api/jobs/web-job/explode", headers=post, content="{}").status_code == 404


def test_each_change_of_a_job_or_run_is_an_event_on_the_stream(web: httpx2.Client, mcp: McpThread) -> None:
    with web.stream("GET", "/api/events", headers=AUTH) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith(":")  # the stream is open before the change
        mcp.call(
            "schedule_job",
            {
                "job_id": "streamed",
                "schedule_type": "interval",
                "schedule": "1 hour",
                "agentool_name": "logging",
                "input_data": LOG,
            },
        )
        mcp.call("run_now", {"job_id": "streamed"})
        seen: list[str] = []
        for line in lines:
            seen.append(line)
            if '"kind": "finished"' in line:
                break

    assert 'data: {"kind": "added", "job_id": "streamed"}' in seen
    assert "event: run" in seen and any('"status": "success"' in line for line in seen)


def test_the_api_acts_as_its_token_s_principal_with_its_scopes_and_only_on_its_jobs(
    web: httpx2.Client, http: HttpServer, mcp: McpThread
) -> None:
    mcp.call("schedule_job", {"job_id": "admins-job", "schedule_type": "interval", "schedule": "1 hour",
                              "agentool_name": "logging", "input_data": LOG})
    writer = McpThread(f"{http.base}/mcp", WRITER)
    try:
        writer.call("schedule_job", {"job_id": "writers-job", "schedule_type": "interval", "schedule": "1 hour",
                                     "agentool_name": "logging", "input_data": LOG})
        shown = writer.call("show_schedule").content[0].text  # the MCP App's text: the writer's jobs alone
    finally:
        writer.close()
    as_writer = {"Authorization": f"Bearer {WRITER}"}
    as_reader = {"Authorization": f"Bearer {READER}"}
    post = {"Content-Type": "application/json"}

    def job_ids(headers: dict[str, str]) -> set[str]:
        view = web.get("/api/schedule", headers=headers)
        assert view.status_code == 200, view.text
        return {job["job_id"] for job in view.json()["jobs"]}

    assert {"admins-job", "writers-job"} <= job_ids(AUTH)  # a plain token is the operator's: every job
    assert "writers-job" in job_ids(as_writer) and "admins-job" not in job_ids(as_writer)
    assert "writers-job" in shown and "admins-job" not in shown
    assert not {"admins-job", "writers-job"} & job_ids(as_reader)
    # Another's job is not found, as one that does not exist; a scope the token lacks is refused.
    assert web.post("/api/jobs/admins-job/pause", headers={**as_writer, **post}, content="{}").status_code == 404
    assert web.post("/api/jobs/writers-job/pause", headers={**as_writer, **post}, content="{}").json()["state"] \
        == "paused"
    refused = web.post("/api/jobs/writers-job/resume", headers={**as_reader, **post}, content="{}")
    assert refused.status_code == 403 and "scheduler:write" in refused.json()["error"]
    assert web.post("/api/jobs/writers-job/run", headers={**as_reader, **post}, content="{}").status_code == 403

    # A principal that is not admin is told of its own jobs' changes only: the admin's run comes first, unseen.
    with web.stream("GET", "/api/events", headers=as_writer) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith(":")
        mcp.call("run_now", {"job_id": "admins-job"})
        writer = McpThread(f"{http.base}/mcp", WRITER)
        try:
            writer.call("run_now", {"job_id": "writers-job"})
        finally:
            writer.close()
        seen = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:"):
                break
    assert seen[-2] in ("event: run", "event: job") and json.loads(seen[-1][5:])["job_id"] == "writers-job", seen


def test_the_audit_log_is_read_newest_first_as_the_token_s_principal_may(
    web: httpx2.Client, http: HttpServer, mcp: McpThread
) -> None:
    writer = McpThread(f"{http.base}/mcp", WRITER)
    try:
        writer.call(
            "schedule_job",
            {
                "job_id": "audited",
                "schedule_type": "interval",
                "schedule": "1 hour",
                "agentool_name": "logging",
                "input_data": LOG,
            },
        )
    finally:
        writer.close()
    as_writer = {"Authorization": f"Bearer {WRITER}"}
    post = {"Content-Type": "application/json"}
    assert web.post("/api/jobs/audited/pause", headers={**as_writer, **post}, content="{}").status_code == 200
    mcp.call(
        "schedule_job",
        {
            "job_id": "operators",
            "schedule_type": "interval",
            "schedule": "1 hour",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )

    own = web.get("/api/audit", headers=as_writer).json()["entries"]
    every = web.get("/api/audit", params={"limit": 3}, headers=AUTH).json()["entries"]
    of_job = web.get("/api/audit", params={"job_id": "audited"}, headers=AUTH).json()["entries"]

    assert {entry["subject"] for entry in own} == {"token:writer"}  # its own changes only
    assert [(e["operation"], e["job_id"]) for e in own[:2]] == [("pause", "audited"), ("create", "audited")]
    assert own[0]["client"] == "dashboard" and own[1]["fields"]["input_data"] == LOG  # whole entries
    assert [(e["operation"], e["job_id"]) for e in every[:3]] == [
        ("create", "operators"),
        ("pause", "audited"),
        ("create", "audited"),
    ]
    assert len(every) == 3 and every[0]["seq"] > every[1]["seq"] > every[2]["seq"]
    assert [e["operation"] for e in of_job] == ["pause", "create"]
    assert web.get("/api/audit", headers={"Authorization": f"Bearer {READER}"}).json()["entries"] == []
    assert web.get("/api/audit").status_code == 401
    assert web.get("/api/audit", params={"limit": 0}, headers=AUTH).status_code == 400
    assert web.get("/api/audit", params={"limit": "101"}, headers=AUTH).status_code == 400
