"""The `http` AgenTool: one HTTP request per run, checked against the address policy.

A job gives the method, URL, headers, query, a JSON or text body, a timeout, the status codes it
expects and a cap on the response size. The result holds the status, chosen response headers, the
body (parsed when JSON, cut at the cap) and the elapsed time. What the server chose (the headers and
the body) is outside content: each comes labelled, `{"untrusted": true, "from": "<origin>", "content": ...}`
(see `agentool_bridge.untrusted`), and the reason phrase is the standard one for the status. A status
outside the expected ones raises `HttpStatusError`, which quotes the start of the body as untrusted text,
so the job's error queue and retries apply.

Where a request may go is decided by `AddressPolicy` (see `_addresses`): link-local and cloud
metadata addresses never; private and loopback ones only when the server listens on loopback or
stdio, or when `--http-allow` allows them. A run of a stored job also obeys the policy its job was
accepted under (`RunInfo.address_policy`), so a job keeps the limits of the server that accepted it
whichever process runs it. The policy is applied when each connection is made, redirects included.
httpx2 is imported only when a request is sent.
"""

from __future__ import annotations

import asyncio
import http
import json
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, field_validator, model_validator

from ..context import current_run
from ..errors import clip, clip_text
from ..models import BaseOperationInput, RoutingConfig
from ..redaction import Redactor, active
from ..registry import AgenTool
from ..untrusted import quote, untrusted
from ._addresses import AddressNotAllowedError, AddressPolicy, HostNotFoundError, HttpRequestError, policy_backend
from ._common import ToolkitOutput, field_error
from .config import ToolkitConfig
from .errors import ToolkitError

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "AGENTOOL_NAME",
    "AddressNotAllowedError",
    "HostNotFoundError",
    "HttpInput",
    "HttpRequestError",
    "HttpResponse",
    "HttpStatusError",
    "HttpToolkit",
    "check_headers",
    "check_url",
]

AGENTOOL_NAME = "http"
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
DEFAULT_MAX_RESPONSE_BYTES = 1_000_000
MAX_RESPONSE_BYTES = 10_000_000
DEFAULT_RESPONSE_HEADERS = ("content-type", "content-length", "location", "etag", "last-modified", "retry-after")
_MAX_URL_LENGTH = 8192
_MAX_HEADERS = 100
_MAX_HEADER_VALUE = 8192
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Headers kept when a redirect leaves the original origin; the caller's others (tokens, keys) stay behind.
_PORTABLE_HEADERS = frozenset({"accept", "accept-language", "accept-encoding", "user-agent", "content-type"})
_STATUS_SNIPPET = 200

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
QueryValue = str | int | float | bool


class HttpStatusError(ToolkitError, RuntimeError):
    """The server answered with a status the job did not expect (by default: anything but 2xx); the message
    quotes the start of the body as untrusted text."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def check_url(url: str) -> str:
    """Return `url` if it is an absolute http or https URL with a host; raise `ValueError` saying what is wrong."""
    if len(url) > _MAX_URL_LENGTH:
        raise ValueError(f"url must be at most {_MAX_URL_LENGTH} characters (got {len(url)})")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("url must not contain spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ValueError(f"url {clip(_safe_url_text(url))} is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"url must start with http:// or https:// (it has {scheme})")
    if not parts.hostname:
        raise ValueError("url has no host: write it as http://host/path or https://host/path")
    if parts.port == 0:
        raise ValueError("url has port 0: give a port from 1 to 65535, or none")
    return url


def _safe_url_text(url: str) -> str:
    """What of a URL an error may echo: scheme, host and port only."""
    try:
        return origin_of(urlsplit(url))
    except ValueError:
        return "(unparsable URL)"


def origin_of(parts: SplitResult) -> str:
    """`scheme://host[:port]` of a split URL, without user info."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def describe_url(url: str, *, show_path: bool = True) -> str:
    """The URL as errors and summaries show it: `scheme://host[:port]/path`, never the query or user info
    (they may hold secrets); only the origin when `show_path` is False (a webhook URL's path is its secret)."""
    try:
        parts = urlsplit(url)
        origin = origin_of(parts)
    except ValueError:
        return "(unparsable URL)"
    return origin + (clip_text(parts.path, 120) if show_path else "")


def host_and_port(url: str) -> tuple[str, int]:
    """The host (without brackets) and the port (default 80 or 443) of a checked URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80)


def check_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """Return `headers` if every name and value can be sent over HTTP; raise `ValueError` naming the header.

    Values are never quoted back: they may be secrets.
    """
    if headers is None:
        return None
    if len(headers) > _MAX_HEADERS:
        raise ValueError(f"at most {_MAX_HEADERS} headers (got {len(headers)})")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(
                f"header name {clip(name, 80)} is not valid: use letters, digits and !#$%&'*+-.^_`|~ only"
            )
        if name.lower() in _COMPUTED_HEADERS:
            raise ValueError(f"header {name!r} is set by the HTTP client from the body; leave it out")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"header {name!r}: its value must not contain CR, LF or NUL characters")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"header {name!r}: its value has characters HTTP headers cannot carry (only Latin-1); "
                "encode it (percent- or base64-encoding, as the server expects)"
            ) from None
        if len(value) > _MAX_HEADER_VALUE:
            raise ValueError(f"header {name!r}: its value must be at most {_MAX_HEADER_VALUE} characters")
    return headers


class HttpInput(BaseOperationInput):
    """Send one HTTP request and return the status, chosen headers and body; an unexpected status is an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operation: Literal["request"] = Field(description="The only operation: send one HTTP request.")
    method: Annotated[Method, BeforeValidator(_upper)] = Field(
        default="GET", description="The HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS."
    )
    url: str = Field(
        description="The http:// or https:// URL to request. May be '!env:NAME' to keep a secret URL out of the job "
        "(NAME must be a secret the operator allows with --secret NAME)."
    )
    headers: dict[str, str] | None = Field(
        default=None,
        description="Request headers, name -> value. Put secrets as '!env:NAME' values (NAME must be a secret the "
        "operator allows with --secret NAME; resolved when the job runs, never stored). Content-Length and "
        "Transfer-Encoding are set automatically.",
    )
    query: dict[str, QueryValue | list[QueryValue]] | None = Field(
        default=None,
        description="Query parameters added to the URL, name -> value or list of values; a value may be '!env:NAME' "
        "(a secret the operator allows with --secret NAME).",
    )
    json_body: JsonValue = Field(
        default=None, alias="json", description="A JSON body (sent as application/json). Not with text."
    )
    text: str | None = Field(
        default=None,
        description="A text body, sent as UTF-8 (Content-Type text/plain unless a header says otherwise). "
        "Not with json.",
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"Seconds the whole request may take, redirects and body included (default 30, at most "
        f"{MAX_TIMEOUT:g}).",
    )
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None,
        min_length=1,
        description="The status codes that count as success, such as [200, 404]; default: any 2xx. Any other "
        "status makes the run fail (so the job's error queue and retries apply).",
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=1,
        le=MAX_RESPONSE_BYTES,
        description="Most bytes of the response body to read (default 1000000, at most 10000000); the rest is "
        "not read and the result says truncated=true.",
    )
    response_headers: list[str] = Field(
        default=list(DEFAULT_RESPONSE_HEADERS),
        max_length=50,
        description="Names of the response headers to return (case-insensitive); default content-type, "
        "content-length, location, etag, last-modified, retry-after.",
    )
    follow_redirects: bool = Field(
        default=True,
        description=f"Follow redirects (at most {MAX_REDIRECTS}; every hop is checked like the first URL). "
        "False returns the 3xx response itself (list it in expect_status).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        check_headers(value)
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpInput:
        if self.json_body is not None and self.text is not None:
            raise field_error(self, "text", "give either json or text as the body, not both")
        if self.method in ("GET", "HEAD", "OPTIONS") and (self.json_body is not None or self.text is not None):
            raise field_error(self, "method", f"a {self.method} request has no body: use POST, PUT or PATCH")
        return self


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


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return raw.decode("utf-8", errors="replace")


def _body(
    raw: bytes, limit: int, truncated: bool, content_type: str | None, charset: str | None, redactor: Redactor
) -> Any:
    """The first `limit` bytes of a body read `redactor.margin` bytes further: parsed if it is all JSON, else text.

    A cut body is redacted before it is cut, so that a secret across the cut is replaced whole (the rest of
    the result is redacted by the scheduler after the run).
    """
    if truncated:
        return redactor.head_bytes(raw, limit, lambda part: _decode(part, charset))
    text = _decode(raw, charset)
    if _is_json(content_type) and text.strip():
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError:
            pass
    return text


def _expected(status: int, expect: Sequence[int] | None) -> bool:
    return 200 <= status < 300 if not expect else status in expect


def reason_phrase(status: int) -> str:
    """The standard reason phrase of a status ("" for an unknown one): the server's own is its text, not ours."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class HttpToolkit:
    """Sends HTTP requests for the `http` AgenTool (and webhooks for `notify`) under the address policy.

    `config.http_allow` and `config.exposed` give the policy; a malformed pattern raises `ValueError`.
    Inside a run of a stored job, the policy the job was accepted under applies as well (`run_policy`).
    """

    def __init__(self, config: ToolkitConfig | None = None) -> None:
        config = config or ToolkitConfig()
        self.policy = AddressPolicy(config.http_allow, exposed=config.exposed)
        self._ssl_context: ssl.SSLContext | None = None

    async def check_url(self, url: str) -> None:
        """Refuse, now, a URL the policy refuses: its host must resolve and its addresses be allowed."""
        host, port = host_and_port(check_url(url))
        await self.run_policy().resolve(host, port)

    async def check(self, model: HttpInput) -> None:
        """The schedule-time check of an `http` job: the URL's host resolves to allowed addresses."""
        await self.check_url(model.url)

    def run_policy(self) -> AddressPolicy:
        """The policy a request sent now obeys: this toolkit's, and inside a run of a stored job also the
        policy that job was accepted under (an address is reachable only if both allow it)."""
        run = current_run()
        return self.policy if run is None else self.policy.under(run.address_policy)

    def _transport(self, policy: AddressPolicy) -> httpx2.AsyncHTTPTransport:
        import httpcore2
        import httpx2

        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context(trust_env=False)
        transport = httpx2.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False)
        # httpx2 does not take a network backend; the pool it wraps does. Ours resolves the host, checks
        # every address against the policy, and connects to a checked one (no DNS-rebinding window).
        transport._pool = httpcore2.AsyncConnectionPool(
            ssl_context=self._ssl_context, network_backend=policy_backend(policy)
        )
        return transport

    async def send(
        self,
        *,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        text: str | None = None,
        time_limit: float = DEFAULT_TIMEOUT,
        expect_status: Sequence[int] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        response_headers: Sequence[str] = DEFAULT_RESPONSE_HEADERS,
        follow_redirects: bool = True,
        show_path: bool = True,
    ) -> HttpResponse:
        """Send one request (following redirects) and read at most `max_response_bytes` of its body.

        Raises `AddressNotAllowedError`, `HttpRequestError` (DNS, connection, timeout, protocol, too many
        redirects) or `HttpStatusError` (a status outside `expect_status`, default 2xx). Messages never
        hold request headers, the query or (with `show_path` False) the URL's path.
        """
        import httpx2

        shown = describe_url(url, show_path=show_path)
        what = f"{method} {shown}"
        started = time.monotonic()
        phase = "connecting or waiting for the response"
        content: bytes | None = None
        send_headers = dict(headers or {})
        if text is not None:
            content = text.encode("utf-8")
            if not any(name.lower() == "content-type" for name in send_headers):
                send_headers["Content-Type"] = "text/plain; charset=utf-8"
        given = {name.lower() for name in send_headers}
        hops = 0
        transport = self._transport(self.run_policy())
        # The body is read a margin past its cap, so that a secret across the cap is redacted whole before the cut.
        redactor = active()
        async with httpx2.AsyncClient(transport=transport, trust_env=False, timeout=time_limit) as client:
            response: httpx2.Response | None = None
            try:
                async with asyncio.timeout(time_limit):
                    request = client.build_request(
                        method, url, headers=send_headers, params=dict(query) if query else None,
                        json=json_body, content=content,
                    )
                    while True:
                        response = await client.send(request, stream=True, follow_redirects=False)
                        following = response.next_request
                        if not follow_redirects or following is None:
                            break
                        await response.aclose()
                        if hops == MAX_REDIRECTS:
                            raise HttpRequestError(
                                f"{what} was redirected more than {MAX_REDIRECTS} times; request the final URL "
                                "directly."
                            )
                        hops += 1
                        if following.url.origin != request.url.origin:
                            for name in given - _PORTABLE_HEADERS:
                                following.headers.pop(name, None)
                        request = following
                    phase = "reading the response body"
                    raw, unread = await _read_capped(response, max_response_bytes + redactor.margin, method)
                    truncated = unread or len(raw) > max_response_bytes
            except (AddressNotAllowedError, HttpRequestError):
                raise
            except (TimeoutError, httpx2.TimeoutException):
                raise HttpRequestError(f"{what} timed out after {time_limit:g} s while {phase}.") from None
            except httpx2.ConnectError as exc:
                raise HttpRequestError(
                    f"{what}: could not connect ({clip_text(str(exc) or type(exc).__name__, 200)}); check that "
                    "the server is up and the URL's host and port are right."
                ) from None
            except httpx2.InvalidURL:
                raise HttpRequestError(f"{what}: the URL (or a redirect's Location) is not a valid URL.") from None
            except httpx2.UnsupportedProtocol:
                raise HttpRequestError(f"{what} was redirected to a URL that is not http or https.") from None
            except httpx2.HTTPError as exc:
                raise HttpRequestError(
                    f"{what} failed while {phase}: {clip_text(str(exc) or type(exc).__name__, 200)}"
                ) from None
            finally:
                if response is not None:
                    await response.aclose()
        elapsed_ms = round((time.monotonic() - started) * 1000)
        assert response is not None
        content_type = response.headers.get("content-type")
        body = _body(raw, max_response_bytes, truncated, content_type, response.charset_encoding, redactor)
        reason = reason_phrase(response.status_code)
        origin = origin_of(urlsplit(str(response.url)))
        # The URL as given when nothing changed it, so that a `!env:` URL is recognised (and redacted).
        final_url = url if hops == 0 and not query else str(response.url)
        if not _expected(response.status_code, expect_status):
            expected = "2xx" if not expect_status else ", ".join(str(s) for s in expect_status)
            head = redactor.head_bytes(
                raw, min(_STATUS_SNIPPET * 4, max_response_bytes), lambda part: _decode(part, response.charset_encoding)
            )
            snippet = " ".join(head.split())
            said = f"; {quote(snippet, origin, what='response text', limit=_STATUS_SNIPPET)}" if snippet else "."
            raise HttpStatusError(
                f"{method} {describe_url(str(response.url), show_path=show_path)} returned "
                f"{response.status_code} {reason}".rstrip() + f" (expected {expected}){said}",
                response.status_code,
            )
        wanted = {name.lower() for name in response_headers}
        chosen = {name: ", ".join(response.headers.get_list(name)) for name in wanted if name in response.headers}
        return HttpResponse(
            method=method,
            status=response.status_code,
            reason=reason,
            url=final_url,
            headers=dict(sorted(chosen.items())),
            body=body,
            truncated=truncated,
            bytes=min(len(raw), max_response_bytes),
            elapsed_ms=elapsed_ms,
            origin=origin,
        )

    def agentool(self) -> AgenTool:
        """The `http` AgenTool over this toolkit (not registered)."""

        async def request(
            method: str,
            url: str,
            headers: dict[str, str] | None,
            query: dict[str, Any] | None,
            json_body: Any,
            text: str | None,
            time_limit: float,
            expect_status: list[int] | None,
            max_response_bytes: int,
            response_headers: list[str],
            follow_redirects: bool,
        ) -> ToolkitOutput:
            result = await self.send(
                method=method, url=url, headers=headers, query=query, json_body=json_body, text=text,
                time_limit=time_limit, expect_status=expect_status, max_response_bytes=max_response_bytes,
                response_headers=response_headers, follow_redirects=follow_redirects,
            )
            cut = ", truncated" if result.truncated else ""
            return ToolkitOutput(
                operation="request",
                message=f"{method} {describe_url(result.url)} -> {result.status} {result.reason}".rstrip() + " in "
                f"{result.elapsed_ms} ms ({result.bytes} bytes{cut}).",
                data=result.as_dict(),
            )

        def arguments(m: HttpInput) -> dict[str, Any]:
            return {
                "method": m.method, "url": m.url, "headers": m.headers, "query": m.query, "json_body": m.json_body,
                "text": m.text, "time_limit": m.timeout, "expect_status": m.expect_status,
                "max_response_bytes": m.max_response_bytes, "response_headers": m.response_headers,
                "follow_redirects": m.follow_redirects,
            }

        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=HttpInput,
            routing_config=RoutingConfig(operation_map={"request": ("request", arguments)}),
            tools=(request,),
            output_type=ToolkitOutput,
            tags=("builtin", "http"),
            examples=(
                {"operation": "request", "url": "https://api.github.com/repos/python/cpython",
                 "response_headers": ["etag"]},
                {"operation": "request", "method": "POST", "url": "https://example.com/api/items",
                 "headers": {"Authorization": "!env:EXAMPLE_TOKEN"}, "json": {"name": "nightly"},
                 "expect_status": [200, 201]},
            ),
            backend=self,
            check=self.check,
        )


async def _read_capped(response: httpx2.Response, limit: int, method: str) -> tuple[bytes, bool]:
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
