"""`subscriptions/listen` (2026-07-28) for our server: the SDK's change notifications, and the tasks extension's
`notifications/tasks` (SEP-2663).

The SDK's `ListenHandler` (`mcp.server.subscriptions`) acknowledges and forwards only its own event kinds (tool,
prompt and resource list changes, resource updates): its acknowledgement drops any other filter key, and
`event_matches` / `event_to_notification` know no other kind. SEP-2663 has a client ask for task statuses in the same
request (`notifications.taskIds`); the server acknowledges the ids it honors and pushes each status change as
`notifications/tasks`, the task as `tasks/get` gives it. `Listen` serves both on one stream, as the SDK's handler
does the rest (acknowledgement first, every frame stamped with the subscription id, a bounded backlog that ends the
stream when its client stops reading). A queue's updates go only to the streams of its owner and of admins, under
the name each knows it by, and what is about a job only to those of its owner and of admins
(`notifications.seen_events`). A stream is given only the tasks its caller may read with
`tasks/get` (its own; all with `scheduler:admin`), first as they are when it opens, then each change; a client that
asks for tasks without declaring the extension gets -32021.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ServerEvent, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, event_matches, event_to_notification
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
)

from . import _sdk
from .auth import principal_of
from .notifications import seen_events
from .tasks import ENDED, TASKS, RunTasks, declared

__all__ = ["MAX_TASK_IDS", "TASK_NOTIFICATION", "Listen"]

logger = logging.getLogger(__name__)

TASK_NOTIFICATION = "notifications/tasks"
MAX_TASK_IDS = 100  # task ids one stream may ask for
_TASK_ID_CHARS = 200

Frame = ServerEvent | dict[str, Any]  # a dict: a task's state


def _asked_tasks(requested: SubscriptionFilter) -> list[str] | None:
    """The `taskIds` of a listen request (None when it asks for none), checked."""
    asked = (requested.model_extra or {}).get("taskIds")
    if asked is None:
        return None
    if not isinstance(asked, list) or not all(isinstance(t, str) and len(t) <= _TASK_ID_CHARS for t in asked):
        raise MCPError(INVALID_PARAMS, "notifications.taskIds must be a list of task ids (strings).")
    if len(asked) > MAX_TASK_IDS:
        raise MCPError(INVALID_PARAMS, f"notifications.taskIds names {len(asked)} tasks: at most {MAX_TASK_IDS} "
                                       "per stream; open another subscriptions/listen for the others.")
    return list(dict.fromkeys(asked))


def _sdk_kinds(requested: SubscriptionFilter) -> SubscriptionFilter:
    """The SDK's kinds of `requested` (every one is honored), without falsy values, as the SDK's handler echoes them."""
    return SubscriptionFilter(
        tools_list_changed=True if requested.tools_list_changed else None,
        prompts_list_changed=True if requested.prompts_list_changed else None,
        resources_list_changed=True if requested.resources_list_changed else None,
        resource_subscriptions=list(requested.resource_subscriptions) if requested.resource_subscriptions else None,
    )


class Listen:
    """The `subscriptions/listen` handler (`_sdk.serve_listen`): one call is one stream, over the server's
    subscription bus and the task states of `tasks` (`RunTasks.feed`)."""

    def __init__(
        self, bus: SubscriptionBus, tasks: RunTasks, *, max_subscriptions: int = 1024, max_buffered_events: int = 1024
    ) -> None:
        self._bus = bus
        self._tasks = tasks
        self._max_subscriptions = max_subscriptions
        self._max_buffered_events = max_buffered_events
        self._open = 0

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen requires a request id")
        if self._open >= self._max_subscriptions:
            raise MCPError(INTERNAL_ERROR, "Subscription limit reached: close a listen stream and try again.")
        asked = _asked_tasks(params.notifications)
        if asked is not None and not declared(ctx):
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"Missing required client capability: declare the {TASKS} extension to be sent task statuses.",
                {"requiredCapabilities": {"extensions": {TASKS: {}}}},
            )
        kinds = _sdk_kinds(params.notifications)
        principal = principal_of(None)
        uris = frozenset(kinds.resource_subscriptions or ())
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        # Buffered so that publishers never wait for a slow client; this task alone writes the stream.
        send, recv = anyio.create_memory_object_stream[Frame](self._max_buffered_events)
        followed = set(asked or ())  # narrowed to the readable ones before anything is sent; an ended task leaves

        def put(frame: Frame) -> None:
            try:
                send.send_nowait(frame)
            except anyio.ClosedResourceError:
                pass
            except anyio.WouldBlock:
                logger.warning("listen stream %r backlog full; ending the stream", subscription_id)
                send.close()

        def deliver(event: ServerEvent) -> None:
            for seen in seen_events(principal, event):  # a job's or queue's go to its owner (and admins) alone
                if event_matches(kinds, uris, seen):
                    put(seen)

        # Subscribed before the current states are read and the acknowledgement sent: nothing published meanwhile
        # is lost (a state already sent is not sent twice).
        unsubscribe = [self._bus.subscribe(deliver), self._tasks.feed.subscribe(followed, put)]
        self._open += 1
        try:
            current = await self._tasks.visible(ctx, followed) if followed else []
            followed.intersection_update(task["taskId"] for task in current)
            honored = kinds if asked is None or not followed else SubscriptionFilter.model_validate(
                {**kinds.model_dump(by_alias=True, exclude_none=True), "taskIds": [t for t in asked if t in followed]})
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
                ),
                related_request_id=subscription_id,
            )
            sent: dict[str, str] = {}  # task id -> the status last sent
            for task in current:
                await self._send_task(ctx, task, meta, followed, sent)
            async for frame in recv:
                if isinstance(frame, dict):
                    await self._send_task(ctx, frame, meta, followed, sent)
                else:
                    await ctx.session.send_notification(
                        event_to_notification(frame, meta), related_request_id=subscription_id
                    )
        finally:
            for stop in unsubscribe:
                _quietly(stop)
            self._open -= 1
            send.close()
            recv.close()
        return SubscriptionsListenResult(_meta=meta)

    @staticmethod
    async def _send_task(
        ctx: ServerRequestContext[Any, Any],
        task: dict[str, Any],
        meta: dict[str, Any],
        followed: set[str],
        sent: dict[str, str],
    ) -> None:
        """Push `task`'s state, unless the stream does not follow it or was last sent that status."""
        task_id, status = task["taskId"], task["status"]
        if task_id not in followed or sent.get(task_id) == status:
            return
        sent[task_id] = status
        if status in ENDED:
            followed.discard(task_id)
        subscription_id = meta[SUBSCRIPTION_ID_META_KEY]
        await _sdk.send_stream_notification(ctx, TASK_NOTIFICATION, {**task, "_meta": meta}, subscription_id)


def _quietly(unsubscribe: Callable[[], None]) -> None:
    """Run an unsubscribe callable; one that raises (a custom bus's) must not stop the stream's cleanup."""
    try:
        unsubscribe()
    except Exception:
        logger.exception("Unsubscribing a listen stream raised; continuing its cleanup")
