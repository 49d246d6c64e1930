"""Judging a run by its job's success checks (`SuccessCheck`): a successful call whose result fails a check
becomes an `error` run whose ErrorInfo names the check and what was seen, so retries, pause_after_failures,
the error queue and the inbox treat it as any failed run."""

from __future__ import annotations

import json
from typing import Any

from agentool_bridge.errors import clip_text
from agentool_bridge.untrusted import is_untrusted, quote

from ..models import ErrorInfo
from ..success import SuccessCheck, path_steps
from .delivery import Outcome

__all__ = ["CHECK_FAILED", "judged"]

CHECK_FAILED = "SuccessCheckFailed"
"""The ErrorInfo type of a run whose result failed its job's success check."""

_SEEN = 120
"""Characters of what the result held that a failed check quotes."""

_MISSING = object()


def judged(outcome: Outcome, success: SuccessCheck, agentool_name: str) -> Outcome:
    """`outcome` (settled: its result in JSON form), made `error` if it succeeded and fails `success`."""
    if outcome.status != "success":
        return outcome
    failure = _first_failure(success, agentool_name, outcome.result)
    if failure is None:
        return outcome
    name, said = failure
    outcome.status = "error"
    outcome.error = ErrorInfo(type=CHECK_FAILED, message=f"success check {name} failed: {said}",
                              where=f"the success check of job kind '{agentool_name}'")
    outcome.summary = clip_text(f"success check {name} failed", 200)
    return outcome


def _content(value: Any) -> Any:
    return value["content"] if is_untrusted(value) else value


def _data(result: Any) -> dict[str, Any]:
    data = result.get("data") if isinstance(result, dict) else None
    return data if isinstance(data, dict) else {}


def _payload(agentool_name: str, result: Any) -> Any:
    """What the json and text checks read of a kind's result."""
    data = _data(result)
    if agentool_name == "http":
        return _content(data.get("body"))
    if agentool_name == "mcp":
        structured = _content(data.get("structured_content"))
        return structured if structured is not None else _content(data.get("text"))
    if agentool_name == "agent":
        return _content(data.get("output"))
    if agentool_name == "shell":
        return _content(data.get("stdout"))
    if isinstance(result, dict) and result.get("truncated") is True:
        return result.get("preview")
    return {key: _content(value) for key, value in data.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _seen(value: Any, agentool_name: str) -> str:
    return quote(_text(value), f"the {agentool_name} result", what="value", limit=_SEEN)


def _at(value: Any, steps: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _MISSING
    for step in steps:
        if isinstance(value, dict):
            value = value.get(str(step), _MISSING)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b or (isinstance(a, int | float) and isinstance(b, int | float) and a == b)


def _tool_names(call: Any) -> set[str]:
    if not isinstance(call, dict):
        return set()
    names = {str(call[key]) for key in ("tool", "name") if call.get(key)}
    if call.get("server") and call.get("name"):
        names.add(f"{call['server']}.{call['name']}")
    return names


def _first_failure(success: SuccessCheck, kind: str, result: Any) -> tuple[str, str] | None:
    """The first check that fails, with what was seen; None when all pass."""
    data = _data(result)
    if success.status is not None:
        status = data.get("status")
        if status not in success.status:
            return "status", f"the response was {status}, not one of {', '.join(map(str, success.status))}"
    payload = _payload(kind, result)
    if (check := success.json_equals) is not None:
        found = _at(payload, path_steps(check.path))
        if found is _MISSING:
            return "json", f"{check.path} is not in the result"
        if not _same(found, check.equals):
            want = clip_text(json.dumps(check.equals, default=str), 60)
            return "json", f"{check.path} is {_seen(found, kind)}, not {want}"
    if success.contains is not None and success.contains not in _text(payload):
        return "contains", f"the result does not contain {clip_text(repr(success.contains), 60)}"
    if success.not_contains is not None and success.not_contains in _text(payload):
        return "not_contains", f"the result contains {clip_text(repr(success.not_contains), 60)}"
    calls = _content(data.get("tool_calls"))
    calls = calls if isinstance(calls, list) else []
    if success.no_error:
        if data.get("is_error") is True:
            return "no_error", "the tool answered with isError"
        failed = sorted({str(call.get("tool")) for call in calls if isinstance(call, dict) and call.get("is_error")})
        if failed:
            return "no_error", f"tool call(s) of {clip_text(', '.join(failed), 80)} answered with isError"
    if success.tools_used is True and not calls:
        return "tools_used", "the model called no tool"
    if isinstance(success.tools_used, tuple):
        called = set().union(*map(_tool_names, calls)) if calls else set()
        missing = [name for name in success.tools_used if name not in called]
        if missing:
            return "tools_used", f"the model did not call {clip_text(', '.join(missing), 120)}"
    return None
