"""Where a run's outcome goes besides its record: the job's result or error queue (its owner's: `queue_owners`), or
the human's inbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentool_bridge.errors import clip_text
from agentool_bridge.secrets import Secrets, redact
from agentool_bridge.toolkits import QueueStore
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxLevel, post_to_inbox
from agentool_bridge.untrusted import clip_content, is_untrusted, untrusted

from ..clocks import Clock
from ..jobs import RunStatus
from ..models import ErrorInfo, RunRecord
from ..queue_owners import job_queue
from .targets import RunTarget

__all__ = ["INBOX_TEXT_LIMIT", "MAX_RESULT_BYTES", "SUMMARY_CHARS", "Delivery", "Outcome", "settled", "summary_of"]

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
SUMMARY_CHARS = 200
"""Most characters of a run's summary."""

INBOX_TEXT_LIMIT = 4000
"""Most characters of a run's result or error (as JSON text) that a message to the inbox carries."""
_JSON = TypeAdapter(Any)


@dataclass
class Outcome:
    """How a run ended, before it becomes a `RunRecord`."""

    status: RunStatus
    result: Any = None
    error: ErrorInfo | None = None
    notes: list[str] = field(default_factory=list)
    revealed: Secrets = field(default_factory=dict)  # `!env:` values the run saw: kept out of its record
    summary: str | dict[str, Any] | None = None
    settled: bool = False


def _jsonable(value: Any, revealed: Secrets | None = None) -> Any:
    """`value` in JSON form, its `revealed` secrets redacted (before a too long one is cut to a preview)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = _JSON.dump_python(value, mode="json")
    except Exception:
        value = repr(value)
    if revealed:
        value = redact(value, revealed)
    text = pydantic_core.to_json(value, fallback=str)
    if len(text) > MAX_RESULT_BYTES:
        return {"truncated": True, "bytes": len(text), "preview": text[:4000].decode(errors="replace")}
    return value


def settled(outcome: Outcome) -> Outcome:
    """The outcome with its result in JSON form (as history, queues and events carry it), and its summary."""
    if outcome.status == "success" and not outcome.settled:
        outcome.result = _jsonable(outcome.result, outcome.revealed)
        outcome.summary = summary_of(outcome.result)
        outcome.settled = True
    return outcome


def summary_of(result: Any) -> str | dict[str, Any] | None:
    """A result's summary in a few words: the `summary` its job kind gave (a string, or labelled untrusted
    content), else the `message` of an operation's output, cut to `SUMMARY_CHARS`; None for anything else."""
    if not isinstance(result, dict):
        return None
    summary = result.get("summary")
    if is_untrusted(summary):
        return clip_content(summary, SUMMARY_CHARS)
    for said in (summary, result.get("message")):
        if isinstance(said, str) and said:
            return clip_text(" ".join(said.split()), SUMMARY_CHARS)
    return None


class Delivery:
    """Sends runs' outcomes to queues of the queue store (`queues()`, None: a scheduler without one)."""

    def __init__(self, queues: Callable[[], QueueStore] | None, clock: Clock) -> None:
        self._queues = queues
        self._clock = clock

    def send(self, target: RunTarget, record: RunRecord, queue: str) -> str | None:
        """Send the outcome to `queue`; returns why that failed, or None."""
        message: dict[str, Any] = {
            "job_id": target.job_id,
            "run_id": record.run_id,
            "agentool_name": target.agentool_name,
        }
        if record.status == "success":
            message |= {"status": "success", "result": record.result}
        else:
            message |= {
                "status": record.status,
                "error": record.error.message if record.error else record.status,
                "error_type": record.error.type if record.error else None,
            }
        message["timestamp"] = self._clock.now().isoformat()
        try:
            if self._queues is None:
                raise RuntimeError("this scheduler has no queue store")
            if queue == INBOX_QUEUE:  # the human's inbox: a message in its own shape, readable as is
                self._post_to_inbox(target, record, message)
            else:
                self._queues().enqueue(job_queue(target, queue), message,
                                       level="info" if record.status == "success" else "error")
        except Exception as exc:
            logger.warning("Job %s: could not send to queue %r: %s", target.job_id, queue, exc)
            return f"could not send to queue {queue!r}: {exc}"
        return None

    def _post_to_inbox(self, target: RunTarget, record: RunRecord, message: dict[str, Any]) -> None:
        """A run's result or error as an inbox message of source `job`: the title and message are the server's
        words, with the run's summary where it is the server's too; a summary that quotes outside content, or else
        what the run returned (or the error it raised), is labelled untrusted, whoever produced it. The history
        keeps the whole result."""
        assert self._queues is not None
        job_name = getattr(target, "job_name", None)
        name = job_name or target.job_id
        ran = f"A run of job {name!r} ({target.agentool_name})"
        labelled: dict[str, Any] | None = None
        level: InboxLevel
        if record.status != "success":
            title, level = f"{name}: {record.status}", "error"
            kind = f" ({record.error.type})" if record.error else ""
            text = f"{ran} ended with status {record.status}{kind}; its error message is in `untrusted`."
            labelled = untrusted(str(message["error"]), f"job {name!r} ({target.agentool_name})")
        elif isinstance(record.summary, str):
            title, level, text = f"{name}: done", "info", f"{ran} succeeded: {record.summary}"
        elif record.summary is not None:
            title, level, labelled = f"{name}: done", "info", record.summary
            text = f"{ran} succeeded; what it answered is in `untrusted` (all of it: get_history)."
        else:
            title, level = f"{name}: done", "info"
            text = f"{ran} succeeded; its result is in `untrusted`."
            labelled = untrusted(record.result, f"job {name!r} ({target.agentool_name})")
        post_to_inbox(
            self._queues(), text, title=title, level=level, source="job", job_id=target.job_id, job_name=job_name,
            run_id=record.run_id, untrusted=None if labelled is None else clip_content(labelled, INBOX_TEXT_LIMIT),
        )

    def tell_inbox(self, text: str, **fields: Any) -> None:
        """Post the server's own words to the inbox (source `scheduler`); raises if there is no queue store."""
        if self._queues is None:
            raise RuntimeError("this scheduler has no queue store")
        post_to_inbox(self._queues(), text, source="scheduler", **fields)

    @property
    def has_queues(self) -> bool:
        return self._queues is not None
