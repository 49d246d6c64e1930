"""What one `http` request returned: the response as the AgenTool gives it, its body read up to a cap and
decoded, and the error of a status the job did not expect."""

from __future__ import annotations

import http
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...redaction import Redactor
from ...untrusted import untrusted
from ..errors import ToolkitError

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "HttpResponse",
    "HttpStatusError",
    "decode_text",
    "status_summary",
    "is_expected",
    "read_capped",
    "reason_phrase",
    "response_body",
]


class HttpStatusError(ToolkitError, RuntimeError):
    """The server answered with a status the job did not expect (by default: anything but 2xx); the message
    quotes the start of the body as untrusted text."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HttpResponse:
    """What one request returned (after redirects). `headers` and `body` are as the server sent them;
    `as_dict` labels them as untrusted content from `origin`."""

    method: str
    status: int
    reason: str
    url: str
    headers: dict[str, str]
    body: Any
    truncated: bool
    bytes: int
    elapsed_ms: int
    origin: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The output data of the `http` AgenTool: headers and body labelled as untrusted content."""
        return {
            "status": self.status,
            "reason": self.reason,
            "url": self.url,
            "headers": untrusted(self.headers, self.origin),
            "body": untrusted(self.body, self.origin),
            "truncated": self.truncated,
            "bytes": self.bytes,
            "elapsed_ms": self.elapsed_ms,
        }


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_text(raw: bytes, charset: str | None) -> str:
    """`raw` decoded with `charset` (UTF-8 if none or unknown), undecodable bytes replaced."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return raw.decode("utf-8", errors="replace")


def response_body(
    raw: bytes, limit: int, truncated: bool, content_type: str | None, charset: str | None, redactor: Redactor
) -> Any:
    """The first `limit` bytes of a body read `redactor.margin` bytes further: parsed if it is all JSON, else text.

    A cut body is redacted before it is cut, so that a secret across the cut is replaced whole (the rest of
    the result is redacted by the scheduler after the run).
    """
    if truncated:
        return redactor.head_bytes(raw, limit, lambda part: decode_text(part, charset))
    text = decode_text(raw, charset)
    if _is_json(content_type) and text.strip():
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError:
            pass
    return text


def is_expected(status: int, expect: Sequence[int] | None) -> bool:
    """Whether `status` counts as success: one of `expect`, or any 2xx when `expect` is empty."""
    return 200 <= status < 300 if not expect else status in expect


def reason_phrase(status: int) -> str:
    """The standard reason phrase of a status ("" for an unknown one): the server's own is its text, not ours."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def read_capped(response: httpx2.Response, limit: int, method: str) -> tuple[bytes, bool]:
    """At most `limit` bytes of the (decompressed) body, and whether more was left unread."""
    if method == "HEAD":
        return b"", False
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def status_summary(status: int, elapsed_ms: int) -> str:
    """A request's result in a few words, e.g. '200 OK in 182 ms' (the standard phrase, never the server's)."""
    return f"{status} {reason_phrase(status)}".rstrip() + f" in {elapsed_ms} ms"
