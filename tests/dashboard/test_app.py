"""show_schedule as an MCP App: the tool names its `ui://` page, the page is one self-contained HTML file served as
`text/html;profile=mcp-app`, a host with Apps gets the whole view as structured content and one without gets the
schedule as compact text."""

from __future__ import annotations

import re

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from mcp_scheduler.server import SchedulerServer
from mcp_scheduler.server.schedule_app import DASHBOARD_URI

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

MODES = ["auto", "legacy"]


def apps_client(server: SchedulerServer, mode: str) -> Client:
    """A client of a host that renders MCP Apps."""
    return Client(server, mode=mode, extensions=[advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})])


@pytest.mark.parametrize("mode", MODES)
async def test_show_schedule_names_its_page_which_is_one_self_contained_html_file(
    filled: SchedulerServer, mode: str
) -> None:
    async with apps_client(filled, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        page = await client.read_resource(DASHBOARD_URI)

    assert tools["show_schedule"].meta == {"ui": {"resourceUri": DASHBOARD_URI}}
    (content,) = page.contents
    assert content.mime_type == APP_MIME_TYPE
    html = content.text
    assert html.startswith("<!doctype html>") and "ui/initialize" in html and "tools/call" in html
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|https?://", html), "the page loads nothing from elsewhere"


@pytest.mark.parametrize("mode", MODES)
async def test_a_host_with_apps_gets_the_whole_view_and_one_without_gets_text(
    filled: SchedulerServer, mode: str
) -> None:
    async with apps_client(filled, mode) as client:
        with_apps = await client.call_tool("show_schedule", {})
    async with Client(filled, mode=mode) as client:
        without = await client.call_tool("show_schedule", {})

    view = with_apps.structured_content
    assert view is not None and {job["job_id"] for job in view["jobs"]} == {"nightly", "hourly", "flaky"}
    assert view["failures"][0]["error"] == "RuntimeError: the disk is on fire"
    assert without.structured_content is None
    (text,) = without.content
    assert "flaky error: RuntimeError: the disk is on fire" in text.text
    assert with_apps.content[0].text.splitlines()[1:] == text.text.splitlines()[1:]  # the same words either way
