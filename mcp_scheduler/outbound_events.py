"""Run events sent to the operator's URLs (`--events-url`), signed in the Standard Webhooks format.

The process where a run happens sends its event (the runner for the runs it starts): runs this process only read
from the store are left to the process that ran them. `job.paused` is sent by the runner for every pause of a job of
its store, made there or read from the store (a standby's pause_job, `mcp-scheduler pause`, a jobs file), so that
every way of pausing sends one event. Events wait in a
bounded queue (the oldest dropped when it is full, counted and logged once a minute) for one background task,
which delivers them in order, each to every URL, through the `http` job kind's client and address policy; a 5xx
answer or a connection error is tried again with backoff a few times. Nothing here ever blocks the fire path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentool_bridge.errors import clip_text
from agentool_bridge.standard_webhooks import SECRET_PREFIX, WebhookSignatureError, secret_key, signed_headers
from agentool_bridge.toolkits.http import HttpToolkit
from agentool_bridge.toolkits.http.addresses import AddressNotAllowedError, HttpRequestError
from agentool_bridge.toolkits.http.response import HttpStatusError

from .errors import SetupError
from .events import JobEvent, RunEvent, SchedulerEvent

__all__ = ["EventTypes", "OutboundEvents", "OutboundEventsConfig", "event_body"]

logger = logging.getLogger(__name__)

EventTypes = ("run.completed", "run.failed", "job.paused")
"""The event types sent, in the body's `type`."""

_FAILED = frozenset({"error", "timeout", "interrupted"})
_RESPONSE_BYTES = 4096
_ERROR_CHARS = 500
_DROP_LOG_EVERY = 60.0


@dataclass(frozen=True)
class OutboundEventsConfig:
    """Where run events go (`urls`), the `whsec_...` secret that signs them, and how hard delivery tries:
    `queue_size` events wait at most, each attempt may take `time_limit` s, and a 5xx or connection error is
    tried again after each of `retry_delays` (seconds) in turn."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)
    queue_size: int = 1000
    time_limit: float = 10.0
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    close_timeout: float = 5.0

    @classmethod
    def from_settings(
        cls, urls: Sequence[str], secret_env: str | None, environ: Mapping[str, str]
    ) -> OutboundEventsConfig | None:
        """The configuration of `--events-url` / `--events-secret-env` (None without URLs); `SetupError` naming
        the flag when the secret is not set, or not a `whsec_...` secret."""
        if not urls:
            if secret_env:
                raise SetupError("--events-secret-env is set without --events-url: add the URL events go to.")
            return None
        if not secret_env:
            raise SetupError(
                "--events-url needs --events-secret-env NAME: the environment variable holding the 'whsec_...' "
                "secret that signs the events (make one with: python -c \"import base64, os; "
                "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\")."
            )
        secret = environ.get(secret_env, "")
        if not secret:
            raise SetupError(f"--events-secret-env {secret_env}: the variable {secret_env} is not set (or empty).")
        try:
            if not secret.startswith(SECRET_PREFIX):
                raise WebhookSignatureError(f"it does not start with {SECRET_PREFIX!r}")
            secret_key(secret)
        except WebhookSignatureError as exc:
            raise SetupError(
                f"--events-secret-env {secret_env}: the value is not a 'whsec_<base64>' secret ({exc})."
            ) from None
        return cls(urls=tuple(urls), secret=secret)


def event_body(type_: str, data: Mapping[str, Any], when: datetime | None = None) -> dict[str, Any]:
    """The JSON body of one event: `{type, timestamp, data}` (the timestamp in ISO 8601, UTC)."""
    moment = when or datetime.now(UTC)
    return {"type": type_, "timestamp": moment.isoformat(), "data": dict(data)}


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class OutboundEvents:
    """Sends the run events of an `EventBus` to `config.urls` (`listener` subscribed to it, `start` / `aclose`
    on the event loop). `job_name(job_id)` names a job in the events; `runner()` is True while this process holds
    the runner lease; `dropped` counts events the full queue dropped."""

    def __init__(
        self, config: OutboundEventsConfig, http: HttpToolkit, job_name: Callable[[str], str | None],
        runner: Callable[[], bool],
    ) -> None:
        self.config = config
        self._http = http
        self._job_name = job_name
        self._runner = runner
        self._queue: deque[tuple[str, bytes]] = deque(maxlen=config.queue_size)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0
        self._dropped_unlogged = 0
        self._dropped_logged_at = float("-inf")

    async def check(self) -> None:
        """Refuse at start a URL the address policy refuses (`SetupError`; a host that does not resolve now is
        logged, not refused)."""
        for url in self.config.urls:
            try:
                for warning in await self._http.check_url(url):
                    logger.warning("--events-url: %s", warning)
            except AddressNotAllowedError as exc:
                raise SetupError(
                    f"--events-url {url}: {exc} Run events obey the same address policy as http jobs: a private or "
                    "loopback URL needs --http-allow when the server listens beyond loopback."
                ) from None
            except ValueError as exc:
                raise SetupError(f"--events-url {url}: {exc}") from None

    def start(self) -> None:
        """Start the delivery task (call outside any run, on the loop that will publish events)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver_all(), name="outbound-events")

    async def aclose(self) -> None:
        """Give the waiting events `config.close_timeout` s to go out, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.append(("", b""))  # the end mark: deliveries before it go first
        self._ready.set()
        done, _ = await asyncio.wait({task}, timeout=self.config.close_timeout)
        if not done:
            logger.warning("Stopped sending run events with %d not sent", len(self._queue))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif not task.cancelled():
            task.result()  # its error, as awaiting it told before

    def listener(self, event: SchedulerEvent) -> None:
        """The bus listener: queue the event if it is one that is sent and happened in this process."""
        if self._task is None:
            return
        body = self._body(event)
        if body is None:
            return
        if len(self._queue) == self._queue.maxlen:
            self._note_dropped()
        self._queue.append(("msg_" + secrets.token_hex(16), json.dumps(body, separators=(",", ":")).encode()))
        self._ready.set()

    def _body(self, event: SchedulerEvent) -> dict[str, Any] | None:
        if isinstance(event, RunEvent) and not event.remote and event.kind == "finished":
            record = event.record
            if record.status == "success":
                type_ = "run.completed"
            elif record.status in _FAILED:
                type_ = "run.failed"
            else:
                return None
            data: dict[str, Any] = {
                "job_id": record.job_id, "job_name": self._job_name(record.job_id), "run_id": record.run_id,
                "status": record.status, "summary": record.summary, "job_kind": record.agentool_name,
                "trigger": record.trigger, "scheduled_time": _stamp(record.scheduled_time),
                "started_at": _stamp(record.started_at), "finished_at": _stamp(record.finished_at),
                "duration_ms": record.duration_ms, "attempt": record.attempt,
            }
            if record.error is not None:
                data["error"] = {"type": record.error.type, "message": clip_text(record.error.message, _ERROR_CHARS)}
            return event_body(type_, data)
        if isinstance(event, JobEvent) and event.kind == "paused" and self._runner():
            data = {"job_id": event.job_id, "job_name": self._job_name(event.job_id),
                    "paused_by": "user" if event.reason is None else "scheduler", "reason": event.reason}
            return event_body("job.paused", data)
        return None

    def _note_dropped(self) -> None:
        self.dropped += 1
        self._dropped_unlogged += 1
        now = time.monotonic()
        if now - self._dropped_logged_at >= _DROP_LOG_EVERY:
            logger.warning("Run events: the queue of %d is full; dropped the oldest %d event(s) (%d in all)",
                           self.config.queue_size, self._dropped_unlogged, self.dropped)
            self._dropped_logged_at, self._dropped_unlogged = now, 0

    async def _deliver_all(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            msg_id, body = self._queue.popleft()
            if not msg_id:
                return
            for url in self.config.urls:
                await self._deliver(url, msg_id, body)

    async def _deliver(self, url: str, msg_id: str, body: bytes) -> None:
        """One event to one URL: tried again after each retry delay on a 5xx or a connection error."""
        delays = iter(self.config.retry_delays)
        while True:
            headers = {"Content-Type": "application/json", **signed_headers(self.config.secret, body, msg_id=msg_id)}
            try:
                await self._http.send(method="POST", url=url, headers=headers, text=body.decode(),
                                      time_limit=self.config.time_limit, max_response_bytes=_RESPONSE_BYTES,
                                      show_path=False)
            except (HttpStatusError, HttpRequestError) as exc:
                status = getattr(exc, "status", None)
                retry = not isinstance(exc, HttpStatusError) or (status is not None and status >= 500)
                delay = next(delays, None) if retry else None
                if delay is None:
                    logger.warning("Run event %s not delivered: %s", msg_id, exc)
                    return
                logger.info("Run event %s: %s; trying again in %g s", msg_id, exc, delay)
                await asyncio.sleep(delay)
            except AddressNotAllowedError as exc:
                logger.warning("Run event %s not delivered: %s", msg_id, exc)
                return
            else:
                self.sent += 1
                return
