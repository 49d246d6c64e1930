"""The `notify` AgenTool: the inbox, a real notify-send (a script on a PATH of the test's own) and webhooks
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits import QueueStore
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.http import AddressNotAllowedError, HttpStatusError
from agentool_bridge.toolkits.inbox import INBOX_QUEUE
from agentool_bridge.toolkits.notify import (
    NotificationFailedError,
    NotifierUnavailableError,
    NotifyToolkit,
)
from mcp_scheduler import SchedulerInput, ServiceConfig
from mcp_scheduler.runtime import SchedulerRuntime
from tests.toolkits._http_server import LocalServer, serve_http

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake notifiers are shell scripts")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


@pytest.fixture
def queues() -> Iterator[QueueStore]:
    store = QueueStore(None)
    yield store
    store.close()


def fake_notifier(directory: Path, name: str, *, exit_code: int = 0) -> Path:
    """An executable `name` in `directory` that writes its arguments (NUL-separated) to `<name>.args`."""
    directory.mkdir(exist_ok=True)
    script = directory / name
    script.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do printf "%s\\0" "$arg"; done > "{directory}/{name}.args"\n'
        f'echo "no session bus" >&2\nexit {exit_code}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory / f"{name}.args"


def recorded_args(path: Path) -> list[str]:
    return path.read_text().split("\0")[:-1]


def use_notify(
    injector: AgenToolInjector, queues: QueueStore, *, path: str | None = None, **config: Any
) -> NotifyToolkit:
    toolkit = NotifyToolkit(lambda: queues, ToolkitConfig(**config), path=path)
    injector.register(toolkit.agentool())
    return toolkit


def inbox(queues: QueueStore) -> list[dict[str, Any]]:
    return [m.message for m in queues.peek(INBOX_QUEUE, 100)]


# ---------------------------------------------------------------- inbox


async def test_inbox_posts_the_message_and_says_its_id(injector: AgenToolInjector, queues: QueueStore) -> None:
    use_notify(injector, queues)

    output = await injector.run("notify", {"operation": "inbox", "message": "Stand-up in 5", "title": "Stand-up"})

    [message] = inbox(queues)
    assert message["message"] == "Stand-up in 5"
    assert message["title"] == "Stand-up"
    assert message["level"] == "info"
    assert message["source"] == "notify"
    assert output.data == {"inbox_message_id": queues.peek(INBOX_QUEUE)[0].message_id, "delivered": True,
                           "channel": "inbox"}


async def test_a_scheduled_reminder_lands_in_the_runtimes_inbox_with_its_job_and_run(tmp_path: Path) -> None:
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "s.sqlite"))) as rt:
        await rt.service.schedule(SchedulerInput(
            operation="schedule", job_id="standup", schedule_type="cron", schedule="0 9 * * 1-5",
            agentool_name="notify", input_data={"operation": "inbox", "message": "Stand-up", "level": "warning"},
        ))
        record = await rt.service.run_now(SchedulerInput(operation="run_now", job_id="standup"))

        [message] = rt.queues.peek(INBOX_QUEUE)
    assert message.message["job_id"] == "standup"
    assert message.message["run_id"] == record.run_id
    assert message.message["level"] == "warning"
    assert record.result["data"]["inbox_message_id"] == message.message_id


# ---------------------------------------------------------------- desktop


async def test_desktop_runs_notify_send_with_urgency_title_and_message(
    injector: AgenToolInjector, queues: QueueStore, tmp_path: Path
) -> None:
    args = fake_notifier(tmp_path / "bin", "notify-send")
    use_notify(injector, queues, path=str(tmp_path / "bin"))
    message = '-e "quoted" \\ back\nsecond line $(rm -rf /)'

    output = await injector.run(
        "notify", {"operation": "desktop", "message": message, "title": "Disk 'full'", "level": "error"}
    )

    assert recorded_args(args) == ["--urgency=critical", "--app-name=mcp-scheduler", "--", "Disk 'full'", message]
    assert output.data is not None and output.data["channel"] == "desktop"
    assert inbox(queues)[0]["message"] == message


async def test_desktop_finds_notify_send_on_the_process_path(
    injector: AgenToolInjector, queues: QueueStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = fake_notifier(tmp_path / "bin", "notify-send")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    use_notify(injector, queues)

    await injector.run("notify", {"operation": "desktop", "message": "hello"})

    assert recorded_args(args) == ["--urgency=normal", "--app-name=mcp-scheduler", "--", "mcp-scheduler", "hello"]


async def test_desktop_uses_osascript_with_the_texts_as_arguments(
    injector: AgenToolInjector, queues: QueueStore, tmp_path: Path
) -> None:
    args = fake_notifier(tmp_path / "bin", "osascript")
    use_notify(injector, queues, path=str(tmp_path / "bin"))

    await injector.run("notify", {"operation": "desktop", "message": 'say "hi" \\', "title": "T"})

    script_flag, script, *rest = recorded_args(args)
    assert script_flag == "-e"
    assert "display notification (item 1 of argv) with title (item 2 of argv)" in script
    assert rest == ['say "hi" \\', "T"]


async def test_desktop_without_a_notifier_is_a_clear_error_and_the_message_is_in_the_inbox(
    injector: AgenToolInjector, queues: QueueStore, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    use_notify(injector, queues, path=str(tmp_path / "empty"))
    data = {"operation": "desktop", "message": "Backup done"}

    with pytest.raises(NotifierUnavailableError, match=r"install notify-send .*libnotify-bin.*in the inbox anyway"):
        await injector.run("notify", data)
    assert inbox(queues)[0]["message"] == "Backup done"
    with pytest.raises(NotifierUnavailableError, match="Use operation 'inbox' or 'webhook' instead"):
        await injector.check("notify", data)


async def test_a_failing_notifier_is_an_error_with_its_output(
    injector: AgenToolInjector, queues: QueueStore, tmp_path: Path
) -> None:
    fake_notifier(tmp_path / "bin", "notify-send", exit_code=1)
    use_notify(injector, queues, path=str(tmp_path / "bin"))

    with pytest.raises(NotificationFailedError, match="exit code 1: no session bus.*inbox anyway"):
        await injector.run("notify", {"operation": "desktop", "message": "x"})


# ---------------------------------------------------------------- webhooks


async def webhook(injector: AgenToolInjector, url: str, **fields: Any) -> dict[str, Any]:
    output = await injector.run("notify", {"operation": "webhook", "url": url, **fields})
    data: dict[str, Any] = output.data
    return data


async def test_a_generic_webhook_posts_the_inbox_message_as_json(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    use_notify(injector, queues)

    data = await webhook(
        injector, f"{server.url}/hook/generic", message="Build failed", title="CI", level="error",
        headers={"Authorization": "Bearer t0ken"},
    )

    [received] = server.received_at("/hook/generic")
    assert received["method"] == "POST"
    assert received["headers"]["authorization"] == "Bearer t0ken"
    body = json.loads(received["body"])
    assert {k: body[k] for k in ("title", "message", "level", "job_id", "run_id")} == {
        "title": "CI", "message": "Build failed", "level": "error", "job_id": None, "run_id": None,
    }
    assert body["posted_at"].endswith("+00:00")
    assert data["status"] == 200
    assert data["inbox_message_id"] == queues.peek(INBOX_QUEUE)[0].message_id


async def test_a_webhook_goes_out_when_the_inbox_is_full_and_says_it_kept_no_copy(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    from agentool_bridge.toolkits.inbox import limit_inbox, post_to_inbox

    use_notify(injector, queues)
    limit_inbox(queues, 1)
    post_to_inbox(queues, "unread")

    output = await injector.run("notify", {"operation": "webhook", "url": f"{server.url}/hook/full",
                                           "message": "Disk at 99%"})

    [received] = server.received_at("/hook/full")
    assert json.loads(received["body"])["message"] == "Disk at 99%"
    assert output.data is not None and output.data["inbox_message_id"] is None and output.data["delivered"] is True
    assert "kept no copy in the inbox" in output.message and "--inbox-limit" in output.message
    assert [m["message"] for m in inbox(queues)] == ["unread"]


async def test_a_slack_webhook_sends_text(injector: AgenToolInjector, queues: QueueStore, server: LocalServer) -> None:
    use_notify(injector, queues)

    await webhook(injector, f"{server.url}/hook/slack", format="slack", message="Deployed", title="Release")

    [received] = server.received_at("/hook/slack")
    assert json.loads(received["body"]) == {"text": "*Release*\nDeployed"}


async def test_a_discord_webhook_sends_content(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    use_notify(injector, queues)

    await webhook(injector, f"{server.url}/hook/discord", format="discord", message="Deployed", title="Release")

    [received] = server.received_at("/hook/discord")
    assert json.loads(received["body"]) == {"content": "**Release**\nDeployed"}


async def test_an_ntfy_webhook_sends_the_message_as_text_with_title_and_priority(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    use_notify(injector, queues)

    await webhook(injector, f"{server.url}/hook/ntfy-topic", format="ntfy", message="Disk at 95%", title="nas",
                  level="warning")
    await webhook(injector, f"{server.url}/hook/ntfy-utf8", format="ntfy", message="ok", title="Sauvegarde ☃")

    [received] = server.received_at("/hook/ntfy-topic")
    assert received["body"] == "Disk at 95%"
    assert received["headers"]["title"] == "nas"
    assert received["headers"]["priority"] == "4"
    assert received["headers"]["content-type"] == "text/plain; charset=utf-8"
    [utf8] = server.received_at("/hook/ntfy-utf8")
    encoded = utf8["headers"]["title"]
    assert encoded.startswith("=?UTF-8?B?") and base64.b64decode(encoded[10:-2]).decode() == "Sauvegarde ☃"


async def test_a_webhook_that_answers_non_2xx_is_an_error_and_the_inbox_copy_remains(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    use_notify(injector, queues)

    with pytest.raises(HttpStatusError, match=r"POST http://127\.0\.0\.1:\d+ returned 500 .*inbox anyway") as caught:
        await webhook(injector, f"{server.url}/status/500", message="still here")

    assert "/status/500" not in str(caught.value)  # a webhook URL's path is its secret
    assert inbox(queues)[0]["message"] == "still here"


async def test_a_webhook_url_goes_through_the_address_policy(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    use_notify(injector, queues, exposed=True, http_allow=("169.254.0.0/16",))

    with pytest.raises(AddressNotAllowedError, match="cloud metadata"):
        await injector.check("notify", {"operation": "webhook", "url": "http://169.254.169.254/", "message": "m"})
    with pytest.raises(AddressNotAllowedError, match="--http-allow 127.0.0.1"):
        await injector.check("notify", {"operation": "webhook", "url": f"{server.url}/hook/x", "message": "m"})
    with pytest.raises(AddressNotAllowedError, match="loopback"):
        await webhook(injector, f"{server.url}/hook/x", message="m")
    assert server.received_at("/hook/x") == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"operation": "webhook", "message": "m"}, "url is required"),
        ({"operation": "inbox", "message": "m", "url": "http://x.example/"}, "url is only used by operation 'webhook'"),
        ({"operation": "inbox", "message": "m", "format": "slack"}, "format is only used"),
        ({"operation": "webhook", "message": "m", "url": "http://x.example/", "format": "teams"}, "format"),
        ({"operation": "webhook", "message": "m", "url": "file:///etc/passwd"}, "http:// or https://"),
        ({"operation": "inbox", "message": ""}, "message"),
        ({"operation": "inbox", "message": "m", "level": "critical"}, "level"),
    ],
)
def test_malformed_input_is_refused(
    injector: AgenToolInjector, queues: QueueStore, fields: dict[str, Any], problem: str
) -> None:
    use_notify(injector, queues)

    with pytest.raises(AgenToolInputError, match=problem):
        injector.validate("notify", fields)


async def test_a_signed_webhook_verifies_with_the_standardwebhooks_package(
    injector: AgenToolInjector, queues: QueueStore, server: LocalServer
) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from agentool_bridge.standard_webhooks import new_secret

    use_notify(injector, queues)
    secret = new_secret()
    await webhook(injector, f"{server.url}/hook/signed", message="Deployed", signing_secret=secret)
    await webhook(injector, f"{server.url}/hook/signed", message="Posted", format="slack", signing_secret=secret)

    first, second = server.received_at("/hook/signed")
    for received, text in ((first, "Deployed"), (second, "Posted")):
        assert received["headers"]["content-type"].startswith("application/json")
        verified = Webhook(secret).verify(received["body"], received["headers"])
        assert text in json.dumps(verified)
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(received["body"], received["headers"])


async def test_a_signing_secret_is_only_for_webhooks(injector: AgenToolInjector, queues: QueueStore) -> None:
    use_notify(injector, queues)
    with pytest.raises(AgenToolInputError, match="signing_secret"):
        await injector.run("notify", {"operation": "inbox", "message": "hi", "signing_secret": "whsec_AAAA"})
