"""What the MCP tools return beyond the scheduler's own models (pages, details, catalogs), and the limits of
what a model reads (`AnswerLimits`): labelled outside content clipped to a number of characters, pages of
messages to a number of bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import pydantic_core
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, WithJsonSchema, model_serializer

from agentool_bridge.errors import clip_text
from agentool_bridge.toolkits.inbox import InboxFields
from agentool_bridge.untrusted import CONTENT_LIMIT, clip_content

from ..models import JobInfo, JobSummary, RunRecord, SchedulerStatus
from ..timestamps import Timestamp

__all__ = [
    "CONTENT_LIMIT",
    "PAGE_BYTES",
    "AgenToolCatalog",
    "AnswerLimits",
    "AgenToolEntry",
    "json_size",
    "within",
    "HistoryPage",
    "FoundRun",
    "InboxEntry",
    "InboxPage",
    "JobDetail",
    "JobPage",
    "QueueMessages",
    "SchedulerState",
]

PAGE_BYTES = 30_000
"""Default most bytes (as JSON) of the messages in one read_inbox or read_queue answer, or inbox or queue
resource: a tool answer carries them twice (structured, and as text), so it stays within about 64 KB.
Messages beyond are not shown (`not_shown` counts them): acknowledging (or taking) what was shown makes
room for them."""

_T = TypeVar("_T")


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (a pydantic model as its JSON)."""
    if isinstance(value, BaseModel):
        return len(value.model_dump_json())
    return len(pydantic_core.to_json(value, fallback=str))


def within(items: Sequence[_T], budget: int, size: Callable[[_T], int] = json_size) -> list[_T]:
    """The first `items` whose sizes add up to at most `budget`; always the first one, so that paging goes on."""
    kept: list[_T] = []
    used = 0
    for item in items:
        used += size(item)
        if kept and used > budget:
            break
        kept.append(item)
    return kept


@dataclass(frozen=True)
class AnswerLimits:
    """How much of what jobs stored one answer shows a model (the operator's `--answer-bytes` and
    `--content-chars`): each labelled outside content and each run's error message is cut to `content_chars`
    characters (saying how long it was); a page of inbox or queue messages holds at most `page_bytes` bytes
    of JSON (always at least one message, so that paging goes on). The history keeps everything whole."""

    page_bytes: int = PAGE_BYTES
    content_chars: int = CONTENT_LIMIT

    def __post_init__(self) -> None:
        if self.page_bytes < 1 or self.content_chars < 1:
            raise ValueError("answer limits must be at least 1 (bytes of a page, characters of a content)")

    def clip(self, value: Any) -> Any:
        """`value` with the content of every untrusted wrapper in it cut to `content_chars`."""
        return clip_content(value, self.content_chars)

    def page(self, items: Sequence[_T], size: Callable[[_T], int] = json_size) -> list[_T]:
        """The first `items` that fit in `page_bytes` (at least one)."""
        return within(items, self.page_bytes, size)

    def run(self, record: RunRecord) -> RunRecord:
        """`record` as tool answers and resources show it: its result's untrusted content clipped, its error
        message cut to `content_chars`."""
        update: dict[str, Any] = {}
        if record.result is not None:
            update["result"] = self.clip(record.result)
        if record.error is not None and len(record.error.message) > self.content_chars:
            message = clip_text(record.error.message, self.content_chars)
            update["error"] = record.error.model_copy(update={"message": message})
        return record.model_copy(update=update) if update else record


class JobPage(BaseModel):
    """One page of jobs, summarised (get_job has a job's details)."""

    jobs: list[JobSummary] = Field(description="Jobs on this page, in creation order.")
    total: int = Field(description="Jobs matching the filters, on all pages.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end.")
    refreshed_at: Annotated[Timestamp | None, WithJsonSchema({"type": "string"})] = Field(
        default=None, exclude_if=lambda at: at is None,
        description="Only when the store could not be read now: when these jobs were last read from it.",
    )


class SchedulerState(BaseModel):
    """Whether jobs are being processed, after start_scheduler or stop_scheduler (scheduler_status has the counts)."""

    running: bool = Field(description="True while jobs are being processed.")
    state: Literal["stopped", "running", "paused"] = Field(description="The state in words.")

    @classmethod
    def of(cls, status: SchedulerStatus) -> SchedulerState:
        """The state part of `status`."""
        return cls(running=status.running, state=status.state)


class JobDetail(BaseModel):
    """A job with its latest runs."""

    job: JobInfo = Field(description="The job.")
    recent_history: list[RunRecord] = Field(description="Its latest runs, newest first.")


class HistoryPage(BaseModel):
    """Runs of one job or of every job, newest first."""

    job_id: str | None = Field(description="The job; null for the runs of every job.")
    runs: list[RunRecord] = Field(description="The runs, newest first.")
    count: int = Field(description="Number of runs returned.")
    next_until: Annotated[Timestamp | None, WithJsonSchema({"type": "string"})] = Field(
        default=None,
        exclude_if=lambda until: until is None,
        description="Left out unless the answer reached its size limit before `limit` runs: pass it as `until` "
        "for the next, older runs.",
    )


class FoundRun(BaseModel):
    """One run, as get_history shows its runs."""

    run: dict[str, Any] = Field(description="The run: its status and, once ended, its result or error.")


class AgenToolEntry(BaseModel):
    """What can be scheduled: a job kind with its operations and input fields (and, asked for by name, its input
    schema and examples). A field that is null is left out."""

    name: str = Field(description="Use as `agentool_name`.")
    description: str = Field(description="What it does.")
    operations: list[str] = Field(description="Values of the `operation` field in `input_data`.")
    fields: str | None = Field(default=None, description="The fields of input_data; * marks those always required.")
    input_schema: dict[str, Any] | None = Field(default=None, description="JSON schema that `input_data` must satisfy.")
    examples: list[dict[str, Any]] | None = Field(default=None, description="Example inputs.")

    @model_serializer(mode="wrap")
    def _leave_out_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class AgenToolCatalog(BaseModel):
    """The job kinds a job can run: every one in a line, or one with its whole input schema."""

    agentools: list[AgenToolEntry] = Field(description="The job kinds, by name.")
    more: str | None = Field(default=None, description="How to read one kind's whole input schema.")


class QueueMessages(BaseModel):
    """Messages read from a queue."""

    queue_name: str = Field(description="The queue.")
    mode: Literal["peek", "take"] = Field(description="peek leaves messages in place; take removes them.")
    messages: list[dict[str, Any]] = Field(description="Messages, oldest first (message_id, message, enqueued_at).")
    remaining: int = Field(description="Messages still waiting in the queue.")
    not_shown: int = Field(
        default=0, description="Messages within `count` left out (and not taken): the answer reached its size limit."
    )


class InboxEntry(InboxFields):
    """A message for the user, posted by the scheduler or a job, with the id that acknowledges it."""

    id: str = Field(description="The message id; pass it in ack_ids to acknowledge the message.")


class InboxPage(BaseModel):
    """Messages read from the inbox, and what is left unread."""

    messages: list[InboxEntry] = Field(description="Messages, oldest first.")
    acknowledged: int = Field(description="Messages this call removed from the inbox.")
    remaining: int = Field(description="Unread messages still in the inbox.")
    not_shown: int = Field(
        default=0, description="Messages within `count` left out (and not acknowledged): the answer reached its size "
        "limit. Acknowledge what was shown, then read again."
    )
