"""The dashboard in a real browser (Debian's Chromium): over the HTTP transport at `/` beside `/mcp`, and from
`mcp-scheduler dashboard`. Jobs and runs appear live (no reload), a job is paused, resumed, run and cancelled from
the page (the pause then tops the audit log's changes), a run's whole record opens, the page fits a phone's width,
and screenshots land in .artifacts/."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from mcp_scheduler.server.auth import parse_token
from tests._net import free_port, stop, wait_until_listening
from tests.server.conftest import HttpServer, scheduler_command

from ._browser import WAIT, WAIT_MS, McpThread, screenshot

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

LOG = {"operation": "log", "level": "INFO", "message": "report written"}


def job_row(page: Any, job_id: str) -> Any:
    return page.locator(f'#jobs [data-job="{job_id}"]')


def job_state(mcp: McpThread, job_id: str) -> str:
    return str(mcp.call("get_job", {"job_id": job_id}).structured_content["job"]["state"])


def test_jobs_and_runs_appear_live_and_a_job_is_paused_resumed_run_and_cancelled_from_the_page(
    browser: Any, http: HttpServer, mcp: McpThread
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{http.base}/#token={http.token}")
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    assert "#token" not in page.url  # the token left the address bar; the page keeps it in memory

    mcp.call(
        "schedule_job",
        {
            "job_id": "report",
            "job_name": "Daily report",
            "schedule_type": "cron",
            "schedule": "0 9 * * *",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )
    row = job_row(page, "report")
    row.wait_for(timeout=WAIT_MS)  # appeared without a reload
    assert "Daily report" in row.inner_text() and "next" in row.inner_text()
    mcp.call("run_now", {"job_id": "report"})
    page.locator("#runs .row").first.wait_for(timeout=WAIT_MS)
    page.locator("#timeline .tick.s-success").first.wait_for(timeout=WAIT_MS)

    row.locator('[data-action="pause"]').click()
    row.locator(".chip.s-skipped", has_text="paused").wait_for(timeout=WAIT_MS)
    assert job_state(mcp, "report") == "paused"
    latest = page.locator("#changes .row").first  # the audit log: the pause on top, by the token's principal
    latest.locator('[data-operation="pause"]').wait_for(timeout=WAIT_MS)
    said = latest.inner_text()
    assert "Daily report" in said and f"{parse_token(http.token).subject} via dashboard" in said
    created = page.locator("#changes .row", has=page.locator('[data-operation="create"]'), has_text="Daily report")
    assert "input_data" in created.first.inner_text()
    screenshot(page, "dashboard-changes")
    row.locator('[data-action="resume"]').first.click()
    row.locator('[data-action="pause"]').wait_for(timeout=WAIT_MS)
    assert job_state(mcp, "report") == "scheduled"

    row.locator('[data-action="run"]').click()
    expect(page.locator("#runs .row[data-run]")).to_have_count(2, timeout=WAIT_MS)
    runs = mcp.call("get_history", {"job_id": "report"}).structured_content["runs"]
    assert [run["status"] for run in runs] == ["success", "success"]

    page.locator("#runs .row[data-run]").first.click()  # the run view: the whole record
    page.locator("#run-view[open] #run-result").wait_for(timeout=WAIT_MS)
    assert runs[0]["run_id"] in page.locator("#run-view").inner_text()
    assert '"message": "Logged INFO record to stderr."' in page.locator("#run-result").inner_text()
    screenshot(page, "dashboard-run-view")
    page.locator("#run-close").click()
    screenshot(page, "dashboard-http")

    row.locator('[data-action="cancel"]').click()  # asks first
    assert job_state(mcp, "report") == "scheduled"
    row.locator('[data-action="confirm-cancel"]').click()
    row.wait_for(state="detached", timeout=WAIT_MS)
    assert mcp.call("list_jobs").structured_content["total"] == 0
    page.close()


def test_failures_and_paused_jobs_show_and_the_page_fits_a_phone(
    browser: Any, http: HttpServer, mcp: McpThread
) -> None:
    mcp.call(
        "schedule_job",
        {
            "job_id": "phone",
            "job_name": "Hourly digest",
            "schedule_type": "interval",
            "schedule": "1 hour",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )
    mcp.call("run_now", {"job_id": "phone"})
    mcp.call(
        "schedule_job",
        {
            "job_id": "ping",
            "job_name": "Ping the API",
            "schedule_type": "cron",
            "schedule": "*/30 * * * *",
            "agentool_name": "http",
            "input_data": {"operation": "request", "url": "http://127.0.0.1:9/health"},
        },
    )
    failed = mcp.run(mcp.client.call_tool("run_now", {"job_id": "ping"}))
    assert failed.is_error  # the server refuses loopback addresses to jobs: a failed run
    mcp.call("pause_job", {"job_id": "ping"})

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{http.base}/#token={http.token}")
    page.locator("#failures .row", has_text="Ping the API").wait_for(timeout=WAIT_MS)
    page.locator("#paused .row", has_text="Ping the API").wait_for(timeout=WAIT_MS)
    screenshot(page, "dashboard-overview")
    page.close()

    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(f"{http.base}/#token={http.token}")
    job_row(phone, "phone").wait_for(timeout=WAIT_MS)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "dashboard-phone")
    phone.close()


def test_without_the_token_the_page_asks_for_it_and_the_api_refuses(browser: Any, http: HttpServer) -> None:
    page = browser.new_page()
    page.goto(f"{http.base}/")
    page.locator("form.token").wait_for(timeout=WAIT_MS)
    refused = page.evaluate("fetch('/api/schedule').then(r => r.status)")

    page.fill("#token", http.token)
    page.locator("form.token button").click()
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    assert refused == 401
    page.close()


def test_mcp_scheduler_dashboard_prints_a_url_with_the_token_and_serves_the_page(browser: Any, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dashboard.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            scheduler_command(
                "dashboard",
                "--no-browser",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "s.db"),
                "--token-file",
                str(tmp_path / "token"),
            ),
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            wait_until_listening(process, port, log=str(log))
            assert process.stdout is not None
            url = process.stdout.readline().decode().strip()
            token = (tmp_path / "token").read_text().strip()
            assert url == f"http://127.0.0.1:{port}/#token={token}"

            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(url)
            page.wait_for_selector("#live.on", timeout=WAIT_MS)
            mcp = McpThread(f"http://127.0.0.1:{port}/mcp", token)  # it serves MCP beside the page
            try:
                mcp.call(
                    "schedule_job",
                    {
                        "job_id": "backup",
                        "schedule_type": "interval",
                        "schedule": "6 hours",
                        "agentool_name": "logging",
                        "input_data": LOG,
                    },
                )
                row = job_row(page, "backup")
                row.wait_for(timeout=WAIT_MS)
                row.locator('[data-action="run"]').click()
                page.locator("#runs .row[data-run]").first.wait_for(timeout=WAIT_MS)
                row.locator('[data-action="pause"]').click()
                row.locator(".chip.s-skipped", has_text="paused").wait_for(timeout=WAIT_MS)
                assert job_state(mcp, "backup") == "paused"
                screenshot(page, "dashboard-cli")
            finally:
                mcp.close()
                page.close()
        finally:
            assert stop(process, within=WAIT) == 0
