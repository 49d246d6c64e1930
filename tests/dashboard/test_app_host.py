"""The MCP App inside a host: a test host page embeds the `ui://` page (read through a real MCP client, as a host
does) in a sandboxed iframe and speaks the Apps postMessage JSON-RPC with it: it answers `ui/initialize`, sends the
result of show_schedule as `ui/notifications/tool-result`, and forwards the app's `tools/call` to the real server
through that client. From the app, a job is run, paused (the pause then tops its changes) and cancelled (after the
confirm step)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from mcp_scheduler.server.schedule_app import DASHBOARD_URI
from tests.server.conftest import HttpServer

from ._browser import WAIT_MS, McpThread, screenshot
from .conftest import TOKEN

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

LOG = {"operation": "log", "level": "INFO", "message": "hi"}

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>test host</title></head>
<body style="margin:0;background:#ddd">
<iframe id="app" sandbox="allow-scripts" style="width:100%;height:600px;border:0;background:#fff"></iframe>
<script>
window.seen = [];
const frame = document.getElementById("app");
const toApp = (message) => frame.contentWindow.postMessage({ jsonrpc: "2.0", ...message }, "*");
window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data;
  window.seen.push(m.method || "answer");
  if (m.method === "ui/initialize") {
    toApp({ id: m.id, result: { protocolVersion: "2026-01-26", hostInfo: { name: "test-host", version: "1" },
      hostCapabilities: { serverTools: {} }, hostContext: { theme: "light", displayMode: "inline" } } });
  } else if (m.method === "ui/notifications/initialized") {
    const result = await window.mcp("tools/call", { name: "show_schedule", arguments: {} });
    toApp({ method: "ui/notifications/tool-result", params: result });
  } else if (m.method === "tools/call") {
    window.seen.push("tools/call " + m.params.name);
    try { toApp({ id: m.id, result: await window.mcp("tools/call", m.params) }); }
    catch (error) { toApp({ id: m.id, error: { code: -32603, message: String(error) } }); }
  } else if (m.method === "ui/notifications/size-changed") {
    frame.style.height = Math.max(m.params.height, 300) + "px";
  } else if (m.id !== undefined && m.method) {
    toApp({ id: m.id, error: { code: -32601, message: "not supported by the test host" } });
  }
});
window.loadApp = (html) => { frame.srcdoc = html; };
</script></body></html>"""


@pytest.fixture(scope="module")
def host_client(http: HttpServer) -> Iterator[McpThread]:
    """The host's MCP client: it advertises MCP Apps."""
    client = McpThread(f"{http.base}/mcp", TOKEN, apps=True)
    yield client
    client.close()


def test_the_app_runs_pauses_and_cancels_jobs_through_the_host(browser: Any, host_client: McpThread) -> None:
    host_client.call(
        "schedule_job",
        {
            "job_id": "digest",
            "job_name": "Morning digest",
            "schedule_type": "cron",
            "schedule": "0 7 * * *",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )
    host_client.call(
        "schedule_job",
        {
            "job_id": "sweep",
            "schedule_type": "interval",
            "schedule": "2 hours",
            "agentool_name": "logging",
            "input_data": LOG,
        },
    )
    (page_resource,) = host_client.run(host_client.client.read_resource(DASHBOARD_URI)).contents

    def forward(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "tools/call"
        result = host_client.run(host_client.client.call_tool(params["name"], params.get("arguments") or {}))
        return dict(result.model_dump(mode="json", by_alias=True, exclude_none=True))

    page = browser.new_page(viewport={"width": 900, "height": 900})
    page.expose_function("mcp", forward)
    page.set_content(HOST_PAGE)
    page.evaluate("html => window.loadApp(html)", page_resource.text)
    app = page.frame_locator("#app")
    digest = app.locator('#jobs [data-job="digest"]')
    digest.wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.seen.slice(0, 2)") == ["ui/initialize", "ui/notifications/initialized"]
    assert app.locator("html[data-theme=light][data-mode=app]").count() == 1

    digest.locator('[data-action="run"]').click()
    expect(app.locator("#runs .row[data-run]")).to_have_count(1, timeout=WAIT_MS)
    digest.locator('[data-action="pause"]').click()
    digest.locator(".chip.s-skipped", has_text="paused").wait_for(timeout=WAIT_MS)
    assert host_client.call("get_job", {"job_id": "digest"}).structured_content["job"]["state"] == "paused"
    latest = app.locator("#changes .row").first  # the view carries the audit log's latest changes
    latest.locator('[data-operation="pause"]').wait_for(timeout=WAIT_MS)
    assert "Morning digest" in latest.inner_text()

    sweep = app.locator('#jobs [data-job="sweep"]')
    sweep.locator('[data-action="cancel"]').click()
    sweep.locator('[data-action="confirm-cancel"]').wait_for(timeout=WAIT_MS)
    screenshot(page, "app-in-host")
    sweep.locator('[data-action="confirm-cancel"]').click()
    sweep.wait_for(state="detached", timeout=WAIT_MS)
    assert [job["job_id"] for job in host_client.call("list_jobs").structured_content["jobs"]] == ["digest"]

    seen = page.evaluate("window.seen")
    for call in ("run_now", "pause_job", "cancel_job", "show_schedule"):
        assert f"tools/call {call}" in seen, seen
    assert "ui/notifications/size-changed" in seen
    page.close()
