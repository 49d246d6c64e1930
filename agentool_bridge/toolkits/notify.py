"""The `notify` AgenTool: reach a human. Every message lands in the durable inbox first, then goes out.

`inbox` only posts to the inbox (a reminder: "remind me every weekday at 9 am"). `desktop` also shows
a desktop notification (notify-send on Linux, osascript on macOS). `webhook` also POSTs to a URL, in
a generic JSON shape or the shape Slack, Discord or ntfy expect, under the same address policy as
`http` (in a job's run, also the policy the job was accepted under). A failed delivery raises (so the
job's error queue and retries apply); the inbox copy stays.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..context import current_run
from ..errors import clip_text
from ..models import BaseOperationInput, RoutingConfig
from ..registry import AgenTool
from ..standard_webhooks import signed_headers
from ._common import ToolkitOutput, check_text, field_error
from .config import ToolkitConfig
from .errors import ToolkitError
from .http import HttpToolkit, check_url
from .http.urls import Headers, describe_url
from .inbox import InboxFullError, InboxLevel, post_to_inbox
from .queue import QueueStore

__all__ = [
    "AGENTOOL_NAME",
    "NotificationFailedError",
    "NotifierUnavailableError",
    "NotifyInput",
    "NotifyToolkit",
    "webhook_request",
]

AGENTOOL_NAME = "notify"
DEFAULT_TITLE = "mcp-scheduler"
_MAX_MESSAGE = 10_000
_MAX_TITLE = 250
_DESKTOP_TIMEOUT = 10.0
_WEBHOOK_RESPONSE_BYTES = 65_536
_DISCORD_LIMIT = 2000
_URGENCY = {"info": "normal", "warning": "normal", "error": "critical"}
_NTFY_PRIORITY = {"info": "3", "warning": "4", "error": "5"}
# osascript gets the texts as arguments of its run handler: nothing is spliced into AppleScript source.
_APPLESCRIPT = "on run argv\ndisplay notification (item 1 of argv) with title (item 2 of argv)\nend run"

WebhookFormat = Literal["generic", "slack", "discord", "ntfy"]


class NotifierUnavailableError(ToolkitError, RuntimeError):
    """Neither notify-send nor osascript is installed, so no desktop notification can be shown."""


class NotificationFailedError(ToolkitError, RuntimeError):
    """The desktop notifier ran but failed (non-zero exit, or it hung)."""


class NotifyInput(BaseOperationInput):
    """Tell a human: post to the inbox (always), and optionally show a desktop notification or call a webhook."""

    operation: Literal["inbox", "desktop", "webhook"] = Field(
        description="inbox: only post to the scheduler's inbox (what reminders use). desktop: also show a "
        "desktop notification on the server's machine. webhook: also POST to a URL (Slack, Discord, ntfy or "
        "any JSON endpoint)."
    )
    message: str = Field(min_length=1, max_length=_MAX_MESSAGE, description="What to tell the human.")
    title: str | None = Field(default=None, max_length=_MAX_TITLE, description="A short headline.")
    level: InboxLevel = Field(
        default="info", description="info, warning or error: sets the urgency of desktop notifications and ntfy."
    )
    url: str | None = Field(
        default=None,
        description="webhook: the http(s) URL to POST to (a Slack or Discord incoming-webhook URL, an ntfy topic "
        "URL such as https://ntfy.sh/my-topic, or any endpoint). Webhook URLs embed secrets: give "
        "'!env:NAME' (a secret the operator allows with --secret NAME). Required by webhook.",
    )
    format: WebhookFormat = Field(
        default="generic",
        description="webhook: the payload shape. generic: JSON {title, message, level, job_id, run_id, posted_at}; "
        'slack: {"text": ...}; discord: {"content": ...}; ntfy: the message as text with Title and Priority '
        "headers.",
    )
    headers: Headers = Field(
        default=None,
        description="webhook: extra request headers, such as an Authorization header as '!env:NAME' (a secret the "
        "operator allows with --secret NAME).",
    )
    timeout: float = Field(
        default=10.0, gt=0, le=60, description="webhook: seconds the request may take (default 10, at most 60)."
    )
    signing_secret: str | None = Field(
        default=None,
        description="webhook: sign the request in the Standard Webhooks format (webhook-id, webhook-timestamp, "
        "webhook-signature headers) with this 'whsec_...' secret, given as '!env:NAME' (a secret the operator "
        "allows with --secret NAME), so the receiver can verify it.",
    )

    @field_validator("message", "title")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return None if value is None else check_text("message", value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @model_validator(mode="after")
    def _webhook_fields(self) -> NotifyInput:
        if self.operation == "webhook":
            if self.url is None:
                raise field_error(self, "url", "url is required for operation 'webhook'")
            return self
        for name in ("url", "headers", "signing_secret"):
            if getattr(self, name) is not None:
                raise field_error(self, name, f"{name} is only used by operation 'webhook'")
        if "format" in self.model_fields_set:
            raise field_error(self, "format", "format is only used by operation 'webhook'")
        return self


def _one_line(text: str) -> str:
    return " ".join(text.split())


def webhook_request(
    format: WebhookFormat, message: str, title: str | None, level: InboxLevel, posted_at: datetime
) -> tuple[Any, str | None, dict[str, str]]:
    """The webhook request for `format`: (JSON body, text body, headers); one of the bodies is None."""
    run = current_run()
    if format == "generic":
        payload = {
            "title": title,
            "message": message,
            "level": level,
            "job_id": run.job_id if run else None,
            "run_id": run.run_id if run else None,
            "posted_at": posted_at.isoformat(),
        }
        return payload, None, {}
    text = f"*{title}*\n{message}" if title else message
    if format == "slack":
        return {"text": text}, None, {}
    if format == "discord":
        content = f"**{title}**\n{message}" if title else message
        return {"content": clip_text(content, _DISCORD_LIMIT - 30)}, None, {}
    headers = {"Priority": _NTFY_PRIORITY[level]}
    if title:
        one_line = _one_line(title)
        # ntfy decodes RFC 2047 encoded words; raw non-Latin-1 text cannot travel in a header.
        headers["Title"] = (
            one_line if one_line.isascii() else f"=?UTF-8?B?{base64.b64encode(one_line.encode()).decode()}?="
        )
    return None, message, headers


class NotifyToolkit:
    """Posts to the inbox of `queues()` (the runtime's current queue store) and delivers notifications.

    `config` gives the webhook address policy; `path` overrides the PATH searched for notify-send and
    osascript (None: the process's PATH).
    """

    def __init__(
        self,
        queues: Callable[[], QueueStore],
        config: ToolkitConfig | None = None,
        *,
        path: str | None = None,
    ) -> None:
        self._queues = queues
        self._http = HttpToolkit(config)
        self._path = path

    def _notifier(self) -> list[str] | None:
        """The argv prefix of an installed desktop notifier, or None."""
        notify_send = shutil.which("notify-send", path=self._path)
        if notify_send is not None:
            return [notify_send]
        osascript = shutil.which("osascript", path=self._path)
        return [osascript] if osascript is not None else None

    async def check(self, model: NotifyInput) -> list[str]:
        """The schedule-time check: a webhook's URL is allowed (a host that does not resolve now is a warning);
        a desktop notifier is installed."""
        if model.operation == "desktop" and self._notifier() is None:
            raise NotifierUnavailableError(self._unavailable() + " Use operation 'inbox' or 'webhook' instead.")
        if model.operation == "webhook" and model.url is not None:
            return await self._http.check_url(model.url)
        return []

    @staticmethod
    def _unavailable() -> str:
        return (
            "No desktop notifier on the scheduler server's machine: install notify-send (Debian/Ubuntu: "
            "apt install libnotify-bin; Fedora: dnf install libnotify) on Linux; macOS has osascript."
        )

    def post(self, message: str, title: str | None, level: InboxLevel) -> str:
        """Post to the inbox; returns the inbox message id (`InboxFullError` if the inbox is full)."""
        return post_to_inbox(self._queues(), message, title=title, level=level, source="notify")

    def copy(self, message: str, title: str | None, level: InboxLevel) -> tuple[str | None, str]:
        """The inbox copy of a desktop or webhook notification: its id and how to say where it is. A full
        inbox keeps no copy, and the notification goes out anyway (a user who reads only Slack never
        empties the inbox, and must still be alerted)."""
        try:
            message_id = self.post(message, title, level)
        except InboxFullError as exc:
            return None, f"kept no copy in the inbox ({exc})"
        return message_id, f"posted to the inbox (message {message_id})"

    async def desktop(self, message: str, title: str | None, level: InboxLevel) -> None:
        """Show a desktop notification; raise `NotifierUnavailableError` or `NotificationFailedError`."""
        notifier = self._notifier()
        if notifier is None:
            raise NotifierUnavailableError(self._unavailable())
        heading = title or _default_title()
        if notifier[0].endswith("osascript"):
            argv = [*notifier, "-e", _APPLESCRIPT, message, heading]
        else:
            argv = [*notifier, f"--urgency={_URGENCY[level]}", f"--app-name={DEFAULT_TITLE}", "--", heading, message]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            async with asyncio.timeout(_DESKTOP_TIMEOUT):
                _, stderr = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise NotificationFailedError(
                f"{argv[0]} did not finish within {_DESKTOP_TIMEOUT:g} s (is a desktop session running?)."
            ) from None
        if process.returncode != 0:
            detail = clip_text(stderr.decode(errors="replace").strip(), 300) or "no error output"
            raise NotificationFailedError(
                f"{argv[0]} failed with exit code {process.returncode}: {detail}. Desktop notifications need a "
                "desktop session of the user the server runs as."
            )

    async def webhook(
        self,
        url: str,
        format: WebhookFormat,
        message: str,
        title: str | None,
        level: InboxLevel,
        headers: dict[str, str] | None,
        time_limit: float,
        signing_secret: str | None = None,
    ) -> int:
        """POST the notification to `url` in `format`, signed with `signing_secret` if given (Standard Webhooks);
        returns the status (non-2xx raises `HttpStatusError`)."""
        json_body, text, shape_headers = webhook_request(format, message, title, level, datetime.now(UTC))
        if signing_secret is not None:  # the signature covers the exact bytes sent: the JSON is made text here
            if json_body is not None:
                text, json_body = json.dumps(json_body, separators=(",", ":")), None
                shape_headers = {**shape_headers, "Content-Type": "application/json"}
            shape_headers = {**shape_headers, **signed_headers(signing_secret, (text or "").encode())}
        response = await self._http.send(
            method="POST",
            url=url,
            headers={**shape_headers, **(headers or {})},
            json_body=json_body,
            text=text,
            time_limit=time_limit,
            max_response_bytes=_WEBHOOK_RESPONSE_BYTES,
            show_path=False,
        )
        return response.status

    def agentool(self) -> AgenTool:
        """The `notify` AgenTool over this toolkit (not registered)."""

        def inbox(message: str, title: str | None, level: InboxLevel) -> ToolkitOutput:
            message_id = self.post(message, title, level)
            return ToolkitOutput(
                operation="inbox",
                message=f"Posted to the inbox (message {message_id}).",
                data={"inbox_message_id": message_id, "delivered": True, "channel": "inbox"},
            )

        async def desktop(message: str, title: str | None, level: InboxLevel) -> ToolkitOutput:
            message_id, copied = self.copy(message, title, level)
            try:
                await self.desktop(message, title, level)
            except ToolkitError as exc:
                _note_inbox(exc, message_id)
                raise
            return ToolkitOutput(
                operation="desktop",
                message=f"Showed a desktop notification and {copied}.",
                data={"inbox_message_id": message_id, "delivered": True, "channel": "desktop"},
            )

        async def webhook(
            url: str,
            format: WebhookFormat,
            message: str,
            title: str | None,
            level: InboxLevel,
            headers: dict[str, str] | None,
            time_limit: float,
            signing_secret: str | None,
        ) -> ToolkitOutput:
            message_id, copied = self.copy(message, title, level)
            try:
                status = await self.webhook(url, format, message, title, level, headers, time_limit, signing_secret)
            except ToolkitError as exc:
                _note_inbox(exc, message_id)
                raise
            return ToolkitOutput(
                operation="webhook",
                message=f"Sent a {format} webhook to {describe_url(url, show_path=False)} (status {status}) and "
                f"{copied}.",
                data={"inbox_message_id": message_id, "delivered": True, "channel": "webhook", "status": status},
            )

        def texts(m: NotifyInput) -> dict[str, Any]:
            return {"message": m.message, "title": m.title, "level": m.level}

        routing = RoutingConfig(
            operation_map={
                "inbox": ("inbox", texts),
                "desktop": ("desktop", texts),
                "webhook": (
                    "webhook",
                    lambda m: {**texts(m), "url": m.url, "format": m.format, "headers": m.headers,
                               "time_limit": m.timeout, "signing_secret": m.signing_secret},
                ),
            }
        )
        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=NotifyInput,
            routing_config=routing,
            tools=(inbox, desktop, webhook),
            output_type=ToolkitOutput,
            tags=("builtin", "notify"),
            examples=(
                {"operation": "inbox", "title": "Stand-up", "message": "Stand-up in 5 minutes"},
                {"operation": "desktop", "title": "Backup", "message": "Backup finished", "level": "info"},
                {"operation": "webhook", "url": "!env:SLACK_WEBHOOK_URL", "format": "slack",
                 "message": "Nightly build failed", "level": "error"},
            ),
            backend=self,
            check=self.check,
        )


def _default_title() -> str:
    run = current_run()
    if run is not None:
        return run.job_name or run.job_id
    return DEFAULT_TITLE


def _note_inbox(exc: ToolkitError, message_id: str | None) -> None:
    """Add to `exc`'s message that the message is in the inbox anyway (same exception, re-raised by the caller),
    or that it is not (the inbox was full)."""
    where = f"is in the inbox anyway (message {message_id})" if message_id else "is not in the inbox either (full)"
    exc.args = (f"{exc} The message {where}.", *exc.args[1:])
