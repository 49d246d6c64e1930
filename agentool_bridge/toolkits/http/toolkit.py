"""`HttpToolkit`: sends the `http` AgenTool's requests (and `notify`'s webhooks) under the address policy, and
builds the `http` AgenTool."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...context import current_run
from ...errors import clip_text
from ...models import RoutingConfig
from ...redaction import active
from ...registry import AgenTool
from ...tracing import inject_trace_headers
from ...untrusted import quote
from .._common import ToolkitOutput
from ..config import ToolkitConfig
from .addresses import AddressNotAllowedError, AddressPolicy, HostNotFoundError, HttpRequestError, policy_backend
from .inputs import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_RESPONSE_HEADERS, DEFAULT_TIMEOUT, MAX_REDIRECTS, HttpInput
from .response import (
    HttpResponse,
    HttpStatusError,
    decode_text,
    is_expected,
    read_capped,
    reason_phrase,
    response_body,
    status_summary,
)
from .urls import check_url, describe_url, host_and_port, origin_of

if TYPE_CHECKING:
    import httpx2

__all__ = ["AGENTOOL_NAME", "HttpToolkit"]

AGENTOOL_NAME = "http"
# Headers kept when a redirect leaves the original origin; the caller's others (tokens, keys) stay behind.
_PORTABLE_HEADERS = frozenset({"accept", "accept-language", "accept-encoding", "user-agent", "content-type"})
_STATUS_SNIPPET = 200


class HttpToolkit:
    """Sends HTTP requests for the `http` AgenTool (and webhooks for `notify`) under the address policy.

    `config.http_allow` and `config.exposed` give the policy; a malformed pattern raises `ValueError`.
    Inside a run of a stored job, the policy the job was accepted under applies as well (`run_policy`).
    """

    def __init__(self, config: ToolkitConfig | None = None) -> None:
        config = config or ToolkitConfig()
        self.policy = AddressPolicy(config.http_allow, exposed=config.exposed)
        self._ssl_context: ssl.SSLContext | None = None

    async def check_url(self, url: str) -> list[str]:
        """Refuse, now, a URL the policy refuses (a malformed URL, a host whose addresses are not allowed).

        A host that does not resolve now is a warning, returned, not a refusal: DNS may be down for a moment,
        or the name may be set up later; the policy is checked again when a request connects.
        """
        host, port = host_and_port(check_url(url))
        try:
            await self.run_policy().resolve(host, port)
        except HostNotFoundError as exc:
            return [f"{str(exc).rstrip('.')}. Accepted anyway (DNS may be down now): its runs fail until the host "
                    "resolves."]
        return []

    async def check(self, model: HttpInput) -> list[str]:
        """The schedule-time check of an `http` job: the URL's host resolves to allowed addresses (a host that
        does not resolve now is a warning)."""
        return await self.check_url(model.url)

    def run_policy(self) -> AddressPolicy:
        """The policy a request sent now obeys: this toolkit's, and inside a run of a stored job also the
        policy that job was accepted under (an address is reachable only if both allow it)."""
        run = current_run()
        return self.policy if run is None else self.policy.under(run.address_policy)

    def _transport(self, policy: AddressPolicy) -> httpx2.AsyncHTTPTransport:
        import httpx2

        from ._httpx import policy_transport

        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context(trust_env=False)
        # Every connection goes through a backend that resolves the host, checks every address against the
        # policy, and connects to a checked one (no DNS-rebinding window).
        return policy_transport(self._ssl_context, policy_backend(policy))

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
        inject_trace_headers(send_headers)  # after `given`: a redirect to another origin keeps the trace context
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
                    raw, unread = await read_capped(response, max_response_bytes + redactor.margin, method)
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
        body = response_body(raw, max_response_bytes, truncated, content_type, response.charset_encoding, redactor)
        reason = reason_phrase(response.status_code)
        origin = origin_of(urlsplit(str(response.url)))
        # The URL as given when nothing changed it, so that a `!env:` URL is recognised (and redacted).
        final_url = url if hops == 0 and not query else str(response.url)
        if not is_expected(response.status_code, expect_status):
            expected = "2xx" if not expect_status else ", ".join(str(s) for s in expect_status)
            charset = response.charset_encoding
            head = redactor.head_bytes(
                raw, min(_STATUS_SNIPPET * 4, max_response_bytes), lambda part: decode_text(part, charset)
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
                summary=status_summary(result.status, result.elapsed_ms),
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

