"""The `http` AgenTool: one HTTP request per run, checked against the address policy.

A job gives the method, URL, headers, query, a JSON or text body, a timeout, the status codes it
expects and a cap on the response size. The result holds the status, chosen response headers, the
body (parsed when JSON, cut at the cap) and the elapsed time. What the server chose (the headers and
the body) is outside content: each comes labelled, `{"untrusted": true, "from": "<origin>", "content": ...}`
(see `agentool_bridge.untrusted`), and the reason phrase is the standard one for the status. A status
outside the expected ones raises `HttpStatusError`, which quotes the start of the body as untrusted text,
so the job's error queue and retries apply.

Where a request may go is decided by `AddressPolicy` (see `addresses`): link-local and cloud
metadata addresses never; private and loopback ones only when the server listens on loopback or
stdio, or when `--http-allow` allows them. A run of a stored job also obeys the policy its job was
accepted under (`RunInfo.address_policy`), so a job keeps the limits of the server that accepted it
whichever process runs it. The policy is applied when each connection is made, redirects included
(`_httpx.py`, the adapter that reaches into httpx2 for that, with its version check).
httpx2 is imported only when a request is sent.

Modules: `urls` (URL and header checks, URLs as errors show them), `inputs` (`HttpInput` and its limits),
`response` (`HttpResponse`, reading and decoding a body, `HttpStatusError`), `toolkit` (`HttpToolkit`:
sending, the AgenTool), `addresses` (`AddressPolicy` and the connect-time backend), `_httpx` (the adapter).
"""
from .addresses import AddressNotAllowedError, HostNotFoundError, HttpRequestError
from .inputs import HttpInput
from .response import HttpResponse, HttpStatusError
from .toolkit import AGENTOOL_NAME, HttpToolkit
from .urls import check_headers, check_url

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
